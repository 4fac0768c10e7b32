//! l2l plugin `denoise-median`: median filtering of the luma in a square window, as the published
//! pipelines denoise (`scipy.ndimage.median_filter(Y, size)`, symmetric border). Differentiable almost
//! everywhere: the gradient reaches the pixel that is each window's median.

use l2l_ops::{grad_enabled, on_luma, pad, ColourSpace, Padding};
use l2l_plugin_sdk::{
    expect_rgb, BuildStage, ComponentConfig, ImageKind, Module, ParameterSet, PluginError, PluginResult,
};
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// Config of [`DenoiseMedian`].
#[derive(Debug, Clone, Serialize, Deserialize, ComponentConfig)]
#[serde(deny_unknown_fields, default)]
pub struct DenoiseMedianConfig {
    /// Side of the square window, odd (3: 3×3).
    #[config(default = 3)]
    pub size: i64,
    /// Border (the default as scipy pads).
    #[config(choices, default = Padding::Symmetric)]
    pub padding: Padding,
    /// Rgb: RGB in and out (converted to YUV around the filter); yuv: the input is YUV already.
    #[config(default = ColourSpace::Rgb)]
    pub colour_space: ColourSpace,
}

/// The median of each pixel's window, on the luma.
pub struct DenoiseMedian {
    params: ParameterSet,
    colour_space: ColourSpace,
    size: i64,
    padding: Padding,
}

impl BuildStage for DenoiseMedian {
    type Config = DenoiseMedianConfig;
    const NAME: &'static str = "denoise_median";
    const SUMMARY: &'static str = "median filtering of the luma";
    const INPUT: ImageKind = ImageKind::Rgb;
    const OUTPUT: ImageKind = ImageKind::Rgb;
    fn build(config: DenoiseMedianConfig) -> PluginResult<Self> {
        if config.size < 1 || config.size % 2 == 0 || config.size > 15 {
            return Err(PluginError::Config(format!(
                "size: expected an odd window side from 1 to 15, found {}",
                config.size
            )));
        }
        Ok(Self {
            params: ParameterSet::new(),
            size: config.size,
            padding: config.padding,
            colour_space: config.colour_space,
        })
    }
}

/// The median of every `size × size` window of `x` `[B, 1, H, W]`. 3×3 windows use sorted columns:
/// once each column of three is sorted (low ≤ middle ≤ high), a window's median is the median of
/// (the largest of its three lows, the median of its three middles, the smallest of its three highs) —
/// 18 element-wise min/max over the image instead of sorting nine values per pixel, about four times
/// faster on the CPU. Other sizes take `median` over the unfolded windows.
fn median_filter(x: &Tensor, size: i64, padding: Padding) -> PluginResult<Tensor> {
    let shape = x.size();
    let (h, w) = (shape[2], shape[3]);
    if size == 3 && !grad_enabled() && l2l_ops::cpu::eligible(x) {
        return l2l_ops::cpu::median3x3(x, padding);
    }
    let padded = pad(x, size / 2, size / 2, padding)?;
    if size == 3 {
        let row = |i: i64| padded.f_narrow(-2, i, h);
        let (a, b, c) = (row(0)?, row(1)?, row(2)?);
        // sort every column of three (over the padded width)
        let (low, high) = (a.f_minimum(&b)?, a.f_maximum(&b)?);
        let (middle, high) = (high.f_minimum(&c)?, high.f_maximum(&c)?);
        let (low, middle) = (low.f_minimum(&middle)?, low.f_maximum(&middle)?);
        let column = |t: &Tensor, j: i64| t.f_narrow(-1, j, w);
        let max_low = column(&low, 0)?
            .f_maximum(&column(&low, 1)?)?
            .f_maximum(&column(&low, 2)?)?;
        let min_high = column(&high, 0)?
            .f_minimum(&column(&high, 1)?)?
            .f_minimum(&column(&high, 2)?)?;
        let mid = median3(&column(&middle, 0)?, &column(&middle, 1)?, &column(&middle, 2)?)?;
        return median3(&max_low, &mid, &min_high);
    }
    let windows = padded.f_unfold(2, size, 1)?.f_unfold(3, size, 1)?;
    let flat = windows.f_reshape([shape[0], shape[1], h, w, size * size])?;
    Ok(flat.f_median_dim(-1, false)?.0)
}

/// The element-wise median of three tensors: max(min(a, b), min(max(a, b), c)).
fn median3(a: &Tensor, b: &Tensor, c: &Tensor) -> PluginResult<Tensor> {
    Ok(a.f_minimum(b)?.f_maximum(&a.f_maximum(b)?.f_minimum(c)?)?)
}

impl Module for DenoiseMedian {
    fn forward(&mut self, input: &Tensor) -> PluginResult<Tensor> {
        expect_rgb(input, Self::NAME)?;
        on_luma(input, self.colour_space, |luma| {
            median_filter(luma, self.size, self.padding)
        })
    }
    /// Half the window: an output row is the median over the rows around it.
    fn row_reach(&self) -> Option<usize> {
        Some((self.size / 2) as usize)
    }
    l2l_plugin_sdk::parameters_in!(params);
}

l2l_plugin_sdk::plugin! { stages: [DenoiseMedian] }
