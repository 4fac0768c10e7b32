//! l2l plugin `isp-core`: the stages of an ISP that model the camera rather than the image, each
//! differentiable in its input and its learnable parameters.
//!
//! | stage | on | learnable | what |
//! |---|---|---|---|
//! | `black_level` | mosaic `[B,1,H,W]` | `black_level` (4) | subtracts a black level per 2×2 CFA position, rescales to [0, 1] |
//! | `white_balance` | RGB `[B,3,H,W]` | `gains` (3) | multiplies R, G, B by their gains |
//! | `colour_matrix` | RGB | `matrix` (3×3) | camera RGB → linear sRGB |
//! | `clip` | any | – | clamps to [min, max] (gradient zero outside) |
//! | `gamma` | any | `gamma` (1) | display encoding x^(1/γ) (x clamped to ≥ ε, 0 for x ≤ 0) |
//! | `rgb_to_yuv`, `yuv_to_rgb` | RGB | – | BT.601 as scikit-image's `rgb2yuv` / `yuv2rgb` |
//! | `pack` | mosaic | – | each 2×2 CFA block → one RGB pixel (R, mean G, B), half size |
//! | `batch_norm` | any `[B,C,H,W]` | – (running statistics) | normalisation without affine parameters |
//! | `additive` | `[B,C,H,W]` | `offset` (C×H×W) | adds a learnable offset image, zero at start |
//!
//! Order in a published pipeline: black level → demosaic → white balance → colour matrix →
//! (denoise, sharpen) → clip → gamma.

mod conversions;
mod output;
mod stages;

pub use conversions::{ColourSpace, Pack, RgbToYuv, YuvToRgb};
pub use output::{Additive, BatchNorm};
pub use stages::{BlackLevel, Clip, ColourMatrix, Gamma, WhiteBalance};

l2l_plugin_sdk::plugin! { stages: [BlackLevel, WhiteBalance, ColourMatrix, Clip, Gamma, RgbToYuv, YuvToRgb, Pack, BatchNorm, Additive] }
