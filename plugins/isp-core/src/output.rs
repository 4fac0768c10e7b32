//! Stages at the processor's output: batch normalisation without affine parameters (what the
//! published parametrized pipeline ends with) and a learnable additive layer (the perturbation drift
//! forensics searches over).

use l2l_plugin_sdk::{BuildStage, ComponentConfig, ImageKind, Module, ParameterSet, PluginError, PluginResult};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// Config of [`BatchNorm`].
#[derive(Debug, Clone, Serialize, Deserialize, ComponentConfig)]
#[serde(deny_unknown_fields, default)]
pub struct BatchNormConfig {
    /// Number of channels.
    #[config(default = 3)]
    pub channels: i64,
    /// Weight of the newest batch in the running mean and variance, in (0, 1].
    #[config(default = 0.1)]
    pub momentum: f64,
    /// Added to the variance before dividing.
    #[config(default = 1e-5)]
    pub epsilon: f64,
}

/// `(x − mean) / sqrt(var + ε)` per channel: batch statistics in training (updating running ones),
/// running statistics in evaluation, as `torch.nn.BatchNorm2d(affine=False)`.
pub struct BatchNorm {
    params: ParameterSet,
    running_mean: Tensor,
    running_var: Tensor,
    momentum: f64,
    epsilon: f64,
    training: bool,
}

impl BuildStage for BatchNorm {
    type Config = BatchNormConfig;
    const NAME: &'static str = "batch_norm";
    const SUMMARY: &'static str = "batch normalisation without affine parameters";
    const INPUT: ImageKind = ImageKind::Any;
    const OUTPUT: ImageKind = ImageKind::Any;
    fn build(config: BatchNormConfig) -> PluginResult<Self> {
        if config.channels < 1 {
            return Err(PluginError::Config(format!(
                "channels: expected at least 1, found {}",
                config.channels
            )));
        }
        if !(config.momentum > 0.0 && config.momentum <= 1.0) {
            return Err(PluginError::Config(format!(
                "momentum: expected a number in (0, 1], found {}",
                config.momentum
            )));
        }
        if config.epsilon.is_nan() || config.epsilon <= 0.0 {
            return Err(PluginError::Config(format!(
                "epsilon: expected a number > 0, found {}",
                config.epsilon
            )));
        }
        let options = (Kind::Float, Device::Cpu);
        Ok(Self {
            params: ParameterSet::new(),
            running_mean: Tensor::f_zeros([config.channels], options)?,
            running_var: Tensor::f_ones([config.channels], options)?,
            momentum: config.momentum,
            epsilon: config.epsilon,
            training: true,
        })
    }
}

impl Module for BatchNorm {
    fn forward(&mut self, input: &Tensor) -> PluginResult<Tensor> {
        let channels = self.running_mean.size()[0];
        if input.dim() != 4 || input.size()[1] != channels {
            return Err(PluginError::Input(format!(
                "batch_norm: expected [B, {channels}, H, W], found {:?}",
                input.size()
            )));
        }
        Ok(Tensor::f_batch_norm(
            input,
            None::<&Tensor>,
            None::<&Tensor>,
            Some(&self.running_mean),
            Some(&self.running_var),
            self.training,
            self.momentum,
            self.epsilon,
            false,
        )?)
    }
    l2l_plugin_sdk::parameters_in!(params);

    fn set_train(&mut self, train: bool) {
        self.training = train;
    }
    fn state(&self) -> PluginResult<Vec<(String, Tensor)>> {
        Ok(vec![
            ("running_mean".into(), self.running_mean.f_detach_copy()?),
            ("running_var".into(), self.running_var.f_detach_copy()?),
        ])
    }
    fn load_state(&mut self, state: Vec<(String, Tensor)>) -> PluginResult<()> {
        for (name, value) in state {
            let target = match name.as_str() {
                "running_mean" => &mut self.running_mean,
                "running_var" => &mut self.running_var,
                other => {
                    return Err(PluginError::State(format!(
                        "unknown buffer `{other}` in state (expected running_mean, running_var)"
                    )))
                }
            };
            if target.size() != value.size() {
                return Err(PluginError::State(format!(
                    "{name}: expected shape {:?}, found {:?}",
                    target.size(),
                    value.size()
                )));
            }
            *target = value
                .f_to_device(target.device())?
                .f_to_kind(target.kind())?
                .f_detach_copy()?;
        }
        Ok(())
    }
    fn to(&mut self, device: Device, kind: Kind) -> PluginResult<()> {
        self.running_mean = self.running_mean.f_to_device(device)?.f_to_kind(kind)?;
        self.running_var = self.running_var.f_to_device(device)?.f_to_kind(kind)?;
        Ok(())
    }
}

/// Config of [`Additive`].
#[derive(Debug, Clone, Serialize, Deserialize, ComponentConfig)]
#[serde(deny_unknown_fields, default)]
pub struct AdditiveConfig {
    /// Image height the layer covers.
    #[config(default = 256)]
    pub height: i64,
    /// Image width the layer covers.
    #[config(default = 256)]
    pub width: i64,
    /// Channels of the image.
    #[config(default = 3)]
    pub channels: i64,
    /// Learn the layer (it starts at zero: the identity).
    #[config(default = true)]
    pub trainable: bool,
}

/// Adds a learnable per-pixel offset `[1, C, H, W]` to every image of the batch; zero at the start.
pub struct Additive {
    params: ParameterSet,
}

impl BuildStage for Additive {
    type Config = AdditiveConfig;
    const NAME: &'static str = "additive";
    const SUMMARY: &'static str = "learnable additive offset image";
    const INPUT: ImageKind = ImageKind::Any;
    const OUTPUT: ImageKind = ImageKind::Any;
    fn build(config: AdditiveConfig) -> PluginResult<Self> {
        if config.height < 1 || config.width < 1 || config.channels < 1 {
            return Err(PluginError::Config(format!(
                "height/width/channels: expected positive sizes, found {}×{}×{}",
                config.channels, config.height, config.width
            )));
        }
        let mut params = ParameterSet::new();
        let zeros = Tensor::f_zeros(
            [1, config.channels, config.height, config.width],
            (Kind::Float, Device::Cpu),
        )?;
        params.add("offset", &zeros, config.trainable)?;
        Ok(Self { params })
    }
}

impl Module for Additive {
    fn forward(&mut self, input: &Tensor) -> PluginResult<Tensor> {
        let offset = self.params.get("offset")?;
        if input.dim() != 4 || input.size()[1..] != offset.size()[1..] {
            return Err(PluginError::Input(format!(
                "additive: expected [B, {}, {}, {}] (the config's channels, height, width), found {:?}",
                offset.size()[1],
                offset.size()[2],
                offset.size()[3],
                input.size()
            )));
        }
        Ok(input.f_add(offset)?)
    }
    l2l_plugin_sdk::parameters_in!(params);
}
