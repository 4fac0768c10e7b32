//! l2l plugin `model-resnet`: ResNet-18/34/50 classifiers (He et al., 2016) as task models, the head
//! sized to the dataset's class count.
//!
//! Weights are named as torchvision names them, so a torchvision ResNet's state dict
//! (`torch.save(model.state_dict(), "resnet18.pth")`, or as safetensors) is a valid `weights` file: every tensor is checked
//! by name and shape, all must be there unless `strict = false`, and the head `fc` keeps its fresh
//! initialisation when the file's class count differs. Input `[B, 3, H, W]`, output logits `[B, classes]`.

use l2l_nets::{load_initial_weights, InputNormalization, Layers, ParameterBuilder, ResNet, ResNetDepth};
use l2l_plugin_sdk::{expect_rgb, BuildTaskModel, ComponentConfig, Module, ParameterSet, PluginError, PluginResult};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use tch::Tensor;

/// Config of the `resnet` task model.
#[derive(Debug, Clone, Serialize, Deserialize, ComponentConfig)]
#[serde(deny_unknown_fields, default)]
pub struct ResNetConfig {
    /// 18, 34 or 50.
    #[config(default = 18)]
    pub depth: u32,
    /// Channels of the stem and first residual layer (each later layer doubles them): 64 is
    /// torchvision's ResNet, which weights files need; smaller is a lighter network for quick runs.
    #[config(min = 4.0, max = 256.0, default = l2l_nets::TORCHVISION_WIDTH)]
    pub width: i64,
    /// Initial weights: a torchvision state dict (.pth, .pt or .safetensors), relative to the config file
    /// (fc re-initialised if the class count differs).
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

/// A ResNet classifier.
pub struct ResNetClassifier {
    params: ParameterSet,
    network: ResNet,
    input_normalization: InputNormalization,
    train: bool,
}

impl BuildTaskModel for ResNetClassifier {
    type Config = ResNetConfig;
    const NAME: &'static str = "resnet";
    const SUMMARY: &'static str = "ResNet-18/34/50 classifier (torchvision weight names)";

    fn build(config: ResNetConfig, num_classes: usize) -> PluginResult<Self> {
        if num_classes < 2 {
            return Err(PluginError::Config(format!(
                "a classifier needs at least 2 classes, found {num_classes}"
            )));
        }
        tch::manual_seed(config.seed as i64);
        let network = ResNet::new(ResNetDepth::from_layers(config.depth)?, 3, 5, "")?.with_width(config.width)?;
        let mut params = ParameterSet::new();
        let mut builder = ParameterBuilder { params: &mut params };
        network.build(&mut builder)?;
        network.build_head(&mut builder, num_classes as i64)?;
        if let Some(path) = &config.weights {
            load_initial_weights(&mut params, path, &["fc."], config.strict)?;
        }
        Ok(Self {
            params,
            network,
            input_normalization: config.input_normalization,
            train: true,
        })
    }
}

impl Module for ResNetClassifier {
    fn forward(&mut self, input: &Tensor) -> PluginResult<Tensor> {
        expect_rgb(input, Self::NAME)?;
        let layers = Layers {
            params: &self.params,
            train: self.train,
        };
        self.network.classify(&layers, &self.input_normalization.apply(input)?)
    }
    l2l_plugin_sdk::parameters_in!(params);
    fn set_train(&mut self, train: bool) {
        self.train = train;
    }
}

l2l_plugin_sdk::plugin! { task_models: [ResNetClassifier] }
