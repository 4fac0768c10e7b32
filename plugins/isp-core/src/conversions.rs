//! Stages that change what the channels mean or how they are laid out: RGB↔YUV and the 2×2 packing
//! of the mosaic (the published "none" processing).

use l2l_ops::{pack_cfa, rgb_to_yuv, yuv_to_rgb};
use l2l_plugin_sdk::{
    expect_mosaic, expect_rgb, BuildStage, CameraSource, CfaKeys, CfaPattern, ComponentConfig, ImageKind, Module,
    ParameterSet, PluginResult,
};
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// Config of the stages that take none.
#[derive(Debug, Default, Clone, Serialize, Deserialize, ComponentConfig)]

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
    const NAME: &'static str = if TO_YUV { "rgb_to_yuv" } else { "yuv_to_rgb" };
    const SUMMARY: &'static str = if TO_YUV {
        "RGB to YUV (BT.601)"
    } else {
        "YUV (BT.601) to RGB"
    };
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
    l2l_plugin_sdk::parameters_in!(params);
}

/// Config of [`Pack`].
#[derive(Debug, Clone, Default, Serialize, Deserialize, ComponentConfig)]
#[serde(default)]
pub struct PackConfig {
    /// The CFA layout, or the metadata's.
    #[serde(flatten)]
    pub cfa: CfaKeys,
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
    const NAME: &'static str = "pack";
    const SUMMARY: &'static str = "2×2 CFA blocks to half-size RGB, no interpolation";
    const INPUT: ImageKind = ImageKind::Mosaic;
    const OUTPUT: ImageKind = ImageKind::Packed;
    fn build(config: PackConfig) -> PluginResult<Self> {
        Ok(Self {
            params: ParameterSet::new(),
            pattern: config.cfa.cfa_pattern,
            camera: config.cfa.camera(),
        })
    }
}

impl Module for Pack {
    fn forward(&mut self, input: &Tensor) -> PluginResult<Tensor> {
        expect_mosaic(input, Self::NAME)?;
        pack_cfa(input, self.camera.cfa_pattern_or(Self::NAME, self.pattern)?, Self::NAME)
    }
    l2l_plugin_sdk::parameters_in!(params);
    l2l_plugin_sdk::camera_in!(camera);
}
