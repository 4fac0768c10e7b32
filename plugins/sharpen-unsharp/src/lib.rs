//! l2l plugin `sharpen-unsharp`: unsharp masking of the luma, `Y + amount · (Y − G_radius ∗ Y)`, as
//! scikit-image's `unsharp_mask(preserve_range=True)` computes it (Gaussian of standard deviation
//! `radius`, truncated at 4σ, symmetric border), which the published pipelines apply to the Y of
//! `rgb2yuv`. `radius` and `amount` are learnable; the kernel's support stays the one of the initial
//! radius.

use l2l_ops::{gaussian_blur, gaussian_radius, on_luma, ColourSpace, Padding};
use l2l_plugin_sdk::{
    expect_rgb, BuildStage, ComponentConfig, ImageKind, Module, ParameterSet, PluginError, PluginResult,
};
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// Config of [`SharpenUnsharp`].
#[derive(Debug, Clone, Serialize, Deserialize, ComponentConfig)]
#[serde(deny_unknown_fields, default)]
pub struct SharpenUnsharpConfig {
    /// Standard deviation of the Gaussian blur, in pixels (> 0).
    #[config(min = 0.1, max = 16.0, default = 1.0)]
    pub radius: f64,
    /// How much of the detail (image − blurred) is added.
    #[config(min = 0.0, max = 8.0, default = 1.0)]
    pub amount: f64,
    /// Border (the default as scikit-image pads).
    #[config(choices, default = Padding::Symmetric)]
    pub padding: Padding,
    /// Learn radius and amount.
    #[config(default = true)]
    pub trainable: bool,
    /// Rgb: RGB in and out (converted to YUV around the filter); yuv: the input is YUV already.
    #[config(choices, default = ColourSpace::Rgb)]
    pub colour_space: ColourSpace,
}

/// Adds `amount` times the detail above a Gaussian blur of the luma.
pub struct SharpenUnsharp {
    params: ParameterSet,
    colour_space: ColourSpace,
    kernel_radius: i64,
    padding: Padding,
}

impl BuildStage for SharpenUnsharp {
    type Config = SharpenUnsharpConfig;
    const NAME: &'static str = "sharpen_unsharp";
    const SUMMARY: &'static str = "unsharp masking of the luma (learnable radius and amount)";
    const INPUT: ImageKind = ImageKind::Rgb;
    const OUTPUT: ImageKind = ImageKind::Rgb;
    fn build(config: SharpenUnsharpConfig) -> PluginResult<Self> {
        if !(config.radius.is_finite() && config.radius > 0.0) {
            return Err(PluginError::Config(format!(
                "radius: expected a number > 0, found {}",
                config.radius
            )));
        }
        if !config.amount.is_finite() {
            return Err(PluginError::Config(format!(
                "amount: expected a finite number, found {}",
                config.amount
            )));
        }
        let mut params = ParameterSet::new();
        params.add("radius", &Tensor::from_slice(&[config.radius]), config.trainable)?;
        params.add("amount", &Tensor::from_slice(&[config.amount]), config.trainable)?;
        Ok(Self {
            params,
            kernel_radius: gaussian_radius(config.radius),
            padding: config.padding,
            colour_space: config.colour_space,
        })
    }
}

impl Module for SharpenUnsharp {
    fn forward(&mut self, input: &Tensor) -> PluginResult<Tensor> {
        expect_rgb(input, Self::NAME)?;
        let (radius, amount) = (self.params.get("radius")?, self.params.get("amount")?);
        on_luma(input, self.colour_space, |luma| {
            let blurred = gaussian_blur(luma, radius, self.kernel_radius, self.padding)?;
            Ok(luma.f_add(&luma.f_sub(&blurred)?.f_mul(amount)?)?)
        })
    }
    /// The blur kernel's radius (fixed at build, as scipy's for the initial radius).
    fn row_reach(&self) -> Option<usize> {
        Some(self.kernel_radius as usize)
    }
    l2l_plugin_sdk::parameters_in!(params);
}

l2l_plugin_sdk::plugin! { stages: [SharpenUnsharp] }
