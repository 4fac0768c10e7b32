//! Initial weights from a safetensors file (for example a torchvision ResNet exported from PyTorch).

use l2l_plugin_api::{ParameterSet, PluginError, PluginResult};
use std::path::Path;
use tch::Tensor;

/// Loads every tensor of `path` whose name the set holds; a tensor of another shape is an error naming
/// it, except those whose name starts with one of `reinitialised` (a classifier head for another
/// class count), which keep their fresh values. PyTorch's `num_batches_tracked` counters are ignored, and
/// so are encoder layers the network does not build (segmentation_models_pytorch keeps the ResNet
/// layers below its `encoder_depth` in its state, unused).
/// Returns the names loaded.
pub fn load_initial_weights(params: &mut ParameterSet, path: &Path, reinitialised: &[&str]) -> PluginResult<Vec<String>> {
    let tensors = Tensor::read_safetensors(path)
        .map_err(|e| PluginError::Data(format!("{}: not a readable safetensors file: {}", path.display(), e.to_string().lines().next().unwrap_or(""))))?;
    let mut state = Vec::new();
    let mut unknown = Vec::new();
    for (name, tensor) in tensors {
        if name.ends_with("num_batches_tracked") {
            continue;
        }
        match params.get(&name) {
            Err(_) if name.starts_with("encoder.layer") => {}
            Err(_) => unknown.push(name),
            Ok(current) if current.size() != tensor.size() => {
                if !reinitialised.iter().any(|prefix| name.starts_with(prefix)) {
                    return Err(PluginError::Data(format!(
                        "{}: tensor `{name}` has shape {:?}, the network expects {:?}",
                        path.display(),
                        tensor.size(),
                        current.size()
                    )));
                }
            }
            Ok(_) => state.push((name, tensor)),
        }
    }
    if !unknown.is_empty() {
        return Err(PluginError::Data(format!(
            "{}: {} tensor(s) the network does not have, e.g. `{}` (expected names like `{}`)",
            path.display(),
            unknown.len(),
            unknown[0],
            params.iter().next().map(|p| p.name.as_str()).unwrap_or("")
        )));
    }
    let loaded: Vec<String> = state.iter().map(|(n, _)| n.clone()).collect();
    params.load_some(state)?;
    Ok(loaded)
}
