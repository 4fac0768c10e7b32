//! The stage's own tests, run with `cargo test` in the plugin's folder (after `eval "$(l2l-host
//! plugin-env)"`): an analytic value, the float64 gradient check, the stage contract, and the band
//! check export relies on. Keep them when you change the stage; add a reference for your algorithm.

use l2l_exposure::{Exposure, ExposureConfig};
use l2l_ops::bandcheck::max_band_difference;
use l2l_ops::gradcheck::max_gradient_error;
use l2l_plugin_sdk::{parse_config, BuildStage, ComponentConfig, ImageKind, Module};
use tch::{Device, Kind, Tensor};

fn stage(config: &str) -> Exposure {
    Exposure::build(parse_config(config).expect("config")).expect("stage")
}

fn image() -> Tensor {
    tch::manual_seed(3);
    Tensor::rand([2, 3, 10, 7], (Kind::Float, Device::Cpu))
}

#[test]
fn one_stop_up_doubles_the_image() {
    let input = Tensor::full([1, 3, 2, 2], 0.25, (Kind::Float, Device::Cpu));
    let output = stage("ev = 1.0").forward(&input).unwrap();
    assert_eq!(Vec::<f32>::try_from(output.flatten(0, -1)).unwrap(), vec![0.5; 12]);
}

#[test]
fn gradients_match_float64_finite_differences() {
    let error = max_gradient_error(&mut stage("ev = 0.3"), &image()).unwrap();
    assert!(error < 1e-6, "largest gradient error {error}");
}

#[test]
fn the_stage_keeps_its_contract_and_documents_its_keys() {
    assert_eq!((Exposure::INPUT, Exposure::OUTPUT), (ImageKind::Any, ImageKind::Any));
    let input = image();
    assert_eq!(stage("").forward(&input).unwrap().size(), input.size());
    let keys: Vec<&str> = ExposureConfig::keys().iter().map(|k| k.name).collect();
    assert_eq!(keys, ["ev", "trainable"]);
    assert!(
        parse_config::<ExposureConfig>("ev = 17.0").is_err(),
        "outside the declared range"
    );
    assert!(parse_config::<ExposureConfig>("evv = 1.0").is_err(), "unknown key");
}

#[test]
fn bands_give_what_the_whole_image_gives() {
    let difference = max_band_difference(&mut stage("ev = -0.5"), &image(), 4).unwrap();
    assert_eq!(difference, 0.0);
}
