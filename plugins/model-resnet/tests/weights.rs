//! Initial weights from safetensors: loaded by name, checked by shape (strictly: see l2l-nets' own
//! tests), the head re-initialised for another class count.

use l2l_model_resnet::{ResNetClassifier, ResNetConfig};
use l2l_plugin_sdk::{BuildTaskModel, Module};
use tch::Tensor;

fn tensors(model: &ResNetClassifier) -> Vec<(String, Tensor)> {
    model.parameter_set().state().unwrap()
}

#[test]
fn weights_load_by_name_and_the_head_follows_the_class_count() {
    let dir = tempfile::tempdir().unwrap();
    let source = ResNetClassifier::build(
        ResNetConfig {
            seed: 7,
            ..Default::default()
        },
        4,
    )
    .unwrap();
    let file = dir.path().join("resnet18.safetensors");
    Tensor::write_safetensors(&tensors(&source), &file).unwrap();
    let with = |classes| {
        let config = ResNetConfig {
            weights: Some(file.clone()),
            seed: 1,
            ..Default::default()
        };
        ResNetClassifier::build(config, classes)
    };
    let same = with(4).unwrap();
    for ((name, a), (_, b)) in tensors(&source).iter().zip(tensors(&same)) {
        assert!(a.equal(&b), "{name} not loaded");
    }
    let other = with(3).unwrap();
    for ((name, a), (_, b)) in tensors(&source).iter().zip(tensors(&other)) {
        if name.starts_with("fc.") {
            assert_eq!(b.size()[0], 3, "{name}");
        } else {
            assert!(a.equal(&b), "{name} not loaded");
        }
    }
    // a tensor of the wrong shape, and one the network does not have
    let mut bad = tensors(&source);
    bad[0].1 = Tensor::zeros([2, 2], (tch::Kind::Float, tch::Device::Cpu));
    Tensor::write_safetensors(&bad, &file).unwrap();
    let err = with(4).err().unwrap().to_string();
    assert!(
        err.contains("another shape: 1 (`conv1.weight: [2, 2] in the file, [64, 3, 7, 7] in the network`)"),
        "{err}"
    );
    assert!(
        !err.contains("missing from the file"),
        "a mis-shaped tensor is not also missing: {err}"
    );
    let mut extra = tensors(&source);
    extra.push((
        "head.extra".into(),
        Tensor::zeros([1], (tch::Kind::Float, tch::Device::Cpu)),
    ));
    Tensor::write_safetensors(&extra, &file).unwrap();
    let err = with(4).err().unwrap().to_string();
    assert!(err.contains("not in the network: 1 (`head.extra`)"), "{err}");
    std::fs::write(&file, b"not safetensors").unwrap();
    assert!(with(4)
        .err()
        .unwrap()
        .to_string()
        .contains("not a readable safetensors file"));
}
