//! Malvar–He–Cutler against colour-demosaicing's `demosaicing_CFA_Bayer_Malvar2004` (fixtures from
//! `tests/fixtures/make_reference_fixtures.py`) for every CFA pattern and odd sizes — inside the 2-pixel
//! border with the default mirrored border, everywhere with colour-demosaicing's symmetric one; a
//! float64 gradient check; refusals.

use l2l_demosaic_malvar2004::DemosaicMalvar2004;
use l2l_ops::reference::{assert_differentiable, assert_matches_reference, assert_refuses_input};
use tch::{Device, Kind, Tensor};

#[test]
fn matches_colour_demosaicing() {
    // the fixtures' configs name no padding: mirrored, so compare away from the 2-pixel border ...
    assert_matches_reference::<DemosaicMalvar2004>(include_str!("fixtures/reference.json"), 2, 1e-12);
}

#[test]
fn matches_colour_demosaicing_everywhere_with_its_symmetric_border() {
    // ... and everywhere once the border is extended as colour-demosaicing extends it
    let json = include_str!("fixtures/reference.json")
        .replace("\"shape\"", "\"config\": {\"padding\": \"symmetric\"}, \"shape\"");
    assert_matches_reference::<DemosaicMalvar2004>(&json, 0, 1e-12);
}

#[test]
fn is_differentiable_in_its_input() {
    tch::manual_seed(11);
    assert_differentiable::<DemosaicMalvar2004>(
        "cfa_pattern = \"BGGR\"",
        &Tensor::rand([1, 1, 7, 8], (Kind::Double, Device::Cpu)),
    );
}

#[test]
fn an_rgb_image_is_refused() {
    let rgb = Tensor::zeros([1, 3, 8, 8], (Kind::Float, Device::Cpu));
    assert_refuses_input::<DemosaicMalvar2004>("", &rgb, "expected a raw mosaic batch [B, 1, H, W]");
}

/// Without gradients on the CPU, float32 mosaics take the per-site filter loop: it matches
/// colour-demosaicing too (to float32 precision), everywhere with the symmetric border.
#[test]
fn the_cpu_loop_matches_colour_demosaicing() {
    use l2l_plugin_sdk::{parse_config, BuildStage, Module};
    let json = include_str!("fixtures/reference.json");
    for case in l2l_ops::reference::reference_cases(json) {
        let config = format!("{}\npadding = \"symmetric\"", case.config_toml());
        let mut stage = DemosaicMalvar2004::build(parse_config(&config).unwrap()).unwrap();
        stage.to(Device::Cpu, Kind::Float).unwrap();
        let input = case.input().to_kind(Kind::Float);
        let output = tch::no_grad(|| stage.forward(&input)).unwrap();
        let difference = l2l_ops::reference::max_difference(&output.to_kind(Kind::Double), &case.expected(), 0);
        assert!(difference < 1e-5, "{config}: {difference}");
    }
}
