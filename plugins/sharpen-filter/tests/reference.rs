//! `SharpenFilter` against the published pipelines' luma filter, convolve2d(Y, [[0,-1,0],[-1,5,-1],[0,-1,0]], "same", fill 0), applied to the Y of
//! scikit-image's `rgb2yuv` (fixtures from `tests/fixtures/make_reference_fixtures.py`), over the whole
//! image; a float64 gradient check in the image and the learnable parameters; refusals.

use l2l_sharpen_filter::SharpenFilter;
use l2l_ops::reference::{assert_differentiable, assert_matches_reference, assert_refuses_input};
use tch::{Device, Kind, Tensor};

#[test]
fn matches_the_reference_filter_on_the_luma() {
    // parameters are stored as float32, so a σ like 1.3 is 1.2999999523: 1e-7, not 1e-12
    assert_matches_reference::<SharpenFilter>(include_str!("fixtures/reference.json"), 0, 1e-7);
}

#[test]
fn is_differentiable() {
    tch::manual_seed(13);
    assert_differentiable::<SharpenFilter>("", &Tensor::rand([2, 3, 8, 9], (Kind::Double, Device::Cpu)));
}

#[test]
fn a_mosaic_is_refused() {
    let mosaic = Tensor::zeros([1, 1, 8, 8], (Kind::Float, Device::Cpu));
    assert_refuses_input::<SharpenFilter>("", &mosaic, "expected an RGB batch [B, 3, H, W]");
}
