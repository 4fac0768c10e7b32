//! Menon (2007) against colour-demosaicing's `demosaicing_CFA_Bayer_Menon2007` (fixtures from
//! `tests/fixtures/make_reference_fixtures.py`), with and without the refining step, every CFA pattern,
//! odd sizes, the whole image (both mirror the border); and a float64 gradient check.

use l2l_demosaic_menon2007::DemosaicMenon2007;
use l2l_ops::reference::{assert_differentiable, assert_matches_reference, assert_refuses_input, reference_cases};
use tch::{Device, Kind, Tensor};

#[test]
fn matches_colour_demosaicing_everywhere() {
    let json = include_str!("fixtures/reference.json");
    assert!(
        reference_cases(json).iter().any(|c| c.refine == Some(false)),
        "fixtures cover the unrefined variant"
    );
    assert_matches_reference::<DemosaicMenon2007>(json, 0, 1e-12);
}

#[test]
fn is_differentiable_in_its_input_almost_everywhere() {
    // away from ties of the directional decision, which a random input does not hit
    tch::manual_seed(12);
    assert_differentiable::<DemosaicMenon2007>(
        "cfa_pattern = \"GRBG\"",
        &Tensor::rand([1, 1, 8, 9], (Kind::Double, Device::Cpu)),
    );
}

#[test]
fn an_rgb_image_is_refused() {
    let rgb = Tensor::zeros([1, 3, 8, 8], (Kind::Float, Device::Cpu));
    assert_refuses_input::<DemosaicMenon2007>("", &rgb, "expected a raw mosaic batch [B, 1, H, W]");
}

/// Without gradients on the CPU, float32 mosaics take the fused row passes (`src/cpu.rs`):
/// colour-demosaicing's results still, to float32 precision.
#[test]
fn the_cpu_loops_match_colour_demosaicing() {
    use l2l_plugin_sdk::{parse_config, BuildStage, Module};
    for case in reference_cases(include_str!("fixtures/reference.json")) {
        let mut stage = DemosaicMenon2007::build(parse_config(&case.config_toml()).unwrap()).unwrap();
        stage.to(Device::Cpu, Kind::Float).unwrap();
        let input = case.input().to_kind(Kind::Float);
        let output = tch::no_grad(|| stage.forward(&input)).unwrap();
        let difference = l2l_ops::reference::max_difference(&output.to_kind(Kind::Double), &case.expected(), 0);
        assert!(difference < 1e-5, "{}: {difference}", case.config_toml());
    }
}

/// The fused CPU loops compute the tensor path's float32 operations in the same order: the same bits,
/// the directional decisions included, for every CFA pattern, with and without refining, at odd sizes.
#[test]
fn the_fused_cpu_path_equals_the_tensor_path_bit_for_bit() {
    use l2l_plugin_sdk::{parse_config, BuildStage, Module};
    tch::manual_seed(3);
    for pattern in ["RGGB", "BGGR", "GRBG", "GBRG"] {
        for refine in [true, false] {
            let config = format!("cfa_pattern = \"{pattern}\"\nrefine = {refine}");
            let mut stage = DemosaicMenon2007::build(parse_config(&config).unwrap()).unwrap();
            for (h, w) in [(3, 3), (4, 7), (9, 6), (33, 31)] {
                let x = Tensor::rand([2, 1, h, w], (Kind::Float, Device::Cpu));
                // with autograd on, the tensor path runs (nothing requires a gradient, so no graph)
                let tensor_path = stage.forward(&x).unwrap();
                let cpu_path = tch::no_grad(|| stage.forward(&x)).unwrap();
                assert_eq!(cpu_path.size(), [2, 3, h, w]);
                let difference = (&cpu_path - &tensor_path).abs().max().double_value(&[]);
                assert_eq!(difference, 0.0, "{config}, {h}×{w}");
            }
        }
    }
}
