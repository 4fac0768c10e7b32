//! `DenoiseMedian` against the published pipelines' luma filter, scipy.ndimage.median_filter(Y, size), applied to the Y of
//! scikit-image's `rgb2yuv` (fixtures from `tests/fixtures/make_reference_fixtures.py`), over the whole
//! image; a float64 gradient check in the image and the learnable parameters; refusals.

use l2l_denoise_median::DenoiseMedian;
use l2l_ops::reference::{
    assert_differentiable, assert_matches_reference, assert_refuses_config, assert_refuses_input,
};
use tch::{Device, Kind, Tensor};

#[test]
fn matches_the_reference_filter_on_the_luma() {
    // parameters are stored as float32, so a σ like 1.3 is 1.2999999523: 1e-7, not 1e-12
    assert_matches_reference::<DenoiseMedian>(include_str!("fixtures/reference.json"), 0, 1e-7);
}

#[test]
fn is_differentiable() {
    tch::manual_seed(13);
    assert_differentiable::<DenoiseMedian>("", &Tensor::rand([2, 3, 8, 9], (Kind::Double, Device::Cpu)));
}

#[test]
fn a_mosaic_is_refused() {
    let mosaic = Tensor::zeros([1, 1, 8, 8], (Kind::Float, Device::Cpu));
    assert_refuses_input::<DenoiseMedian>("", &mosaic, "expected an RGB batch [B, 3, H, W]");
}

#[test]
fn out_of_range_configs_are_refused() {
    assert_refuses_config::<DenoiseMedian>("size = 4", "size: expected an odd window side");
}

#[test]
fn the_3x3_fast_path_equals_sorting_every_window() {
    use l2l_ops::{on_luma, pad, ColourSpace, Padding};
    use l2l_plugin_sdk::{parse_config, BuildStage, Module};
    tch::manual_seed(21);
    let image = Tensor::rand([2, 3, 64, 48], (Kind::Double, Device::Cpu));
    let mut stage = DenoiseMedian::build(parse_config("").unwrap()).unwrap();
    stage.to(Device::Cpu, Kind::Double).unwrap();
    let fast = stage.forward(&image).unwrap();
    // every window sorted by libtorch's median, computed here
    let sorted = on_luma(&image, ColourSpace::Rgb, |luma| {
        let windows = pad(luma, 1, 1, Padding::Symmetric)?.unfold(2, 3, 1).unfold(3, 3, 1);
        Ok(windows.reshape([2, 1, 64, 48, 9]).median_dim(-1, false).0)
    })
    .unwrap();
    assert!((fast - sorted).abs().max().double_value(&[]) < 1e-12);
}

#[test]
fn the_cpu_loop_used_without_gradients_equals_sorting_every_window() {
    use l2l_ops::{on_luma, pad, ColourSpace, Padding};
    use l2l_plugin_sdk::{parse_config, BuildStage, Module};
    tch::manual_seed(22);
    let image = Tensor::rand([2, 3, 37, 53], (Kind::Float, Device::Cpu));
    for (padding, mode) in [
        ("symmetric", Padding::Symmetric),
        ("mirror", Padding::Mirror),
        ("nearest", Padding::Nearest),
        ("zero", Padding::Zero),
    ] {
        let mut stage = DenoiseMedian::build(parse_config(&format!("padding = \"{padding}\"")).unwrap()).unwrap();
        let fast = tch::no_grad(|| stage.forward(&image)).unwrap();
        let sorted = on_luma(&image, ColourSpace::Rgb, |luma| {
            let windows = pad(luma, 1, 1, mode)?.unfold(2, 3, 1).unfold(3, 3, 1);
            Ok(windows.reshape([2, 1, 37, 53, 9]).median_dim(-1, false).0)
        })
        .unwrap();
        assert_eq!(fast.size(), sorted.size());
        // the median picks the same sample; the colour conversions around it differ in kernel (the
        // loop's own sums; libtorch's matrix product, whose MKL code path depends on the CPU: 2.4e-7
        // apart on an AVX-512 machine), so equal within 4 ulp of 1.0 on any CPU
        let largest = (fast - sorted).abs().max().double_value(&[]);
        assert!(largest <= 4.0 * f64::from(f32::EPSILON), "{padding}: {largest}");
    }
}
