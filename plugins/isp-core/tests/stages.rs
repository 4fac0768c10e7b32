//! isp-core's stages against their definitions (closed-form values computed here, independently of
//! the stage code) and against finite differences.

use l2l_isp_core::{BlackLevel, Clip, ColourMatrix, Gamma, WhiteBalance};
use l2l_ops::gradcheck::max_gradient_error;
use l2l_plugin_sdk::{parse_config, BuildStage, Module};
use tch::{Device, Kind, Tensor};

fn build<S: BuildStage>(config: &str) -> S {
    S::build(parse_config(config).unwrap()).unwrap()
}

fn build_err<S: BuildStage>(config: &str) -> String {
    match parse_config(config).and_then(S::build) {
        Ok(_) => panic!("config `{config}` was accepted"),
        Err(e) => e.to_string(),
    }
}

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).unwrap()
}

#[test]
fn black_level_subtracts_per_cfa_position_and_rescales_on_odd_sizes() {
    let mut stage: BlackLevel = build("black_level = [0.1, 0.2, 0.3, 0.4]");
    let x = Tensor::full([1, 1, 3, 5], 0.5, (Kind::Float, Device::Cpu));
    let y = stage.forward(&x).unwrap();
    let black = [[0.1, 0.2], [0.3, 0.4]];
    for row in 0..3 {
        for col in 0..5 {
            let b = black[row % 2][col % 2];
            let expected = (0.5 - b) / (1.0 - b);
            assert!(
                (y.double_value(&[0, 0, row as i64, col as i64]) - expected).abs() < 1e-6,
                "({row}, {col})"
            );
        }
    }
    let mut plain: BlackLevel = build("black_level = [0.1, 0.2, 0.3, 0.4]\nnormalize = false");
    assert!((plain.forward(&x).unwrap().double_value(&[0, 0, 1, 1]) - 0.1).abs() < 1e-6);
}

#[test]
fn white_balance_and_colour_matrix_follow_their_definitions() {
    let x = Tensor::from_slice(&[0.2f32, 0.4, 0.6])
        .view([1, 3, 1, 1])
        .repeat([2, 1, 2, 3]);
    let mut wb: WhiteBalance = build("gains = [2.0, 1.0, 1.5]");
    let pixel = values(&wb.forward(&x).unwrap().get(1).select(1, 1).select(1, 2));
    for (got, expected) in pixel.iter().zip([0.4, 0.4, 0.9]) {
        assert!((got - expected).abs() < 1e-6, "{pixel:?}");
    }
    // a negative gain flips its channel (the published Microscopy camera's red)
    let mut flipped: WhiteBalance = build("gains = [-0.6567, 1.0, 1.0]");
    assert!((flipped.forward(&x).unwrap().double_value(&[0, 0, 0, 0]) + 0.6567 * 0.2).abs() < 1e-6);
    let mut cm: ColourMatrix = build("matrix = [[1.0, 2.0, 0.0], [0.0, 1.0, -1.0], [0.5, 0.0, 0.5]]");
    let y = cm.forward(&x).unwrap();
    // M · (0.2, 0.4, 0.6) = (1.0, −0.2, 0.4)
    let pixel = values(&y.get(0).select(1, 0).select(1, 0));
    for (got, expected) in pixel.iter().zip([1.0, -0.2, 0.4]) {
        assert!((got - expected).abs() < 1e-6, "{pixel:?}");
    }
}

#[test]
fn clip_and_gamma_follow_their_definitions() {
    let x = Tensor::from_slice(&[-0.5f32, 0.0, 0.25, 1.0, 1.5]).view([1, 1, 1, 5]);
    let mut clip: Clip = build("");
    assert_eq!(values(&clip.forward(&x).unwrap()), [0.0, 0.0, 0.25, 1.0, 1.0]);
    let mut gamma: Gamma = build("gamma = 2.0");
    let y = values(&gamma.forward(&x).unwrap());
    // 0 for x ≤ 0, else max(x, 1e-5)^(1/2)
    for (got, expected) in y.iter().zip([0.0, 0.0, 0.5, 1.0, 1.5f64.sqrt()]) {
        assert!((got - expected).abs() < 1e-6, "{y:?}");
    }
}

#[test]
fn out_of_range_configs_are_refused_with_the_key() {
    // the ranges the configs declare
    assert!(build_err::<Gamma>("gamma = 0.0").contains("gamma: expected values in [0.25, 8], found 0"));
    assert!(build_err::<Gamma>("gamma = -2.2").contains("gamma: expected values in [0.25, 8], found -2.2"));
    assert!(build_err::<Gamma>("gamma = nan").contains("gamma: expected values in [0.25, 8], found NaN"));
    assert!(build_err::<BlackLevel>("black_level = [0.1, 0.1, 1.0, 0.1]")
        .contains("black_level: expected values in [0, 0.5], found 1"));
    assert!(build_err::<WhiteBalance>("gains = [1.0, 0.0, 1.0]")
        .contains("gains: expected gains of magnitude at least 1/16 (0.0625), found 0"));
    assert!(build_err::<WhiteBalance>("gains = [1.0, -0.05, 1.0]").contains("found -0.05"));
    assert!(
        build_err::<WhiteBalance>("gains = [1.0, 17.0, 1.0]").contains("gains: expected values in [-16, 16], found 17")
    );
    assert!(build_err::<WhiteBalance>("gains = [1.0, 1.0]").contains("invalid length 2"));
    assert!(build_err::<Clip>("min = 1.0\nmax = 0.0").contains("expected finite min < max"));
    assert!(build_err::<ColourMatrix>("matrix = 3").contains("invalid type"));
}

#[test]
fn wrong_input_shapes_are_refused() {
    let rgb = Tensor::zeros([1, 3, 4, 4], (Kind::Float, Device::Cpu));
    let mosaic = Tensor::zeros([1, 1, 4, 4], (Kind::Float, Device::Cpu));
    let mut black: BlackLevel = build("");
    assert!(black
        .forward(&rgb)
        .unwrap_err()
        .to_string()
        .contains("expected a raw mosaic batch [B, 1, H, W]"));
    let mut wb: WhiteBalance = build("");
    assert!(wb
        .forward(&mosaic)
        .unwrap_err()
        .to_string()
        .contains("expected an RGB batch [B, 3, H, W]"));
}

#[test]
fn every_stage_passes_a_float64_finite_difference_gradient_check() {
    tch::manual_seed(7);
    let rgb = Tensor::rand([2, 3, 5, 7], (Kind::Double, Device::Cpu)) * 0.8 + 0.1;
    let mosaic = Tensor::rand([2, 1, 5, 7], (Kind::Double, Device::Cpu)) * 0.6 + 0.3;
    let cases: Vec<(&str, Box<dyn Module>, &Tensor)> = vec![
        (
            "black_level",
            Box::new(build::<BlackLevel>("black_level = [0.05, 0.06, 0.07, 0.08]")),
            &mosaic,
        ),
        (
            "white_balance",
            Box::new(build::<WhiteBalance>("gains = [2.0, 1.0, 1.6]")),
            &rgb,
        ),
        (
            "colour_matrix",
            Box::new(build::<ColourMatrix>(
                "matrix = [[1.6, -0.4, -0.2], [-0.2, 1.5, -0.3], [0.0, -0.5, 1.5]]",
            )),
            &rgb,
        ),
        // inside (min, max) the clamp is the identity: its gradient exists there
        ("clip", Box::new(build::<Clip>("min = 0.0\nmax = 1.0")), &rgb),
        ("gamma", Box::new(build::<Gamma>("gamma = 2.2")), &rgb),
    ];
    for (name, mut stage, input) in cases {
        let error = max_gradient_error(stage.as_mut(), input).unwrap();
        assert!(error < 1e-6, "{name}: gradient error {error}");
    }
}

#[test]
fn gamma_without_autograd_gives_the_same_values() {
    let mut gamma: Gamma = build("gamma = 2.4");
    let x = Tensor::from_slice(&[-0.2f32, 0.0, 1e-3, 0.3, 1.0]).view([1, 1, 1, 5]);
    let with_grad = values(&gamma.forward(&x).unwrap());
    let without = values(&tch::no_grad(|| gamma.forward(&x)).unwrap());
    for (a, b) in with_grad.iter().zip(&without) {
        assert!((a - b).abs() < 1e-6, "{with_grad:?} vs {without:?}");
    }
    assert_eq!(without[1], 0.0);
}
