//! l2l plugin `denoise-gaussian`: Gaussian smoothing of the luma with learnable σ, as the published
//! pipelines denoise (`scipy.ndimage.gaussian_filter(Y, σ)`: truncated at 4σ, symmetric border).
//! Differentiable in the image and in σ; the kernel's support stays the one of the initial σ.

use l2l_ops::{gaussian_blur, gaussian_radius, on_luma, Padding};
use l2l_plugin_api::{
    expect_rgb, BuildStage, ComponentConfig, ComponentRegistration, Module, ParameterSet, PluginError, PluginResult,
};
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// Config of [`DenoiseGaussian`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DenoiseGaussianConfig {
    /// Standard deviation in pixels.
    pub sigma: f64,
    /// How the border is extended.
    pub padding: Padding,
    /// Learn σ.
    pub trainable: bool,
}

impl Default for DenoiseGaussianConfig {
    fn default() -> Self {
        Self { sigma: 0.5, padding: Padding::Symmetric, trainable: true }
    }
}

impl ComponentConfig for DenoiseGaussianConfig {
    const KEY_DOCS: &'static [(&'static str, &'static str)] = &[
        ("sigma", "standard deviation of the Gaussian, in pixels (> 0)"),
        ("padding", "border: symmetric (as scipy), mirror, nearest or zero"),
        ("trainable", "learn sigma"),
    ];
}

/// Blurs the luma with a Gaussian.
pub struct DenoiseGaussian {
    params: ParameterSet,
    kernel_radius: i64,
    padding: Padding,
}

impl BuildStage for DenoiseGaussian {
    type Config = DenoiseGaussianConfig;
    fn build(config: DenoiseGaussianConfig) -> PluginResult<Self> {
        if !(config.sigma.is_finite() && config.sigma > 0.0) {
            return Err(PluginError::Config(format!("sigma: expected a number > 0, found {}", config.sigma)));
        }
        let mut params = ParameterSet::new();
        params.add("sigma", &Tensor::from_slice(&[config.sigma]), config.trainable)?;
        Ok(Self { params, kernel_radius: gaussian_radius(config.sigma), padding: config.padding })
    }
}

impl Module for DenoiseGaussian {
    fn forward(&mut self, input: &Tensor) -> PluginResult<Tensor> {
        expect_rgb(input, "denoise_gaussian")?;
        let sigma = self.params.get("sigma")?;
        on_luma(input, |luma| gaussian_blur(luma, sigma, self.kernel_radius, self.padding))
    }
    l2l_plugin_api::parameters_in!(params);
}

inventory::submit! { ComponentRegistration::stage::<DenoiseGaussian>("denoise_gaussian", "Gaussian smoothing of the luma (learnable sigma)") }

l2l_plugin_api::export_plugin!();
