//! The neural processor is differentiable end to end: autograd's gradients with respect to the raw
//! input and every trainable weight match float64 central finite differences (a small network, in
//! evaluation mode so that batch norm is a fixed affine map).

use l2l_ops::gradcheck::max_gradient_error;
use l2l_plugin_sdk::{parse_config, BuildStage, Module};
use l2l_processor_nn::NeuralProcessor;
use tch::{Device, Kind, Tensor};

#[test]
fn the_neural_processor_passes_a_float64_finite_difference_gradient_check() {
    let config = parse_config("encoder = 18\nencoder_stages = 2\ndecoder_channels = [8, 4]\nseed = 3").unwrap();
    let mut processor = NeuralProcessor::build(config).unwrap();
    processor.set_train(false);
    tch::manual_seed(11);
    let mosaic = Tensor::rand([2, 1, 16, 16], (Kind::Double, Device::Cpu)) * 0.8 + 0.1;
    let error = max_gradient_error(&mut processor, &mosaic).unwrap();
    assert!(error < 1e-6, "largest gradient error {error}");
}
