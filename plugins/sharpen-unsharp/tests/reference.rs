//! `SharpenUnsharp` against the published pipelines' luma filter, skimage.filters.unsharp_mask(Y, radius, amount, preserve_range=True), applied to the Y of scikit-image's
//! `rgb2yuv` (fixtures from `tests/fixtures/make_reference_fixtures.py`), over the whole image;
//! and a float64 gradient check in the image and the learnable parameters.

use l2l_sharpen_unsharp::SharpenUnsharp;
use l2l_ops::gradcheck::max_gradient_error;
use l2l_ops::reference::{max_difference, reference_cases};
use l2l_plugin_api::{parse_config, BuildStage, Module};
use tch::{Device, Kind, Tensor};

#[test]
fn matches_the_reference_filter_on_the_luma() {
    for case in reference_cases(include_str!("fixtures/reference.json")) {
        let mut stage = SharpenUnsharp::build(parse_config(&case.config_toml()).unwrap()).unwrap();
        stage.to(Device::Cpu, Kind::Double).unwrap();
        let out = stage.forward(&case.input()).unwrap();
        let error = max_difference(&out, &case.expected(), 0);
        // parameters are stored as float32, so a σ like 1.3 is 1.2999999523: 1e-7, not 1e-12
        assert!(error < 1e-7, "{}: max difference {error}", case.config_toml());
    }
}

#[test]
fn is_differentiable() {
    tch::manual_seed(13);
    let image = Tensor::rand([2, 3, 8, 9], (Kind::Double, Device::Cpu));
    let mut stage = SharpenUnsharp::build(Default::default()).unwrap();
    let error = max_gradient_error(&mut stage, &image).unwrap();
    assert!(error < 1e-6, "gradient error {error}");
}

#[test]
fn a_mosaic_is_refused() {
    let mut stage = SharpenUnsharp::build(Default::default()).unwrap();
    let mosaic = Tensor::zeros([1, 1, 8, 8], (Kind::Float, Device::Cpu));
    let err = stage.forward(&mosaic).unwrap_err().to_string();
    assert!(err.contains("expected an RGB batch [B, 3, H, W]"), "{err}");
}

#[test]
fn out_of_range_radius_is_refused() {
    let err = parse_config("radius = -1.0").and_then(SharpenUnsharp::build).err().unwrap().to_string();
    assert!(err.contains("radius: expected a number > 0, found -1"), "{err}");
}
