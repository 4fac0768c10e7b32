//! Malvar–He–Cutler against colour-demosaicing's `demosaicing_CFA_Bayer_Malvar2004` (fixtures from
//! `tests/fixtures/make_reference_fixtures.py`) for every CFA pattern and odd sizes, away from the
//! 2-pixel border where the two pad differently; and a float64 gradient check.

use l2l_demosaic_malvar2004::DemosaicMalvar2004;
use l2l_ops::gradcheck::max_gradient_error;
use l2l_ops::reference::{max_difference, reference_cases};
use l2l_plugin_api::{parse_config, BuildStage, Module};
use tch::{Device, Kind, Tensor};

#[test]
fn matches_colour_demosaicing_inside_the_border() {
    for case in reference_cases(include_str!("fixtures/reference.json")) {
        let mut stage = DemosaicMalvar2004::build(parse_config(&case.config_toml()).unwrap()).unwrap();
        let out = stage.forward(&case.input()).unwrap();
        let error = max_difference(&out, &case.expected(), 2);
        assert!(error < 1e-12, "{:?} {:?}: max difference {error}", case.pattern, case.shape);
    }
}

#[test]
fn is_differentiable_in_its_input() {
    tch::manual_seed(11);
    let mosaic = Tensor::rand([1, 1, 7, 8], (Kind::Double, Device::Cpu));
    let mut stage = DemosaicMalvar2004::build(parse_config("cfa_pattern = \"BGGR\"").unwrap()).unwrap();
    let error = max_gradient_error(&mut stage, &mosaic).unwrap();
    assert!(error < 1e-6, "gradient error {error}");
}
