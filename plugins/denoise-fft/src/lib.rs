//! l2l plugin `denoise-fft`: a Fourier low-pass of the luma. The 2-D FFT's coefficients are zeroed
//! outside the lowest `keep_fraction` of frequencies along each axis — rows and columns with index in
//! `[⌊n·k⌋, ⌊n·(1−k)⌋)` — and the inverse FFT's real part is kept: the "image denoising by FFT" recipe of
//! the scipy lecture notes. Linear, so differentiable in the image; `keep_fraction` is not learnable
//! (it is a hard frequency cut).

use l2l_ops::{on_luma, ColourSpace};
use l2l_plugin_sdk::{
    expect_rgb, BuildStage, ComponentConfig, ImageKind, Module, ParameterSet, PluginError, PluginResult,
};
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

/// Config of [`DenoiseFft`].
#[derive(Debug, Clone, Serialize, Deserialize, ComponentConfig)]
#[serde(deny_unknown_fields, default)]
pub struct DenoiseFftConfig {
    /// Fraction of the lowest frequencies kept at each end of each axis, in (0, 0.5]; 0.5 keeps all.
    #[config(default = 0.1)]
    pub keep_fraction: f64,
    /// Rgb: RGB in and out (converted to YUV around the filter); yuv: the input is YUV already.
    #[config(choices, default = ColourSpace::Rgb)]
    pub colour_space: ColourSpace,
}

/// Zeroes the high frequencies of the luma.
pub struct DenoiseFft {
    params: ParameterSet,
    colour_space: ColourSpace,
    keep_fraction: f64,
}

impl BuildStage for DenoiseFft {
    type Config = DenoiseFftConfig;
    const NAME: &'static str = "denoise_fft";
    const SUMMARY: &'static str = "Fourier low-pass of the luma (keep fraction)";
    const INPUT: ImageKind = ImageKind::Rgb;
    const OUTPUT: ImageKind = ImageKind::Rgb;
    fn build(config: DenoiseFftConfig) -> PluginResult<Self> {
        if !(config.keep_fraction > 0.0 && config.keep_fraction <= 0.5) {
            return Err(PluginError::Config(format!(
                "keep_fraction: expected a number in (0, 0.5], found {}",
                config.keep_fraction
            )));
        }
        Ok(Self {
            params: ParameterSet::new(),
            keep_fraction: config.keep_fraction,
            colour_space: config.colour_space,
        })
    }
}

/// 1 for the kept indices of an axis of length `n`, 0 for the cut ones.
fn kept(n: i64, keep: f64, device: Device) -> PluginResult<Tensor> {
    let (low, high) = ((n as f64 * keep) as i64, (n as f64 * (1.0 - keep)) as i64);
    let keep: Vec<f32> = (0..n).map(|i| if i >= low && i < high { 0.0 } else { 1.0 }).collect();
    Ok(Tensor::from_slice(&keep).f_to_device(device)?)
}

impl Module for DenoiseFft {
    fn forward(&mut self, input: &Tensor) -> PluginResult<Tensor> {
        expect_rgb(input, Self::NAME)?;
        let size = input.size();
        let (h, w) = (size[2], size[3]);
        let mask = kept(h, self.keep_fraction, input.device())?
            .f_view([h, 1])?
            .f_mul(&kept(w, self.keep_fraction, input.device())?.f_view([1, w])?)?;
        on_luma(input, self.colour_space, |luma| {
            let spectrum = luma.f_fft_fft2(None::<&[i64]>, [-2, -1], "backward")?;
            let filtered = spectrum
                .f_mul(&mask)?
                .f_fft_ifft2(None::<&[i64]>, [-2, -1], "backward")?;
            Ok(filtered.f_real()?)
        })
    }
    l2l_plugin_sdk::parameters_in!(params);
}

l2l_plugin_sdk::plugin! { stages: [DenoiseFft] }
