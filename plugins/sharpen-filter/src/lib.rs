//! l2l plugin `sharpen-filter`: sharpening of the luma by a 3×3 kernel, learnable, as the published
//! pipelines sharpen (`rgb2yuv`, `convolve2d(Y, kernel, "same")` with a zero border, `yuv2rgb`).
//! The default kernel `[[0,-1,0],[-1,5,-1],[0,-1,0]]` adds the negative Laplacian to the image.
//! A true convolution (the kernel is flipped, as `convolve2d` does), linear in the image and in the
//! kernel, so differentiable in both.

use l2l_ops::{filter_channels_padded, on_luma, ColourSpace, Padding};
use l2l_plugin_sdk::{
    expect_rgb, BuildStage, ComponentConfig, ImageKind, Module, ParameterSet, PluginError, PluginResult,
};
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// Config of [`SharpenFilter`].
#[derive(Debug, Clone, Serialize, Deserialize, ComponentConfig)]
#[serde(deny_unknown_fields, default)]
pub struct SharpenFilterConfig {
    /// 3×3 sharpening kernel applied to the luma (convolution).
    #[config(default = [[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]])]
    pub kernel: [[f32; 3]; 3],
    /// Border (the default as the published pipelines pad).
    #[config(choices, default = Padding::Zero)]
    pub padding: Padding,
    /// Learn the kernel.
    #[config(default = true)]
    pub trainable: bool,
    /// Rgb: RGB in and out (converted to YUV around the filter); yuv: the input is YUV already.
    #[config(choices, default = ColourSpace::Rgb)]
    pub colour_space: ColourSpace,
}

/// Convolves the luma with a learnable 3×3 kernel.
pub struct SharpenFilter {
    params: ParameterSet,
    colour_space: ColourSpace,
    padding: Padding,
}

impl BuildStage for SharpenFilter {
    type Config = SharpenFilterConfig;
    const NAME: &'static str = "sharpen_filter";
    const SUMMARY: &'static str = "sharpen the luma with a learnable 3×3 kernel";
    const INPUT: ImageKind = ImageKind::Rgb;
    const OUTPUT: ImageKind = ImageKind::Rgb;
    fn build(config: SharpenFilterConfig) -> PluginResult<Self> {
        let flat: Vec<f32> = config.kernel.iter().flatten().copied().collect();
        if let Some(v) = flat.iter().find(|v| !v.is_finite()) {
            return Err(PluginError::Config(format!(
                "kernel: expected finite numbers, found {v}"
            )));
        }
        let mut params = ParameterSet::new();
        params.add("kernel", &Tensor::from_slice(&flat).f_view([3, 3])?, config.trainable)?;
        Ok(Self {
            params,
            padding: config.padding,
            colour_space: config.colour_space,
        })
    }
}

impl Module for SharpenFilter {
    fn forward(&mut self, input: &Tensor) -> PluginResult<Tensor> {
        expect_rgb(input, Self::NAME)?;
        let kernel = self.params.get("kernel")?.f_flip([0, 1])?.f_unsqueeze(0)?;
        on_luma(input, self.colour_space, |luma| {
            filter_channels_padded(luma, &kernel, self.padding)
        })
    }
    /// One row: the 3×3 kernel reaches the rows above and below.
    fn row_reach(&self) -> Option<usize> {
        Some(1)
    }
    l2l_plugin_sdk::parameters_in!(params);
}

l2l_plugin_sdk::plugin! { stages: [SharpenFilter] }
