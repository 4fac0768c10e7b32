//! `SharpenUnsharp` against the published pipelines' luma filter, skimage.filters.unsharp_mask(Y, radius, amount, preserve_range=True), applied to the Y of
//! scikit-image's `rgb2yuv` (fixtures from `tests/fixtures/make_reference_fixtures.py`), over the whole
//! image; a float64 gradient check in the image and the learnable parameters; refusals.

use l2l_ops::reference::{
    assert_differentiable, assert_matches_reference, assert_refuses_config, assert_refuses_input,
};
use l2l_sharpen_unsharp::SharpenUnsharp;
use tch::{Device, Kind, Tensor};

#[test]
fn matches_the_reference_filter_on_the_luma() {
    // parameters are stored as float32, so a σ like 1.3 is 1.2999999523: 1e-7, not 1e-12
    assert_matches_reference::<SharpenUnsharp>(include_str!("fixtures/reference.json"), 0, 1e-7);
}

#[test]
fn is_differentiable() {
    tch::manual_seed(13);
    assert_differentiable::<SharpenUnsharp>("", &Tensor::rand([2, 3, 8, 9], (Kind::Double, Device::Cpu)));
}

#[test]
fn a_mosaic_is_refused() {
    let mosaic = Tensor::zeros([1, 1, 8, 8], (Kind::Float, Device::Cpu));
    assert_refuses_input::<SharpenUnsharp>("", &mosaic, "expected an RGB batch [B, 3, H, W]");
}

#[test]
fn out_of_range_configs_are_refused() {
    assert_refuses_config::<SharpenUnsharp>("radius = -1.0", "radius: expected values in [0.1, 16], found -1");
}
