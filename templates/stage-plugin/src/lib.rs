//! An example third-party l2l stage: exposure compensation, `y = x · 2^ev`, with `ev` learnable.
//!
//! The shape every stage plugin has: a config struct (serde, `deny_unknown_fields`, documented
//! defaults), the stage (`BuildStage` + `Module`), one `inventory::submit!` per component, and
//! `export_plugin!()` once.

use l2l_plugin_api::{
    BuildStage, ComponentConfig, ComponentRegistration, ImageKind, Module, ParameterSet, PluginError, PluginResult,
};
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// Config of [`Exposure`].
#[derive(Debug, Clone, Serialize, Deserialize, ComponentConfig)]
#[serde(deny_unknown_fields, default)]
pub struct ExposureConfig {
    /// Exposure change in stops: the image is multiplied by 2^ev.
    pub ev: f64,
    /// Learn ev.
    pub trainable: bool,
}

impl Default for ExposureConfig {
    fn default() -> Self {
        Self {
            ev: 0.0,
            trainable: true,
        }
    }
}

/// Multiplies the image by `2^ev`.
pub struct Exposure {
    params: ParameterSet,
}

impl BuildStage for Exposure {
    type Config = ExposureConfig;
    const INPUT: ImageKind = ImageKind::Any;
    const OUTPUT: ImageKind = ImageKind::Any;
    fn build(config: ExposureConfig) -> PluginResult<Self> {
        if !config.ev.is_finite() || config.ev.abs() > 16.0 {
            return Err(PluginError::Config(format!(
                "ev: expected a number of stops in [-16, 16], found {}",
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
    l2l_plugin_api::parameters_in!(params);
}

inventory::submit! { ComponentRegistration::stage::<Exposure>("exposure", "exposure compensation: x · 2^ev") }

l2l_plugin_api::export_plugin!();
