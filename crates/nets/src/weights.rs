//! Initial weights from a file: a state dict saved as safetensors, or as PyTorch writes it
//! (`torch.save(model.state_dict(), path)`: a `.pth` / `.pt` zip of a pickle and raw storages), read
//! by `pytorch-reader` — which interprets the pickle without running any of it.

use l2l_plugin_sdk::{ParameterSet, PluginError, PluginResult};
use pytorch_reader::{DType, PytorchReader};
use std::path::Path;
use tch::{Kind, Tensor};

/// How many names an error lists of each kind before it only counts.
const NAMED: usize = 3;

fn first_line(err: &(impl std::fmt::Display + ?Sized)) -> String {
    err.to_string().lines().next().unwrap_or("").to_string()
}

/// One tensor of a weights file: its name and shape, and how to get its values. A `.pth` names its
/// tensors in a pickle and keeps their bytes apart, so a file of a few kilobytes can declare
/// gigabytes (20 000 names sharing one storage, a stride-0 view of 2^30 values): the bytes are read
/// only for tensors the network has, in the network's shape.
struct FileTensor {
    name: String,
    shape: Vec<i64>,
    values: Box<dyn FnOnce() -> PluginResult<Tensor>>,
}

/// The tensors of a weights file: safetensors, or a PyTorch state dict (`.pth`, `.pt`).
fn read(path: &Path) -> PluginResult<Vec<FileTensor>> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match extension.as_str() {
        "pth" | "pt" => read_pytorch(path),
        // a safetensors file holds every value it declares, so reading it costs its own size
        "safetensors" => Ok(Tensor::read_safetensors(path)
            .map_err(|e| {
                PluginError::Data(format!(
                    "{}: not a readable safetensors file: {}",
                    path.display(),
                    first_line(&e)
                ))
            })?
            .into_iter()
            .map(|(name, tensor)| FileTensor {
                name,
                shape: tensor.size(),
                values: Box::new(move || Ok(tensor)),
            })
            .collect()),
        other => Err(PluginError::Data(format!(
            "{}: unknown weights format `.{other}`; expected a state dict as .safetensors, .pth or .pt",
            path.display()
        ))),
    }
}

/// The tensors of a `torch.save`d state dict, named as `state_dict()` names them; nothing is read yet.
fn read_pytorch(path: &Path) -> PluginResult<Vec<FileTensor>> {
    let display = path.display().to_string();
    let unreadable = move |e: &dyn std::fmt::Display| {
        PluginError::Data(format!(
            "{display}: not a readable PyTorch state dict: {}",
            first_line(e)
        ))
    };
    let reader = PytorchReader::new(path).map_err(|e| unreadable(&e))?;
    let mut tensors = Vec::new();
    for (name, stored) in reader.into_tensors() {
        let kind = match stored.dtype() {
            DType::F64 => Kind::Double,
            DType::F32 => Kind::Float,
            DType::F16 => Kind::Half,
            DType::BF16 => Kind::BFloat16,
            DType::I64 => Kind::Int64,
            DType::I32 => Kind::Int,
            DType::I16 => Kind::Int16,
            DType::I8 => Kind::Int8,
            DType::U8 => Kind::Uint8,
            DType::Bool => Kind::Bool,
            other => {
                return Err(PluginError::Data(format!(
                    "{}: tensor `{name}` has element type {other:?}, which no network weight has",
                    path.display()
                )))
            }
        };
        let shape: Vec<i64> = stored
            .shape()
            .iter()
            .map(|&d| i64::try_from(d).unwrap_or(i64::MAX))
            .collect();
        let unreadable = unreadable.clone();
        let values_shape = shape.clone();
        let values = Box::new(move || {
            let bytes = stored.read().map_err(|e| unreadable(&e))?;
            Tensor::f_from_data_size(&bytes, &values_shape, kind).map_err(|e| unreadable(&e))
        });
        tensors.push(FileTensor { name, shape, values });
    }
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(tensors)
}

/// The first few names: "`a`, `b`, `c`" or "`a`, `b`, `c`, …".
fn first_few(names: &[String]) -> String {
    let shown: Vec<String> = names.iter().take(NAMED).map(|n| format!("`{n}`")).collect();
    let more = if names.len() > NAMED { ", …" } else { "" };
    format!("{}{more}", shown.join(", "))
}

/// Loads a weights file into `params`. Every network tensor must come from the file (strict), except
/// those whose names start with one of `replaceable` and whose shape in the file differs (a classifier
/// head for another class count: replaced, and logged). Anything else — network tensors the file
/// lacks, file tensors the network does not have, tensors of another shape — is one error listing
/// them; with `strict = false` the matching tensors load and a warning says how many stay random.
/// PyTorch's `num_batches_tracked` counters are ignored, and so are encoder layers the network does not
/// build (segmentation_models_pytorch keeps the ResNet layers below its `encoder_depth`, unused).
/// Returns the names loaded.
pub fn load_initial_weights(
    params: &mut ParameterSet,
    path: &Path,
    replaceable: &[&str],
    strict: bool,
) -> PluginResult<Vec<String>> {
    let mut state = Vec::new();
    let (mut unexpected, mut misshaped, mut replaced) = (Vec::new(), Vec::new(), Vec::new());
    // names in the file with another shape: reported as such, not again as missing
    let mut present = Vec::new();
    for FileTensor { name, shape, values } in read(path)? {
        if name.ends_with("num_batches_tracked") {
            continue;
        }
        match params.get(&name) {
            Err(_) if name.starts_with("encoder.layer") => {}
            Err(_) => unexpected.push(name),
            Ok(current) if current.size() != shape => {
                if replaceable.iter().any(|prefix| name.starts_with(prefix)) {
                    replaced.push(name);
                } else {
                    misshaped.push(format!(
                        "{name}: {shape:?} in the file, {:?} in the network",
                        current.size()
                    ));
                    present.push(name);
                }
            }
            // read below, once the file is known to fit
            Ok(_) => state.push((name, values)),
        }
    }
    let missing: Vec<String> = params
        .iter()
        .map(|p| p.name.clone())
        .filter(|name| {
            !state.iter().any(|(loaded, _)| loaded == name) && !replaced.contains(name) && !present.contains(name)
        })
        .collect();
    let total = params.iter().count();
    if !(missing.is_empty() && unexpected.is_empty() && misshaped.is_empty()) {
        let mut problems = Vec::new();
        if !missing.is_empty() {
            problems.push(format!(
                "missing from the file: {} of the network's {total} ({})",
                missing.len(),
                first_few(&missing)
            ));
        }
        if !unexpected.is_empty() {
            problems.push(format!(
                "not in the network: {} ({})",
                unexpected.len(),
                first_few(&unexpected)
            ));
        }
        if !misshaped.is_empty() {
            problems.push(format!(
                "another shape: {} ({})",
                misshaped.len(),
                first_few(&misshaped)
            ));
        }
        let problems = problems.join("; ");
        if strict {
            return Err(PluginError::Data(format!(
                "{}: the weights do not fit the network — {problems} (a file for another depth or network? \
                 set `strict = false` to load only the tensors that fit)",
                path.display()
            )));
        }
        tracing::warn!(
            "{}: {} of the network's {total} tensors stay randomly initialised (strict = false): {problems}",
            path.display(),
            total - state.len()
        );
    }
    if !replaced.is_empty() {
        tracing::info!(
            "{}: {} tensor(s) replaced for the configured outputs ({})",
            path.display(),
            replaced.len(),
            first_few(&replaced)
        );
    }
    let loaded: Vec<String> = state.iter().map(|(n, _)| n.clone()).collect();
    let tensors = state
        .into_iter()
        .map(|(name, values)| Ok((name, values()?)))
        .collect::<PluginResult<Vec<_>>>()?;
    params.load_some(tensors)?;
    Ok(loaded)
}
