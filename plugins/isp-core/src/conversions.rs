//! Stages that change what the channels mean or how they are laid out: RGB↔YUV and the 2×2 packing
//! of the mosaic (the published "none" processing).

use l2l_ops::{pack_cfa, rgb_to_yuv, yuv_to_rgb};
use l2l_plugin_api::{
    expect_mosaic, expect_rgb, BuildStage, CameraSource, CfaPattern, ComponentConfig, ImageKind, Module, ParameterSet,
    PluginResult, RawMetadata,
};
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// Config of the stages that take none.
#[derive(Debug, Default, Clone, Serialize, Deserialize, ComponentConfig)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}

/// RGB → YUV (BT.601, scikit-image's `rgb2yuv`) when `TO_YUV`, else its inverse.
pub struct ColourSpace<const TO_YUV: bool> {
    params: ParameterSet,
}

/// RGB → YUV.
pub type RgbToYuv = ColourSpace<true>;
/// YUV → RGB.
pub type YuvToRgb = ColourSpace<false>;

impl<const TO_YUV: bool> BuildStage for ColourSpace<TO_YUV> {
    type Config = NoConfig;
    const INPUT: ImageKind = ImageKind::Rgb;
    const OUTPUT: ImageKind = ImageKind::Rgb;
    fn build(_: NoConfig) -> PluginResult<Self> {
        Ok(Self {
            params: ParameterSet::new(),
        })
    }
}

impl<const TO_YUV: bool> Module for ColourSpace<TO_YUV> {
    fn forward(&mut self, input: &Tensor) -> PluginResult<Tensor> {
        if TO_YUV {
            expect_rgb(input, "rgb_to_yuv")?;
            rgb_to_yuv(input)
        } else {
            expect_rgb(input, "yuv_to_rgb")?;
            yuv_to_rgb(input)
        }
    }
    /// Per pixel (a matrix product of each pixel's channels): bands need no extra rows.
    fn row_reach(&self) -> Option<usize> {
        Some(0)
    }
    l2l_plugin_api::parameters_in!(params);
}

/// Config of [`Pack`].
#[derive(Debug, Clone, Serialize, Deserialize, ComponentConfig)]
#[serde(deny_unknown_fields, default)]
pub struct PackConfig {
    /// CFA layout of the mosaic's top-left 2×2 block: RGGB, BGGR, GRBG or GBRG.
    pub cfa_pattern: CfaPattern,
    /// Take the CFA pattern from each batch's camera metadata instead of cfa_pattern.
    pub cfa_from_metadata: bool,
}

impl Default for PackConfig {
    fn default() -> Self {
        Self {
            cfa_pattern: CfaPattern::Rggb,
            cfa_from_metadata: false,
        }
    }
}

/// Each 2×2 CFA block becomes one RGB pixel (red, mean of the two greens, blue): `[B, 1, H, W]` →
/// `[B, 3, H/2, W/2]`, no interpolation. Needs even sizes.
pub struct Pack {
    params: ParameterSet,
    pattern: CfaPattern,
    camera: CameraSource,
}

impl BuildStage for Pack {
    type Config = PackConfig;
    const INPUT: ImageKind = ImageKind::Mosaic;
    const OUTPUT: ImageKind = ImageKind::Packed;
    fn build(config: PackConfig) -> PluginResult<Self> {
        Ok(Self {
            params: ParameterSet::new(),
            pattern: config.cfa_pattern,
            camera: CameraSource::new(config.cfa_from_metadata),
        })
    }
}

impl Module for Pack {
    fn forward(&mut self, input: &Tensor) -> PluginResult<Tensor> {
        expect_mosaic(input, "pack")?;
        pack_cfa(input, self.camera.cfa_pattern_or("pack", self.pattern)?, "pack")
    }
    l2l_plugin_api::parameters_in!(params);
    fn set_camera(&mut self, cameras: &[RawMetadata]) -> PluginResult<()> {
        self.camera.set(cameras);
        Ok(())
    }
}
