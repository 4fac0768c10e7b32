//! Weight files are loaded strictly: a file for another network is refused with the tensors that do
//! not fit named, unless `strict` is off; a classifier head for another class count is replaced.

use l2l_nets::{load_initial_weights, ParameterBuilder, ResNet, ResNetDepth};
use l2l_plugin_sdk::ParameterSet;
use std::path::Path;
use tch::Tensor;

fn resnet(layers: u32, classes: i64) -> ParameterSet {
    let network = ResNet::new(ResNetDepth::from_layers(layers).unwrap(), 3, 5, "").unwrap();
    let mut params = ParameterSet::new();
    let mut builder = ParameterBuilder { params: &mut params };
    network.build(&mut builder).unwrap();
    network.build_head(&mut builder, classes).unwrap();
    params
}

fn save(params: &ParameterSet, path: &Path, rename: Option<(&str, &str)>) {
    let tensors: Vec<(String, Tensor)> = params
        .iter()
        .map(|p| {
            let name = match rename {
                Some((from, to)) if p.name == from => to.to_string(),
                _ => p.name.clone(),
            };
            (name, p.tensor.detach().copy())
        })
        .collect();
    Tensor::write_safetensors(&tensors, path).unwrap();
}

#[test]
fn a_resnet18_file_does_not_load_into_a_resnet34_unless_strict_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("resnet18.safetensors");
    save(&resnet(18, 10), &file, None);
    let mut deeper = resnet(34, 10);
    let total = deeper.iter().count();
    let err = load_initial_weights(&mut deeper, &file, &["fc."], true)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("resnet18.safetensors: the weights do not fit the network"),
        "{err}"
    );
    // as the issue measured it: 102 of ResNet-34's 182 tensors are in a ResNet-18 file, 80 are not
    assert!(
        err.contains(&format!(
            "missing from the file: 80 of the network's {total} (`layer1.2."
        )),
        "{err}"
    );
    assert!(err.contains("strict = false"), "{err}");
    let loaded = load_initial_weights(&mut deeper, &file, &["fc."], false).unwrap();
    assert_eq!((loaded.len(), total), (102, 182));
}

#[test]
fn a_misspelt_tensor_is_named_and_a_head_for_other_classes_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("misspelt.safetensors");
    save(&resnet(18, 10), &file, Some(("conv1.weight", "conv1.weigth")));
    let err = load_initial_weights(&mut resnet(18, 10), &file, &["fc."], true)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("missing from the file: 1 of the network's 102 (`conv1.weight`)"),
        "{err}"
    );
    assert!(err.contains("not in the network: 1 (`conv1.weigth`)"), "{err}");

    let file = dir.path().join("ten-classes.safetensors");
    let source = resnet(18, 10);
    save(&source, &file, None);
    let mut four = resnet(18, 4);
    let fresh_head = four.get("fc.weight").unwrap().copy();
    let loaded = load_initial_weights(&mut four, &file, &["fc."], true).unwrap();
    assert_eq!(loaded.len(), four.iter().count() - 2, "all but fc.weight and fc.bias");
    assert!(
        four.get("fc.weight").unwrap().equal(&fresh_head),
        "the head was not kept"
    );
    assert!(four
        .get("conv1.weight")
        .unwrap()
        .equal(source.get("conv1.weight").unwrap()));
}

#[test]
fn an_unknown_weights_format_is_refused_with_the_formats_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("weights.h5");
    std::fs::write(&file, b"not weights").unwrap();
    let err = load_initial_weights(&mut resnet(18, 4), &file, &["fc."], true)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown weights format `.h5`; expected a state dict as .safetensors"),
        "{err}"
    );
}
