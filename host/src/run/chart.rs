//! A synthetic test chart with exact ground truth: a scene in linear sRGB taken back through a camera
//! model (inverse colour matrix, inverse white balance, Bayer sampling, black level, quantisation).
//! A pipeline that inverts that camera should reproduce the chart up to its demosaicing error, which
//! makes the quickstart's PSNR a check of the whole chain.

use anyhow::{bail, Result};
use l2l_plugin_api::{CfaPattern, RawMetadata};
use tch::{Kind, Tensor};

/// The camera the chart is "photographed" with.
#[derive(Debug, Clone)]
pub struct ChartCamera {
    /// Sensor CFA layout.
    pub cfa_pattern: CfaPattern,
    /// Black level per 2×2 CFA position.
    pub black_level: [f32; 4],
    /// White-balance gains the processing applies (the sensor sees the scene divided by them).
    pub white_balance: [f32; 3],
    /// Camera RGB → linear sRGB.
    pub colour_matrix: [[f32; 3]; 3],
    /// Display gamma of the ground truth.
    pub gamma: f32,
    /// Quantisation of the sensor.
    pub bit_depth: u32,
}

impl ChartCamera {
    /// The camera's parameters as the metadata a raw file would carry.
    pub fn metadata(&self) -> RawMetadata {
        let m = self.colour_matrix;
        RawMetadata {
            cfa_pattern: self.cfa_pattern,
            black_level: self.black_level,
            white_balance: self.white_balance,
            colour_matrix: [
                m[0][0], m[0][1], m[0][2], m[1][0], m[1][1], m[1][2], m[2][0], m[2][1], m[2][2],
            ],
            intensity: 100.0,
        }
    }
}

/// The 24 patches of the X-Rite ColorChecker as published sRGB 8-bit values.
const COLOR_CHECKER_SRGB: [[u8; 3]; 24] = [
    [115, 82, 68],
    [194, 150, 130],
    [98, 122, 157],
    [87, 108, 67],
    [133, 128, 177],
    [103, 189, 170],
    [214, 126, 44],
    [80, 91, 166],
    [193, 90, 99],
    [94, 60, 108],
    [157, 188, 64],
    [224, 163, 46],
    [56, 61, 150],
    [70, 148, 73],
    [175, 54, 60],
    [231, 199, 31],
    [187, 86, 149],
    [8, 133, 161],
    [243, 243, 242],
    [200, 200, 200],
    [160, 160, 160],
    [122, 122, 121],
    [85, 85, 85],
    [52, 52, 52],
];

fn srgb_to_linear(v: u8) -> f32 {
    let c = f32::from(v) / 255.0;
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

/// The scene `[3, H, W]` in linear sRGB: the ColorChecker on the left two thirds, a zone plate (fine
/// detail up to the Nyquist limit) on the right, a grey ramp along the bottom; peak 0.8 so that the
/// simulated sensor does not clip.
pub fn scene(height: i64, width: i64) -> Result<Tensor> {
    if height < 16 || width < 24 {
        bail!("test chart: expected at least 16×24 pixels, found {height}×{width}");
    }
    let (h, w) = (height as usize, width as usize);
    let chart_w = w * 2 / 3;
    let ramp_h = h / 8;
    let mut pixels = vec![0f32; 3 * h * w];
    for y in 0..h {
        for x in 0..w {
            let rgb: [f32; 3] = if y >= h - ramp_h {
                let v = 0.8 * x as f32 / (w - 1) as f32;
                [v, v, v]
            } else if x < chart_w {
                let (col, row) = (x * 6 / chart_w, y * 4 / (h - ramp_h));
                COLOR_CHECKER_SRGB[row * 6 + col].map(|c| 0.8 * srgb_to_linear(c))
            } else {
                let (cx, cy) = (
                    (x - chart_w) as f32 - (w - chart_w) as f32 / 2.0,
                    y as f32 - (h - ramp_h) as f32 / 2.0,
                );
                let r2 = cx * cx + cy * cy;
                let extent = ((w - chart_w).max(h - ramp_h)) as f32;
                let v = 0.4 + 0.35 * (std::f32::consts::PI * r2 / (2.0 * extent)).cos();
                [v, v, v]
            };
            for (c, value) in rgb.into_iter().enumerate() {
                pixels[c * h * w + y * w + x] = value;
            }
        }
    }
    Ok(Tensor::from_slice(&pixels).f_view([3, height, width])?)
}

/// Photographs `scene` `[3, H, W]` with `camera`: the raw mosaic `[H, W]` in [0, 1] (black level
/// included) and the ground truth the processing should produce, `clip(scene)^(1/γ)`.
pub fn photograph(scene: &Tensor, camera: &ChartCamera) -> Result<(Tensor, Tensor)> {
    let size = scene.size();
    let (h, w) = (size[1], size[2]);
    let matrix: Vec<f64> = camera.colour_matrix.iter().flatten().map(|&v| f64::from(v)).collect();
    let matrix = Tensor::from_slice(&matrix).f_view([3, 3])?;
    let scene = scene.f_to_kind(Kind::Double)?;
    let camera_rgb = Tensor::f_linalg_inv(&matrix)?
        .f_matmul(&scene.f_view([3, h * w])?)?
        .f_view([3, h, w])?;
    let gains: Vec<f64> = camera.white_balance.iter().map(|&g| f64::from(g)).collect();
    let sensor = camera_rgb
        .f_div(&Tensor::from_slice(&gains).f_view([3, 1, 1])?)?
        .f_clamp(0.0, 1.0)?;
    let masks = l2l_ops::cfa_masks(camera.cfa_pattern, h, w, &sensor)?.f_squeeze_dim(0)?;
    let mosaic = sensor
        .f_mul(&masks)?
        .f_sum_dim_intlist([0i64].as_slice(), false, Kind::Double)?;
    let black_block = Tensor::from_slice(&camera.black_level.map(f64::from)).f_view([2, 2])?;
    let black = l2l_ops::tile_cfa_block(&black_block, h, w)?;
    let raw = mosaic.f_mul(&black.f_neg()?.f_add_scalar(1.0)?)?.f_add(&black)?;
    let levels = ((1u64 << camera.bit_depth.clamp(1, 24)) - 1) as f64;
    let raw = raw.f_mul_scalar(levels)?.f_round()?.f_div_scalar(levels)?;
    let truth = scene
        .f_clamp(0.0, 1.0)?
        .f_pow_tensor_scalar(1.0 / f64::from(camera.gamma))?;
    Ok((raw.f_to_kind(Kind::Float)?, truth.f_to_kind(Kind::Float)?))
}

/// PSNR in dB of `image` against `truth` (both `[3, H, W]` in [0, 1]), excluding `border` pixels on
/// every side (the usual demosaicing protocol).
pub fn psnr(image: &Tensor, truth: &Tensor, border: i64) -> Result<f64> {
    let size = truth.size();
    let (h, w) = (size[size.len() - 2], size[size.len() - 1]);
    let crop = |t: &Tensor| -> Result<Tensor> {
        Ok(t.f_narrow(-2, border, h - 2 * border)?
            .f_narrow(-1, border, w - 2 * border)?
            .f_to_kind(Kind::Double)?)
    };
    let mse = crop(image)?
        .f_sub(&crop(truth)?)?
        .f_square()?
        .f_mean(Kind::Double)?
        .f_double_value(&[])?;
    Ok(10.0 * (1.0 / mse.max(1e-20)).log10())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn psnr_matches_its_definition() {
        let truth = Tensor::full([3, 20, 20], 0.5, (Kind::Float, Device::Cpu));
        let image = &truth + 0.1;
        // MSE = 0.01 → 20 dB
        assert!((psnr(&image, &truth, 2).unwrap() - 20.0).abs() < 1e-4);
    }

    #[test]
    fn a_neutral_camera_keeps_grey_levels_and_adds_its_black_level() {
        let camera = ChartCamera {
            cfa_pattern: CfaPattern::Rggb,
            black_level: [0.1; 4],
            white_balance: [2.0, 1.0, 2.0],
            colour_matrix: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            gamma: 1.0,
            bit_depth: 16,
        };
        let scene = Tensor::full([3, 4, 4], 0.5, (Kind::Float, Device::Cpu));
        let (raw, truth) = photograph(&scene, &camera).unwrap();
        // red site: 0.5 / 2 = 0.25 → 0.25·0.9 + 0.1 = 0.325; green site: 0.5·0.9 + 0.1 = 0.55
        assert!((raw.double_value(&[0, 0]) - 0.325).abs() < 1e-4);
        assert!((raw.double_value(&[0, 1]) - 0.55).abs() < 1e-4);
        assert!((truth.double_value(&[1, 2, 2]) - 0.5).abs() < 1e-6);
    }
}
