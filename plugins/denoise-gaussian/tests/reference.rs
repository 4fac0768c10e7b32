//! `DenoiseGaussian` against the published pipelines' luma filter, scipy.ndimage.gaussian_filter(Y, sigma), applied to the Y of
//! scikit-image's `rgb2yuv` (fixtures from `tests/fixtures/make_reference_fixtures.py`), over the whole
//! image; a float64 gradient check in the image and the learnable parameters; refusals.

use l2l_denoise_gaussian::DenoiseGaussian;
use l2l_ops::gradcheck::max_gradient_error;
use l2l_ops::reference::{
    assert_differentiable, assert_matches_reference, assert_refuses_config, assert_refuses_input,
};
use l2l_plugin_sdk::{parse_config, BuildStage, Module};
use tch::{Device, Kind, Tensor};

#[test]
fn matches_the_reference_filter_on_the_luma() {
    // parameters are stored as float32, so a σ like 1.3 is 1.2999999523: 1e-7, not 1e-12
    assert_matches_reference::<DenoiseGaussian>(include_str!("fixtures/reference.json"), 0, 1e-7);
}

#[test]
fn is_differentiable() {
    tch::manual_seed(13);
    assert_differentiable::<DenoiseGaussian>("", &Tensor::rand([2, 3, 8, 9], (Kind::Double, Device::Cpu)));
}

#[test]
fn a_mosaic_is_refused() {
    let mosaic = Tensor::zeros([1, 1, 8, 8], (Kind::Float, Device::Cpu));
    assert_refuses_input::<DenoiseGaussian>("", &mosaic, "expected an RGB batch [B, 3, H, W]");
}

#[test]
fn out_of_range_configs_are_refused() {
    assert_refuses_config::<DenoiseGaussian>("sigma = -0.5", "sigma: expected values in [0.1, 16], found -0.5");
}

#[test]
fn a_learned_kernel_starts_as_the_gaussian() {
    let x = Tensor::rand([1, 3, 9, 10], (Kind::Double, Device::Cpu));
    let mut by_sigma = DenoiseGaussian::build(parse_config("sigma = 0.8").unwrap()).unwrap();
    let mut by_kernel = DenoiseGaussian::build(parse_config("sigma = 0.8\nlearn_kernel = true").unwrap()).unwrap();
    by_sigma.to(Device::Cpu, Kind::Double).unwrap();
    by_kernel.to(Device::Cpu, Kind::Double).unwrap();
    assert_eq!(by_kernel.parameter_set().get("kernel").unwrap().size(), [7, 7]);
    let difference = (by_sigma.forward(&x).unwrap() - by_kernel.forward(&x).unwrap())
        .abs()
        .max()
        .double_value(&[]);
    assert!(difference < 1e-6, "{difference}");
    assert!(max_gradient_error(&mut by_kernel, &x).unwrap() < 1e-6);
}
