//! `DenoiseFft` against the published pipelines' luma filter, the scipy-lectures FFT recipe (fftpack.fft2, zeroed band, ifft2), applied to the Y of scikit-image's
//! `rgb2yuv` (fixtures from `tests/fixtures/make_reference_fixtures.py`), over the whole image;
//! and a float64 gradient check in the image and the learnable parameters.

use l2l_denoise_fft::DenoiseFft;
use l2l_ops::gradcheck::max_gradient_error;
use l2l_ops::reference::{max_difference, reference_cases};
use l2l_plugin_api::{parse_config, BuildStage, Module};
use tch::{Device, Kind, Tensor};

#[test]
fn matches_the_reference_filter_on_the_luma() {
    for case in reference_cases(include_str!("fixtures/reference.json")) {
        let mut stage = DenoiseFft::build(parse_config(&case.config_toml()).unwrap()).unwrap();
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
    let mut stage = DenoiseFft::build(Default::default()).unwrap();
    let error = max_gradient_error(&mut stage, &image).unwrap();
    assert!(error < 1e-6, "gradient error {error}");
}

#[test]
fn a_mosaic_is_refused() {
    let mut stage = DenoiseFft::build(Default::default()).unwrap();
    let mosaic = Tensor::zeros([1, 1, 8, 8], (Kind::Float, Device::Cpu));
    let err = stage.forward(&mosaic).unwrap_err().to_string();
    assert!(err.contains("expected an RGB batch [B, 3, H, W]"), "{err}");
}

#[test]
fn keep_fractions_outside_the_half_are_refused() {
    let err = parse_config("keep_fraction = 0.7").and_then(DenoiseFft::build).err().unwrap().to_string();
    assert!(err.contains("keep_fraction: expected a number in (0, 0.5]"), "{err}");
}
