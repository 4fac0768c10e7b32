//! Bilinear demosaicing against what the definition implies, for every CFA pattern and odd sizes:
//! linear images are reconstructed exactly away from the border (each missing sample is the mean of
//! samples placed symmetrically around it), constants everywhere, and sampled values are kept.
//! Mosaics are made here by direct indexing, independently of the plugin's CFA masks.

use l2l_demosaic_bilinear::DemosaicBilinear;
use l2l_ops::gradcheck::max_gradient_error;
use l2l_plugin_sdk::{parse_config, BuildStage, CfaPattern, Module};
use tch::{Device, Kind, Tensor};

const PATTERNS: [(&str, CfaPattern); 4] = [
    ("RGGB", CfaPattern::Rggb),
    ("BGGR", CfaPattern::Bggr),
    ("GRBG", CfaPattern::Grbg),
    ("GBRG", CfaPattern::Gbrg),
];

fn demosaicer(pattern: &str) -> DemosaicBilinear {
    DemosaicBilinear::build(parse_config(&format!("cfa_pattern = \"{pattern}\"")).unwrap()).unwrap()
}

/// `rgb(c, y, x)` sampled through the CFA: a `[1, 1, h, w]` mosaic.
fn mosaic_of(pattern: CfaPattern, h: usize, w: usize, rgb: impl Fn(usize, usize, usize) -> f64) -> Tensor {
    let colours = pattern.colours();
    let values: Vec<f64> = (0..h * w)
        .map(|i| rgb(colours[(i / w % 2) * 2 + i % w % 2], i / w, i % w))
        .collect();
    Tensor::from_slice(&values).view([1, 1, h as i64, w as i64])
}

fn linear(c: usize, y: usize, x: usize) -> f64 {
    [0.1, 0.3, 0.2][c] + [0.010, -0.004, 0.007][c] * y as f64 + [0.003, 0.008, -0.006][c] * x as f64
}

#[test]
fn linear_images_are_reconstructed_exactly_inside_the_border() {
    for (name, pattern) in PATTERNS {
        for (h, w) in [(8, 10), (7, 9)] {
            let out = demosaicer(name).forward(&mosaic_of(pattern, h, w, linear)).unwrap();
            assert_eq!(out.size(), [1, 3, h as i64, w as i64]);
            for c in 0..3 {
                for y in 1..h - 1 {
                    for x in 1..w - 1 {
                        let got = out.double_value(&[0, c as i64, y as i64, x as i64]);
                        assert!(
                            (got - linear(c, y, x)).abs() < 1e-12,
                            "{name} {h}×{w} c{c} ({y},{x}): {got}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn constants_are_kept_everywhere_and_samples_are_kept_where_they_were_taken() {
    for (name, pattern) in PATTERNS {
        let constant = demosaicer(name)
            .forward(&mosaic_of(pattern, 5, 7, |c, _, _| [0.2, 0.5, 0.7][c]))
            .unwrap();
        for (c, value) in [0.2, 0.5, 0.7].into_iter().enumerate() {
            let plane = constant.get(0).get(c as i64);
            assert!(
                (plane - value).abs().max().double_value(&[]) < 1e-12,
                "{name} channel {c}"
            );
        }
        let sample = |c: usize, y: usize, x: usize| ((c * 31 + y * 7 + x * 13) % 17) as f64 / 17.0;
        let out = demosaicer(name).forward(&mosaic_of(pattern, 6, 6, sample)).unwrap();
        let colours = pattern.colours();
        for y in 0..6 {
            for x in 0..6 {
                let c = colours[(y % 2) * 2 + x % 2];
                let got = out.double_value(&[0, c as i64, y as i64, x as i64]);
                assert!((got - sample(c, y, x)).abs() < 1e-12, "{name} ({y},{x})");
            }
        }
    }
}

#[test]
fn the_demosaicer_is_differentiable_in_its_input() {
    tch::manual_seed(5);
    let mosaic = Tensor::rand([1, 1, 5, 6], (Kind::Double, Device::Cpu));
    let error = max_gradient_error(&mut demosaicer("GBRG"), &mosaic).unwrap();
    assert!(error < 1e-6, "gradient error {error}");
    // even sizes take the phase-plane path
    let even = Tensor::rand([1, 1, 6, 8], (Kind::Double, Device::Cpu));
    let error = max_gradient_error(&mut demosaicer("GBRG"), &even).unwrap();
    assert!(error < 1e-6, "gradient error {error} (phase planes)");
}

#[test]
fn wrong_inputs_are_refused_with_the_expected_shape() {
    let mut stage = demosaicer("RGGB");
    let rgb = Tensor::zeros([1, 3, 8, 8], (Kind::Float, Device::Cpu));
    assert!(stage
        .forward(&rgb)
        .unwrap_err()
        .to_string()
        .contains("expected a raw mosaic batch [B, 1, H, W]"));
    let tiny = Tensor::zeros([1, 1, 1, 8], (Kind::Float, Device::Cpu));
    assert!(stage
        .forward(&tiny)
        .unwrap_err()
        .to_string()
        .contains("at least 2×2 pixels (one CFA block), found 1×8"));
    assert!(
        parse_config::<l2l_demosaic_bilinear::DemosaicBilinearConfig>("cfa_pattern = \"RGBG\"")
            .unwrap_err()
            .to_string()
            .contains("cfa_pattern: expected one of `RGGB`, `BGGR`, `GRBG`, `GBRG`, found `RGBG`")
    );
}

#[test]
fn the_phase_plane_path_equals_the_filter_path() {
    use l2l_demosaic_bilinear::demosaic_by_phases;
    tch::manual_seed(17);
    let mosaic = Tensor::rand([2, 1, 8, 10], (Kind::Double, Device::Cpu));
    for (name, pattern) in PATTERNS {
        let stage = demosaicer(name);
        let by_filters = stage.demosaic_by_filters(&mosaic, pattern).unwrap();
        let by_phases = demosaic_by_phases(&mosaic, pattern).unwrap();
        let difference = (by_filters - by_phases).abs().max().double_value(&[]);
        assert!(difference < 1e-12, "{name}: {difference}");
    }
}

/// Without autograd on the CPU a float32 mosaic takes one fused pass per row: the filter path's float32
/// operations in its order, so the same bits — every pattern and border, odd sizes, negative values
/// (after a black level) included.
#[test]
fn the_fused_cpu_path_equals_the_filter_path_bit_for_bit() {
    tch::manual_seed(5);
    for (name, _) in PATTERNS {
        for padding in ["zero", "symmetric", "nearest", "mirror"] {
            let config = format!("cfa_pattern = \"{name}\"\npadding = \"{padding}\"");
            let mut stage = DemosaicBilinear::build(parse_config(&config).unwrap()).unwrap();
            for (h, w) in [(2, 2), (3, 5), (7, 4), (33, 31)] {
                let x = Tensor::rand([2, 1, h, w], (Kind::Float, Device::Cpu)) - 0.1;
                // with autograd on, the filter path runs (nothing requires a gradient, so no graph)
                let filters = stage.forward(&x).unwrap();
                let fused = tch::no_grad(|| stage.forward(&x)).unwrap();
                assert_eq!(fused.size(), [2, 3, h, w]);
                let difference = (&fused - &filters).abs().max().double_value(&[]);
                assert_eq!(difference, 0.0, "{config}, {h}×{w}");
            }
        }
    }
}

/// Issue 26: 1×1 and 2×1 mosaics panicked inside the CPU kernel; less than one CFA block is refused
/// with one message, and every size from one block up is taken, with and without gradients.
#[test]
fn mosaics_smaller_than_a_cfa_block_are_refused_and_every_larger_size_is_taken() {
    for (h, w) in [(1, 1), (2, 1), (1, 2), (1, 5)] {
        let mosaic = Tensor::full([1, 1, h, w], 0.5, (Kind::Float, Device::Cpu));
        let err = tch::no_grad(|| demosaicer("RGGB").forward(&mosaic))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!(
                "expected a mosaic of at least 2×2 pixels (one CFA block), found {h}×{w}"
            )),
            "{err}"
        );
    }
    for (h, w) in [(2, 2), (2, 3), (3, 2), (3, 3), (5, 4)] {
        let mosaic = Tensor::full([1, 1, h, w], 0.5, (Kind::Float, Device::Cpu));
        let out = tch::no_grad(|| demosaicer("GRBG").forward(&mosaic)).unwrap();
        assert_eq!(out.size(), [1, 3, h, w]);
        assert!(
            out.allclose(
                &Tensor::full([1, 3, h, w], 0.5, (Kind::Float, Device::Cpu)),
                1e-6,
                1e-6,
                false
            ),
            "{h}×{w}"
        );
        let out = demosaicer("GRBG").forward(&mosaic.set_requires_grad(true)).unwrap();
        assert_eq!(out.size(), [1, 3, h, w]);
    }
}
