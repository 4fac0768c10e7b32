//! An example third-party l2l stage: exposure compensation, `y = x · 2^ev`, with `ev` learnable.
//!
//! The shape every stage plugin has: a config struct (serde, `deny_unknown_fields`, documented
//! defaults), the stage (`BuildStage` with its name + `Module`), and `plugin!` once, naming every
//! component of the plugin.

use l2l_plugin_sdk::{BuildStage, ComponentConfig, ImageKind, Module, ParameterSet, PluginError, PluginResult};
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// Config of [`Exposure`].
#[derive(Debug, Clone, Serialize, Deserialize, ComponentConfig)]
#[serde(deny_unknown_fields, default)]
pub struct ExposureConfig {
    /// Exposure change in stops: the image is multiplied by 2^ev.
    #[config(min = -16.0, max = 16.0, default = 0.0)]
    pub ev: f64,
    /// Learn ev.
    #[config(default = true)]
    pub trainable: bool,
}

/// Multiplies the image by `2^ev`.
pub struct Exposure {
    params: ParameterSet,
}

impl BuildStage for Exposure {
    type Config = ExposureConfig;
    const NAME: &'static str = "exposure";
    const SUMMARY: &'static str = "exposure compensation: x · 2^ev";
    const INPUT: ImageKind = ImageKind::Any;
    const OUTPUT: ImageKind = ImageKind::Any;
    fn build(config: ExposureConfig) -> PluginResult<Self> {
        // the range [-16, 16] is declared on the key (refused when parsed, NaN too, and kept by forensics);
        // `build` is also called with configs made in code, which no parser has seen
        if !config.ev.is_finite() {
            return Err(PluginError::Config(format!(
                "ev: expected a number of stops, found {}",
                config.ev
            )));
        }
        let mut params = ParameterSet::new();
        params.add("ev", &Tensor::from_slice(&[config.ev]), config.trainable)?;
        Ok(Self { params })
    }
}

impl Module for Exposure {
    fn forward(&mut self, input: &Tensor) -> PluginResult<Tensor> {
        let gain = self.params.get("ev")?.f_exp2()?;
        Ok(input.f_mul(&gain)?)
    }
    /// Per pixel, the same gain wherever the pixel is: export may run it in bands (the default
    /// `forward_band` is right; a stage whose gain depends on the pixel's position overrides it).
    fn row_reach(&self) -> Option<usize> {
        Some(0)
    }
    l2l_plugin_sdk::parameters_in!(params);
}

l2l_plugin_sdk::plugin! { stages: [Exposure] }
