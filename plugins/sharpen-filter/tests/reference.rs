//! `SharpenFilter` against the published pipelines' luma filter, convolve2d(Y, [[0,-1,0],[-1,5,-1],[0,-1,0]], "same", fill 0), applied to the Y of
//! scikit-image's `rgb2yuv` (fixtures from `tests/fixtures/make_reference_fixtures.py`), over the whole
//! image; a float64 gradient check in the image and the learnable parameters; refusals.

use l2l_ops::reference::{assert_differentiable, assert_matches_reference, assert_refuses_input};
use l2l_sharpen_filter::SharpenFilter;
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

#[test]
fn on_yuv_input_it_filters_the_luma_only() {
    use l2l_ops::{rgb_to_yuv, yuv_to_rgb};
    use l2l_plugin_sdk::{parse_config, BuildStage, Module};
    let x = Tensor::rand([2, 3, 6, 7], (Kind::Double, Device::Cpu));
    let mut on_rgb = SharpenFilter::build(parse_config("").unwrap()).unwrap();
    let mut on_yuv = SharpenFilter::build(parse_config("colour_space = \"yuv\"").unwrap()).unwrap();
    on_rgb.to(Device::Cpu, Kind::Double).unwrap();
    on_yuv.to(Device::Cpu, Kind::Double).unwrap();
    let yuv = rgb_to_yuv(&x).unwrap();
    let filtered = on_yuv.forward(&yuv).unwrap();
    assert!(
        (filtered.narrow(1, 1, 2) - yuv.narrow(1, 1, 2))
            .abs()
            .max()
            .double_value(&[])
            == 0.0,
        "chroma changed"
    );
    let via_yuv = yuv_to_rgb(&filtered).unwrap();
    assert!((via_yuv - on_rgb.forward(&x).unwrap()).abs().max().double_value(&[]) < 1e-12);
}
