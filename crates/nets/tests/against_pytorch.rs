//! l2l-nets against PyTorch: torchvision's ResNets and segmentation_models_pytorch's UNet / UNet++
//! give these outputs (eval mode) for the same formula weights and input
//! (`tests/fixtures/make_network_fixtures.py`); the same names must exist on both sides.

use l2l_nets::{DecoderKind, Layers, ParameterBuilder, ResNet, ResNetDepth, UNet};
use l2l_plugin_sdk::ParameterSet;
use tch::{Kind, Tensor};

fn fixture(case: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/networks.json")).unwrap();
    let all: serde_json::Value = serde_json::from_str(&text).unwrap();
    all["cases"][case].clone()
}

/// Sets every tensor of the set by the fixture's formula, in sorted-name order.
fn fill(params: &mut ParameterSet) {
    let mut names: Vec<String> = params.iter().map(|p| p.name.clone()).collect();
    names.sort();
    let state = names
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let shape = params.get(name).unwrap().size();
            let j = Tensor::arange(shape.iter().product::<i64>(), (Kind::Double, tch::Device::Cpu));
            let phase = j * 0.013 + 0.7 * k as f64;
            let values = if name.ends_with("running_var") {
                phase.sin().square() * 0.5 + 1.0
            } else {
                (phase + 0.5).sin() * 0.1
            };
            (name.clone(), values.view(shape.as_slice()).to_kind(Kind::Float))
        })
        .collect();
    params.load_state(state).unwrap();
}

fn input(shape: &[i64]) -> Tensor {
    let n: i64 = shape.iter().product();
    ((Tensor::arange(n, (Kind::Double, tch::Device::Cpu)) * 0.021).sin() * 0.5 + 0.5)
        .to_kind(Kind::Float)
        .view(shape)
}

fn check(case: &str, output: &Tensor) {
    let expected = fixture(case);
    let shape: Vec<i64> = expected["output_shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(output.size(), shape, "{case}");
    let flat = output.to_kind(Kind::Double).flatten(0, -1);
    let stride = expected["stride"].as_i64().unwrap();
    let values: Vec<f64> = expected["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let scale = values.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
    for (i, want) in values.iter().enumerate() {
        let got = flat.double_value(&[i as i64 * stride]);
        assert!(
            (got - want).abs() <= 1e-4 * scale,
            "{case}: element {}: {got} vs PyTorch {want}",
            i as i64 * stride
        );
    }
    let sum = flat.sum(Kind::Double).double_value(&[]);
    let want = expected["sum"].as_f64().unwrap();
    assert!(
        (sum - want).abs() <= 1e-4 * scale * flat.size()[0] as f64,
        "{case}: sum {sum} vs {want}"
    );
}

fn classifier(depth: ResNetDepth, classes: i64, case: &str) {
    let network = ResNet::new(depth, 3, 5, "").unwrap();
    let mut params = ParameterSet::new();
    let mut builder = ParameterBuilder { params: &mut params };
    network.build(&mut builder).unwrap();
    network.build_head(&mut builder, classes).unwrap();
    fill(&mut params);
    let shape: Vec<i64> = fixture(case)["input"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let output = network
        .classify(
            &Layers {
                params: &params,
                train: false,
            },
            &input(&shape),
        )
        .unwrap();
    check(case, &output);
}

fn segmenter(depth: ResNetDepth, stages: usize, kind: DecoderKind, decoder: &[i64], classes: i64, case: &str) {
    let encoder = ResNet::new(depth, 3, stages, "encoder.").unwrap();
    let network = UNet::new(encoder, kind, decoder.to_vec(), classes).unwrap();
    let mut params = ParameterSet::new();
    network.build(&mut ParameterBuilder { params: &mut params }).unwrap();
    fill(&mut params);
    let shape: Vec<i64> = fixture(case)["input"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let output = network
        .forward(
            &Layers {
                params: &params,
                train: false,
            },
            &input(&shape),
        )
        .unwrap();
    check(case, &output);
}

#[test]
fn resnets_equal_torchvision() {
    classifier(ResNetDepth::R18, 4, "resnet18_4");
    classifier(ResNetDepth::R50, 3, "resnet50_3");
}

#[test]
fn unet_plus_plus_equals_segmentation_models_pytorch() {
    segmenter(
        ResNetDepth::R18,
        5,
        DecoderKind::UNetPlusPlus,
        &[64, 32, 16, 16, 8],
        1,
        "unetplusplus_r18_d5",
    );
    segmenter(
        ResNetDepth::R34,
        3,
        DecoderKind::UNetPlusPlus,
        &[256, 128, 64],
        3,
        "unetplusplus_r34_d3",
    );
}

#[test]
fn unet_equals_segmentation_models_pytorch() {
    segmenter(
        ResNetDepth::R34,
        4,
        DecoderKind::UNet,
        &[64, 32, 16, 8],
        2,
        "unet_r34_d4",
    );
}
