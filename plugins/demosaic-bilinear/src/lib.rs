//! l2l plugin `demosaic-bilinear`: bilinear interpolation of a Bayer mosaic, for all four CFA
//! patterns and any image size of at least 2×2.
//!
//! Each colour plane keeps its samples and fills the others with the mean of the nearest samples of
//! that colour: the 3×3 kernels `[[0,1,0],[1,4,1],[0,1,0]]/4` for green and
//! `[[1,2,1],[2,4,2],[1,2,1]]/4` for red and blue, applied to the plane masked to its samples (the
//! definition of colour-demosaicing's `demosaicing_CFA_Bayer_bilinear`). By default the border is
//! mirrored about the edge pixel, which keeps every padded sample's CFA colour; colour-demosaicing
//! pads symmetrically, which shifts the CFA phase there (`padding = "symmetric"` reproduces it).
//! Linear in the mosaic, so differentiable everywhere; no learnable parameters.

mod cpu;

use l2l_ops::{cfa_masks, filter_channels_padded, filter_separable, Padding};
use l2l_plugin_sdk::{
    expect_mosaic, BuildStage, CameraSource, CfaKeys, CfaPattern, ComponentConfig, ImageKind, Module, ParameterSet,
    PluginResult,
};
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// Config of [`DemosaicBilinear`].
#[derive(Debug, Clone, Serialize, Deserialize, ComponentConfig)]
#[serde(default)]
pub struct DemosaicBilinearConfig {
    /// The CFA layout, or the metadata's.
    #[serde(flatten)]
    pub cfa: CfaKeys,
    /// Border: mirror (keeps the CFA phase) or symmetric (as colour-demosaicing, which shifts it).
    #[config(choices, default = Padding::Mirror)]
    pub padding: Padding,
}

/// The bilinear demosaicer: `[B, 1, H, W]` mosaic → `[B, 3, H, W]` RGB.
pub struct DemosaicBilinear {
    params: ParameterSet,
    pattern: CfaPattern,
    /// 1-D factor of the red/blue kernel `[[1,2,1],[2,4,2],[1,2,1]]/4`.
    red_blue_kernel: Tensor,
    /// The green kernel `[[0,1,0],[1,4,1],[0,1,0]]/4`, `[1, 3, 3]`.
    green_kernel: Tensor,
    red_blue_channels: Tensor,
    padding: Padding,
    camera: CameraSource,
}

impl BuildStage for DemosaicBilinear {
    type Config = DemosaicBilinearConfig;
    const NAME: &'static str = "demosaic_bilinear";
    const SUMMARY: &'static str = "bilinear demosaicing of a Bayer mosaic";
    const INPUT: ImageKind = ImageKind::Mosaic;
    const OUTPUT: ImageKind = ImageKind::Rgb;
    fn build(config: DemosaicBilinearConfig) -> PluginResult<Self> {
        let red_blue_kernel = Tensor::from_slice(&[0.5f32, 1.0, 0.5]);
        let green_kernel = Tensor::from_slice(&[0.0f32, 1.0, 0.0, 1.0, 4.0, 1.0, 0.0, 1.0, 0.0])
            .f_div_scalar(4.0)?
            .f_view([1, 3, 3])?;
        Ok(Self {
            params: ParameterSet::new(),
            pattern: config.cfa.cfa_pattern,
            red_blue_kernel,
            green_kernel,
            red_blue_channels: Tensor::from_slice(&[0i64, 2]),
            padding: config.padding,
            camera: config.cfa.camera(),
        })
    }
}

impl DemosaicBilinear {
    /// Any size and border: the masked colour planes filtered with the bilinear kernels.
    pub fn demosaic_by_filters(&self, input: &Tensor, pattern: CfaPattern) -> PluginResult<Tensor> {
        let size = input.size();
        let sparse = input.f_mul(&cfa_masks(pattern, size[2], size[3], input)?)?;
        // the red/blue kernel is separable ([1,2,1]/2 ⊗ [1,2,1]/2): two 3-tap passes instead of nine taps
        let red_blue = filter_separable(
            &sparse.f_index_select(1, &self.red_blue_channels.f_to_device(input.device())?)?,
            &self.red_blue_kernel,
            self.padding,
        )?;
        let green = filter_channels_padded(&sparse.f_narrow(1, 1, 1)?, &self.green_kernel, self.padding)?;
        Ok(Tensor::f_cat(
            &[red_blue.f_narrow(1, 0, 1)?, green, red_blue.f_narrow(1, 1, 1)?],
            1,
        )?)
    }
}

/// The mean of each pair of neighbouring samples of a quarter-size phase plane along `axis` (-1
/// columns, -2 rows): the value half-way between them, where the other phase sits. Samples of phase 0
/// lie before that pixel (pair j with j + 1), of phase 1 after it (pair j − 1 with j); at the edge the
/// sample pairs with itself — what a mirrored border of the full-size image amounts to.
fn between(samples: &Tensor, axis: i64, phase: usize) -> PluginResult<Tensor> {
    let len = samples.size()[(samples.dim() as i64 + axis) as usize];
    let border = match (axis, phase) {
        (-1, 0) => [0, 1, 0, 0],
        (-1, _) => [1, 0, 0, 0],
        (_, 0) => [0, 0, 0, 1],
        _ => [0, 0, 1, 0],
    };
    let padded = samples.f_replication_pad2d(border)?;
    Ok(padded
        .f_narrow(axis, 0, len)?
        .f_add(&padded.f_narrow(axis, 1, len)?)?
        .f_mul_scalar(0.5)?)
}

/// Even sizes with a mirrored border: the same interpolation computed on the mosaic's four quarter-size
/// CFA phases (each output pixel is its own sample, or the mean of two or four neighbours of one phase),
/// which moves a quarter of the data per operation and needs no masks — about twice as fast.
pub fn demosaic_by_phases(input: &Tensor, pattern: CfaPattern) -> PluginResult<Tensor> {
    let phases = input.f_pixel_unshuffle(2)?;
    let colours = pattern.colours();
    let position = |colour: usize| colours.iter().position(|&c| c == colour).unwrap_or(0);
    let (red, blue) = (position(0), position(2));
    let (row, col) = (red / 2, red % 2);
    let phase = |p: usize| phases.f_narrow(1, p as i64, 1);
    // greens in the red row and in the red column
    let (green_red_row, green_red_col) = (phase(row * 2 + (1 - col))?, phase((1 - row) * 2 + col)?);
    let mut out: Vec<Option<Tensor>> = (0..12).map(|_| None).collect();
    for (channel, site) in [(0usize, red), (2, blue)] {
        let (r, c) = (site / 2, site % 2);
        let samples = phase(site)?;
        let across = between(&samples, -1, c)?;
        out[channel * 4 + r * 2 + (1 - c)] = Some(across.shallow_clone());
        out[channel * 4 + (1 - r) * 2 + c] = Some(between(&samples, -2, r)?);
        out[channel * 4 + (1 - r) * 2 + (1 - c)] = Some(between(&across, -2, r)?);
        out[channel * 4 + site] = Some(samples);
    }
    // green: its own samples at green sites; the mean of the four neighbours at red and blue sites
    out[4 + row * 2 + (1 - col)] = Some(green_red_row.shallow_clone());
    out[4 + (1 - row) * 2 + col] = Some(green_red_col.shallow_clone());
    let at_red = between(&green_red_row, -1, 1 - col)?.f_add(&between(&green_red_col, -2, 1 - row)?)?;
    let at_blue = between(&green_red_col, -1, col)?.f_add(&between(&green_red_row, -2, row)?)?;
    out[4 + red] = Some(at_red.f_mul_scalar(0.5)?);
    out[4 + blue] = Some(at_blue.f_mul_scalar(0.5)?);
    let planes: Vec<Tensor> = out.into_iter().flatten().collect();
    Ok(Tensor::f_cat(&planes, 1)?.f_pixel_shuffle(2)?)
}

impl Module for DemosaicBilinear {
    fn forward(&mut self, input: &Tensor) -> PluginResult<Tensor> {
        expect_mosaic(input, Self::NAME)?;
        let size = input.size();
        let pattern = self.camera.cfa_pattern_or(Self::NAME, self.pattern)?;
        if size[2] % 2 == 0 && size[3] % 2 == 0 && self.padding == Padding::Mirror {
            demosaic_by_phases(input, pattern)
        } else if !l2l_ops::grad_enabled() && l2l_ops::cpu::eligible(input) {
            cpu::demosaic(input, pattern, self.padding)
        } else {
            self.demosaic_by_filters(input, pattern)
        }
    }
    /// One row: the 3×3 interpolation (bands start at even rows, keeping the CFA sites).
    fn row_reach(&self) -> Option<usize> {
        Some(1)
    }
    l2l_plugin_sdk::parameters_in!(params);
    l2l_plugin_sdk::camera_in!(camera);
}

l2l_plugin_sdk::plugin! { stages: [DemosaicBilinear] }
