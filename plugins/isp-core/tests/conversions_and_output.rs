//! isp-core's layout and output stages against their definitions: packing by CFA position, the YUV
//! transform's published matrix, batch normalisation's formula with running statistics, the additive
//! layer; and gradients.

use l2l_isp_core::{Additive, BatchNorm, Pack, RgbToYuv, YuvToRgb};
use l2l_ops::gradcheck::max_gradient_error;
use l2l_plugin_sdk::{parse_config, BuildStage, Module};
use tch::{Device, Kind, Tensor};

fn build<S: BuildStage>(config: &str) -> S {
    S::build(parse_config(config).unwrap()).unwrap()
}

#[test]
fn pack_puts_each_cfa_block_into_one_rgb_pixel() {
    // one 2×4 mosaic: blocks [[1,2],[3,4]] and [[5,6],[7,8]]
    let mosaic = Tensor::from_slice(&[1.0f64, 2.0, 5.0, 6.0, 3.0, 4.0, 7.0, 8.0]).view([1, 1, 2, 4]);
    let mut gbrg: Pack = build("cfa_pattern = \"GBRG\"");
    let out = gbrg.forward(&mosaic).unwrap();
    assert_eq!(out.size(), [1, 3, 1, 2]);
    // GBRG: G at 1 and 4, B at 2, R at 3
    let first: Vec<f64> = (0..3).map(|c| out.double_value(&[0, c, 0, 0])).collect();
    assert_eq!(first, [3.0, 2.5, 2.0]);
    let err = gbrg
        .forward(&Tensor::zeros([1, 1, 3, 4], (Kind::Double, Device::Cpu)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("with even height and width"), "{err}");
}

#[test]
fn yuv_uses_the_bt601_matrix_and_inverts_exactly() {
    let rgb = Tensor::from_slice(&[1.0f64, 0.0, 0.0]).view([1, 3, 1, 1]);
    let yuv = build::<RgbToYuv>("").forward(&rgb).unwrap();
    let got: Vec<f64> = (0..3).map(|c| yuv.double_value(&[0, c, 0, 0])).collect();
    for (g, e) in got.iter().zip([0.299, -0.14714119, 0.61497538]) {
        assert!((g - e).abs() < 1e-7, "{got:?}");
    }
    let x = Tensor::rand([2, 3, 4, 4], (Kind::Double, Device::Cpu));
    let back = build::<YuvToRgb>("")
        .forward(&build::<RgbToYuv>("").forward(&x).unwrap())
        .unwrap();
    assert!((back - &x).abs().max().double_value(&[]) < 1e-7);
}

#[test]
fn batch_norm_normalises_with_batch_statistics_then_running_ones() {
    let mut bn: BatchNorm = build("momentum = 0.5");
    bn.to(Device::Cpu, Kind::Double).unwrap();
    tch::manual_seed(4);
    let x = Tensor::rand([4, 3, 5, 5], (Kind::Double, Device::Cpu)) * 2.0 + 1.0;
    let y = bn.forward(&x).unwrap();
    let dims = [0i64, 2, 3];
    let mean = x.mean_dim(dims.as_slice(), true, Kind::Double);
    let var = x.var_dim(dims.as_slice(), false, true);
    let expected = (&x - &mean) / (var + 1e-5).sqrt();
    assert!((y - expected).abs().max().double_value(&[]) < 1e-9);
    // running mean after one step with momentum 0.5 from 0: half the batch mean
    let state = bn.state().unwrap();
    let running_mean = &state.iter().find(|(n, _)| n == "running_mean").unwrap().1;
    assert!((running_mean - mean.view([3]) * 0.5).abs().max().double_value(&[]) < 1e-9);
    bn.set_train(false);
    let y_eval = bn.forward(&x).unwrap();
    let running_var = &state.iter().find(|(n, _)| n == "running_var").unwrap().1;
    let expected_eval = (&x - running_mean.view([1, 3, 1, 1])) / (running_var.view([1, 3, 1, 1]) + 1e-5).sqrt();
    assert!((y_eval - expected_eval).abs().max().double_value(&[]) < 1e-9);
}

#[test]
fn the_additive_layer_starts_as_the_identity_and_learns_an_image() {
    let mut layer: Additive = build("height = 4\nwidth = 5");
    let x = Tensor::rand([2, 3, 4, 5], (Kind::Double, Device::Cpu));
    layer.to(Device::Cpu, Kind::Double).unwrap();
    assert!((layer.forward(&x).unwrap() - &x).abs().max().double_value(&[]) == 0.0);
    let error = max_gradient_error(&mut layer, &x).unwrap();
    assert!(error < 1e-6, "gradient error {error}");
    let err = layer
        .forward(&Tensor::zeros([1, 3, 4, 6], (Kind::Double, Device::Cpu)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected [B, 3, 4, 5]"), "{err}");
}

#[test]
fn layout_and_colour_stages_are_differentiable() {
    let mosaic = Tensor::rand([1, 1, 4, 6], (Kind::Double, Device::Cpu));
    let rgb = Tensor::rand([1, 3, 4, 6], (Kind::Double, Device::Cpu));
    assert!(max_gradient_error(&mut build::<Pack>(""), &mosaic).unwrap() < 1e-6);
    assert!(max_gradient_error(&mut build::<RgbToYuv>(""), &rgb).unwrap() < 1e-6);
    assert!(max_gradient_error(&mut build::<YuvToRgb>(""), &rgb).unwrap() < 1e-6);
    // in training, through the batch statistics
    assert!(max_gradient_error(&mut build::<BatchNorm>(""), &(rgb * 2.0 + 0.5)).unwrap() < 1e-6);
}
