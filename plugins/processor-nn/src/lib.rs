//! l2l plugin `processor-nn`: the neural-network ISP of "From Lens to Logit" — instead of explicit
//! stages, a UNet++ (ResNet-34 encoder of depth 3, decoder channels 256/128/64) maps the 2×2-packed raw
//! (red, mean green, blue at half resolution) to RGB, followed by batch normalisation without affine
//! parameters. Trained jointly with the task model (processing mode `neural_network`).
//!
//! Input: a mosaic `[B, 1, H, W]` (H and W divisible by 2^(stages+1)); output `[B, 3, H/2, W/2]`.

use l2l_nets::{load_initial_weights, DecoderKind, Layers, ParameterBuilder, ResNet, ResNetDepth, UNet};
use l2l_plugin_sdk::{
    expect_mosaic, BuildStage, CameraSource, CfaKeys, CfaPattern, ComponentConfig, ImageKind, Module, ParameterSet,
    PluginResult,
};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use tch::Tensor;

/// Config of the `processor_nn` stage.
#[derive(Debug, Clone, Serialize, Deserialize, ComponentConfig)]
#[serde(default)]
pub struct ProcessorConfig {
    /// The encoder's ResNet: 18, 34 or 50.
    #[config(default = 34)]
    pub encoder: u32,
    /// Encoder stages below the input.
    #[config(default = 3)]
    pub encoder_stages: usize,
    /// Decoder channels, deepest first, one per encoder stage.
    #[config(default = vec![256, 128, 64])]
    pub decoder_channels: Vec<i64>,
    /// The CFA layout, or the metadata's.
    #[serde(flatten)]
    pub cfa: CfaKeys,
    /// Initial weights (safetensors), every tensor of the network.
    #[config(default = None)]
    pub weights: Option<PathBuf>,
    /// Seed of the random initialisation.
    #[config(default = 0)]
    pub seed: u64,
}

/// The neural-network processor.
pub struct NeuralProcessor {
    params: ParameterSet,
    network: UNet,
    pattern: CfaPattern,
    camera: CameraSource,
    train: bool,
}

impl BuildStage for NeuralProcessor {
    type Config = ProcessorConfig;
    const NAME: &'static str = "processor_nn";
    const SUMMARY: &'static str = "neural-network ISP: UNet++ on the packed raw, output batch norm";
    const INPUT: ImageKind = ImageKind::Mosaic;
    const OUTPUT: ImageKind = ImageKind::Rgb;

    fn build(config: ProcessorConfig) -> PluginResult<Self> {
        tch::manual_seed(config.seed as i64);
        let encoder = ResNet::new(
            ResNetDepth::from_layers(config.encoder)?,
            3,
            config.encoder_stages,
            "encoder.",
        )?;
        let network = UNet::new(encoder, DecoderKind::UNetPlusPlus, config.decoder_channels.clone(), 3)?;
        let mut params = ParameterSet::new();
        let mut builder = ParameterBuilder { params: &mut params };
        network.build(&mut builder)?;
        builder.batch_norm("output_bn", 3, false)?;
        if let Some(path) = &config.weights {
            load_initial_weights(&mut params, path, &[], true)?;
        }
        Ok(Self {
            params,
            network,
            pattern: config.cfa.cfa_pattern,
            camera: config.cfa.camera(),
            train: true,
        })
    }
}

impl Module for NeuralProcessor {
    fn forward(&mut self, input: &Tensor) -> PluginResult<Tensor> {
        expect_mosaic(input, Self::NAME)?;
        let packed = l2l_ops::pack_cfa(input, self.camera.cfa_pattern_or(Self::NAME, self.pattern)?, Self::NAME)?;
        let layers = Layers {
            params: &self.params,
            train: self.train,
        };
        let rgb = self.network.forward(&layers, &packed)?;
        layers.batch_norm(&rgb, "output_bn")
    }
    l2l_plugin_sdk::parameters_in!(params);
    fn set_train(&mut self, train: bool) {
        self.train = train;
    }
    l2l_plugin_sdk::camera_in!(camera);
}

l2l_plugin_sdk::plugin! { stages: [NeuralProcessor] }
