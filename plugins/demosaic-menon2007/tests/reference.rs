//! Menon (2007) against colour-demosaicing's `demosaicing_CFA_Bayer_Menon2007` (fixtures from
//! `tests/fixtures/make_reference_fixtures.py`), with and without the refining step, every CFA pattern,
//! odd sizes, the whole image (both mirror the border); and a float64 gradient check.

use l2l_demosaic_menon2007::DemosaicMenon2007;
use l2l_ops::gradcheck::max_gradient_error;
use l2l_ops::reference::{max_difference, reference_cases};
use l2l_plugin_api::{parse_config, BuildStage, Module};
use tch::{Device, Kind, Tensor};

#[test]
fn matches_colour_demosaicing_everywhere() {
    let cases = reference_cases(include_str!("fixtures/reference.json"));
    assert!(cases.iter().any(|c| c.refine == Some(false)), "fixtures cover the unrefined variant");
    for case in cases {
        let mut stage = DemosaicMenon2007::build(parse_config(&case.config_toml()).unwrap()).unwrap();
        let out = stage.forward(&case.input()).unwrap();
        let error = max_difference(&out, &case.expected(), 0);
        assert!(error < 1e-12, "{:?} {:?} refine {:?}: max difference {error}", case.pattern, case.shape, case.refine);
    }
}

#[test]
fn is_differentiable_in_its_input_almost_everywhere() {
    tch::manual_seed(12);
    // away from ties of the directional decision, which a random input does not hit
    let mosaic = Tensor::rand([1, 1, 8, 9], (Kind::Double, Device::Cpu));
    let mut stage = DemosaicMenon2007::build(parse_config("cfa_pattern = \"GRBG\"").unwrap()).unwrap();
    let error = max_gradient_error(&mut stage, &mosaic).unwrap();
    assert!(error < 1e-6, "gradient error {error}");
}
