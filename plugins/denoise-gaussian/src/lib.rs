//! l2l plugin `denoise-gaussian`: Gaussian smoothing of the luma with learnable σ, as the published
//! pipelines denoise (`scipy.ndimage.gaussian_filter(Y, σ)`: truncated at 4σ, symmetric border).
//! Differentiable in the image and in σ; the kernel's support stays the one of the initial σ. With
//! `learn_kernel`, the whole 2-D kernel is the learnable parameter instead (initialised to the
//! Gaussian of σ): the "blur kernel" of the published parametrized pipeline.

use l2l_ops::{filter_channels_padded, gaussian_blur, gaussian_kernel, gaussian_radius, on_luma, ColourSpace, Padding};
use l2l_plugin_sdk::{
    expect_rgb, BuildStage, ComponentConfig, ImageKind, Module, ParameterSet, PluginError, PluginResult,
};
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// Config of [`DenoiseGaussian`].
#[derive(Debug, Clone, Serialize, Deserialize, ComponentConfig)]
#[serde(deny_unknown_fields, default)]
pub struct DenoiseGaussianConfig {
    /// Standard deviation of the Gaussian, in pixels (> 0).
    #[config(min = 0.1, max = 16.0, default = 0.5)]
    pub sigma: f64,
    /// Border (the default as scipy pads).
    #[config(choices, default = Padding::Symmetric)]
    pub padding: Padding,
    /// Learn sigma (or the kernel, with learn_kernel).
    #[config(default = true)]
    pub trainable: bool,
    /// Learn the whole (2r+1)×(2r+1) kernel, initialised to the Gaussian, instead of sigma.
    #[config(default = false)]
    pub learn_kernel: bool,
    /// Rgb: RGB in and out (converted to YUV around the filter); yuv: the input is YUV already.
    #[config(choices, default = ColourSpace::Rgb)]
    pub colour_space: ColourSpace,
}

/// Blurs the luma with a Gaussian.
pub struct DenoiseGaussian {
    params: ParameterSet,
    colour_space: ColourSpace,
    kernel_radius: i64,
    padding: Padding,
}

impl BuildStage for DenoiseGaussian {
    type Config = DenoiseGaussianConfig;
    const NAME: &'static str = "denoise_gaussian";
    const SUMMARY: &'static str = "Gaussian smoothing of the luma (learnable sigma)";
    const INPUT: ImageKind = ImageKind::Rgb;
    const OUTPUT: ImageKind = ImageKind::Rgb;
    fn build(config: DenoiseGaussianConfig) -> PluginResult<Self> {
        if !(config.sigma.is_finite() && config.sigma > 0.0) {
            return Err(PluginError::Config(format!(
                "sigma: expected a number > 0, found {}",
                config.sigma
            )));
        }
        let radius = gaussian_radius(config.sigma);
        let sigma = Tensor::from_slice(&[config.sigma]);
        let mut params = ParameterSet::new();
        if config.learn_kernel {
            let g = gaussian_kernel(&sigma, radius)?;
            let kernel = g.f_unsqueeze(1)?.f_mul(&g.f_unsqueeze(0)?)?;
            params.add("kernel", &kernel, config.trainable)?;
        } else {
            params.add("sigma", &sigma, config.trainable)?;
        }
        Ok(Self {
            params,
            kernel_radius: radius,
            padding: config.padding,
            colour_space: config.colour_space,
        })
    }
}

impl Module for DenoiseGaussian {
    fn forward(&mut self, input: &Tensor) -> PluginResult<Tensor> {
        expect_rgb(input, Self::NAME)?;
        match self.params.get("kernel") {
            Ok(kernel) => on_luma(input, self.colour_space, |luma| {
                filter_channels_padded(luma, &kernel.f_unsqueeze(0)?, self.padding)
            }),
            Err(_) => {
                let sigma = self.params.get("sigma")?;
                on_luma(input, self.colour_space, |luma| {
                    gaussian_blur(luma, sigma, self.kernel_radius, self.padding)
                })
            }
        }
    }
    /// The kernel's radius (fixed at build, as scipy's for the initial σ).
    fn row_reach(&self) -> Option<usize> {
        Some(self.kernel_radius as usize)
    }
    l2l_plugin_sdk::parameters_in!(params);
}

l2l_plugin_sdk::plugin! { stages: [DenoiseGaussian] }
