//! l2l plugin `model-unetpp`: segmentation task models on a ResNet encoder — UNet++ (Zhou et al.,
//! 2018; the published Raw-Drone model: ResNet-34 encoder, depth 5) and a plain UNet (Ronneberger et
//! al., 2015) — built and named as segmentation_models_pytorch builds them, so its weights load.
//!
//! Input `[B, 3, H, W]` with H and W divisible by 2^encoder_stages; output logits `[B, classes, H, W]`
//! (one channel for binary segmentation, the host's choice for datasets without class names).

use l2l_nets::{
    load_initial_weights, DecoderKind, InputNormalization, Layers, ParameterBuilder, ResNet, ResNetDepth, UNet,
};
use l2l_plugin_sdk::{expect_rgb, BuildTaskModel, ComponentConfig, Module, ParameterSet, PluginError, PluginResult};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use tch::Tensor;

/// Config of the `unetplusplus` and `unet` task models.
#[derive(Debug, Clone, Serialize, Deserialize, ComponentConfig)]
#[serde(deny_unknown_fields, default)]
pub struct SegmentationConfig {
    /// The encoder's ResNet: 18, 34 or 50.
    #[config(default = 34)]
    pub encoder: u32,
    /// Channels of the encoder's stem and first residual layer (each later layer doubles them): 64 is
    /// segmentation_models_pytorch's encoder, which weights files need; smaller is a lighter network
    /// for quick runs.
    #[config(min = 4.0, max = 256.0, default = l2l_nets::TORCHVISION_WIDTH)]
    pub encoder_width: i64,
    /// Encoder stages below the input, 1..5 (sides must divide by 2^stages).
    #[config(default = 5)]
    pub encoder_stages: usize,
    /// Channels of the decoder levels, deepest first, one per encoder stage.
    #[config(default = vec![256, 128, 64, 32, 16])]
    pub decoder_channels: Vec<i64>,
    /// Initial weights: a segmentation_models_pytorch state dict (.pth, .pt or .safetensors),
    /// relative to the config file.
    #[config(default = None)]
    pub weights: Option<PathBuf>,
    /// Every network tensor must come from `weights`; false: load those that fit, warn how many stay
    /// random.
    #[config(default = true)]
    pub strict: bool,
    /// What the network does to its input first: `none`, or `imagenet` (per-channel ImageNet mean and
    /// std, what ImageNet-pretrained weights expect).
    #[config(choices, default = InputNormalization::None)]
    pub input_normalization: InputNormalization,
    /// Seed of the random initialisation.
    #[config(default = 0)]
    pub seed: u64,
}

/// A UNet-family segmentation network.
pub struct Segmentation<const PLUS_PLUS: bool> {
    params: ParameterSet,
    network: UNet,
    input_normalization: InputNormalization,
    train: bool,
}

impl<const PLUS_PLUS: bool> BuildTaskModel for Segmentation<PLUS_PLUS> {
    type Config = SegmentationConfig;
    const NAME: &'static str = if PLUS_PLUS { "unetplusplus" } else { "unet" };
    const SUMMARY: &'static str = if PLUS_PLUS {
        "UNet++ on a ResNet encoder (segmentation)"
    } else {
        "UNet on a ResNet encoder (segmentation)"
    };

    fn build(config: SegmentationConfig, num_classes: usize) -> PluginResult<Self> {
        if num_classes == 0 {
            return Err(PluginError::Config(
                "a segmentation network needs at least 1 output channel".into(),
            ));
        }
        tch::manual_seed(config.seed as i64);
        let encoder = ResNet::new(
            ResNetDepth::from_layers(config.encoder)?,
            3,
            config.encoder_stages,
            "encoder.",
        )?
        .with_width(config.encoder_width)?;
        let kind = if PLUS_PLUS {
            DecoderKind::UNetPlusPlus
        } else {
            DecoderKind::UNet
        };
        let network = UNet::new(encoder, kind, config.decoder_channels.clone(), num_classes as i64)?;
        let mut params = ParameterSet::new();
        network.build(&mut ParameterBuilder { params: &mut params })?;
        if let Some(path) = &config.weights {
            load_initial_weights(&mut params, path, &["segmentation_head."], config.strict)?;
        }
        Ok(Self {
            params,
            network,
            input_normalization: config.input_normalization,
            train: true,
        })
    }
}

impl<const PLUS_PLUS: bool> Module for Segmentation<PLUS_PLUS> {
    fn forward(&mut self, input: &Tensor) -> PluginResult<Tensor> {
        expect_rgb(input, if PLUS_PLUS { "unetplusplus" } else { "unet" })?;
        let layers = Layers {
            params: &self.params,
            train: self.train,
        };
        self.network.forward(&layers, &self.input_normalization.apply(input)?)
    }
    l2l_plugin_sdk::parameters_in!(params);
    fn set_train(&mut self, train: bool) {
        self.train = train;
    }
}

/// UNet++.
pub type UNetPlusPlus = Segmentation<true>;
/// Plain UNet.
pub type PlainUNet = Segmentation<false>;

l2l_plugin_sdk::plugin! { task_models: [UNetPlusPlus, PlainUNet] }
