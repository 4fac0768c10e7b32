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

use l2l_ops::{cfa_masks, filter_channels_padded, filter_separable, Padding};
use l2l_plugin_api::{
    expect_mosaic, BuildStage, CameraSource, CfaPattern, ComponentConfig, ComponentRegistration, Module, ParameterSet,
    PluginResult, RawMetadata,
};
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// Config of [`DemosaicBilinear`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DemosaicBilinearConfig {
    /// The mosaic's CFA layout.
    pub cfa_pattern: CfaPattern,
    /// Take the CFA layout from the camera metadata instead.
    pub cfa_from_metadata: bool,
    /// How the border is extended.
    pub padding: Padding,
}

impl Default for DemosaicBilinearConfig {
    fn default() -> Self {
        Self {
            cfa_pattern: CfaPattern::Rggb,
            cfa_from_metadata: false,
            padding: Padding::Mirror,
        }
    }
}

impl ComponentConfig for DemosaicBilinearConfig {
    const KEY_DOCS: &'static [(&'static str, &'static str)] = &[
        (
            "cfa_pattern",
            "CFA layout of the mosaic's top-left 2×2 block: RGGB, BGGR, GRBG or GBRG",
        ),
        (
            "cfa_from_metadata",
            "take the CFA pattern from each batch's camera metadata instead of cfa_pattern",
        ),
        (
            "padding",
            "border: mirror (keeps the CFA phase) or symmetric (as colour-demosaicing, which shifts it)",
        ),
    ];
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
    fn build(config: DemosaicBilinearConfig) -> PluginResult<Self> {
        let red_blue_kernel = Tensor::from_slice(&[0.5f32, 1.0, 0.5]);
        let green_kernel = Tensor::from_slice(&[0.0f32, 1.0, 0.0, 1.0, 4.0, 1.0, 0.0, 1.0, 0.0])
            .f_div_scalar(4.0)?
            .f_view([1, 3, 3])?;
        Ok(Self {
            params: ParameterSet::new(),
            pattern: config.cfa_pattern,
            red_blue_kernel,
            green_kernel,
            red_blue_channels: Tensor::from_slice(&[0i64, 2]),
            padding: config.padding,
            camera: CameraSource::new(config.cfa_from_metadata),
        })
    }
}

impl Module for DemosaicBilinear {
    fn forward(&mut self, input: &Tensor) -> PluginResult<Tensor> {
        expect_mosaic(input, "demosaic_bilinear")?;
        let size = input.size();
        let pattern = self.camera.cfa_pattern_or("demosaic_bilinear", self.pattern)?;
        let masks = cfa_masks(pattern, size[2], size[3], input)?;
        let sparse = input.f_mul(&masks)?;
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
    l2l_plugin_api::parameters_in!(params);
    fn set_camera(&mut self, cameras: &[RawMetadata]) -> PluginResult<()> {
        self.camera.set(cameras);
        Ok(())
    }
}

inventory::submit! { ComponentRegistration::stage::<DemosaicBilinear>("demosaic_bilinear", "bilinear demosaicing of a Bayer mosaic") }

l2l_plugin_api::export_plugin!();
