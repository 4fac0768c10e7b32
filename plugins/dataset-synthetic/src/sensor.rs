//! The simulated camera: a linear-sRGB scene taken back to what a Bayer sensor records.
//!
//! camera RGB = M⁻¹ · sRGB (M: the camera → sRGB matrix the ISP will apply), divided by the
//! white-balance gains the ISP will multiply by; sampled through the CFA; exposed at `intensity` % of
//! full scale, so the mean photo-electron count is λ = signal · intensity/100 · full_well; recorded as
//! Poisson(λ) + Normal(0, read_noise²) electrons; offset by the black level and scaled so that full
//! well reaches the white level; quantised to `bit_depth` bits and clipped. The result, divided by the
//! white level 2^bits − 1, is what every l2l dataset hands out: a mosaic in [0, 1], black level kept.
//! The variance of a pixel of mean λ electrons is therefore (1 − black)² (λ + read_noise²) / full_well²
//! plus the quantisation step²/12.

use crate::draw::Rgb;
use l2l_plugin_sdk::RawMetadata;
use rand::Rng;
use rand_distr::{Distribution, Normal, Poisson};

/// The camera's model.
#[derive(Debug, Clone)]
pub struct Sensor {
    /// CFA, black level (fraction of white), white-balance gains, camera → sRGB, intensity (%).
    pub camera: RawMetadata,
    /// Photo-electrons at full scale and 100 % intensity.
    pub full_well: f64,
    /// Read noise, electrons RMS.
    pub read_noise: f64,
    /// Bits per sample.
    pub bit_depth: u32,
}

impl Sensor {
    /// The quantisation levels' maximum, 2^bits − 1.
    pub fn white_level(&self) -> f64 {
        f64::from((1u32 << self.bit_depth) - 1)
    }

    /// The mean signal of each pixel in [0, 1] of full scale before exposure: the scene through the
    /// inverse colour matrix and white balance, sampled by the CFA.
    pub fn mosaic_signal(&self, pixels: &[Rgb], size: usize) -> Vec<f64> {
        let m = self.camera.colour_matrix;
        let matrix = [0, 1, 2].map(|r| [0, 1, 2].map(|c| f64::from(m[3 * r + c])));
        let inverse = l2l_rawio::invert3(matrix).unwrap_or([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);
        let colours = self.camera.cfa_pattern.colours();
        pixels
            .iter()
            .enumerate()
            .map(|(i, rgb)| {
                let colour = colours[2 * ((i / size) % 2) + (i % size) % 2];
                let camera: f64 = (0..3).map(|k| inverse[colour][k] * f64::from(rgb[k])).sum();
                (camera / f64::from(self.camera.white_balance[colour])).clamp(0.0, 1.0)
            })
            .collect()
    }

    /// Exposes, adds noise (when `noise`), offsets, quantises: the recorded mosaic in [0, 1].
    pub fn record(&self, signal: &[f64], size: usize, rng: &mut impl Rng, noise: bool) -> Vec<f32> {
        let exposure = f64::from(self.camera.intensity) / 100.0;
        let read = Normal::new(0.0, self.read_noise.max(0.0)).expect("read noise is checked non-negative");
        let white = self.white_level();
        signal
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mean = s * exposure * self.full_well;
                let electrons = if noise {
                    let shot = if mean > 0.0 {
                        Poisson::new(mean).map_or(mean, |p| p.sample(rng))
                    } else {
                        0.0
                    };
                    shot + read.sample(rng)
                } else {
                    mean
                };
                let black = f64::from(self.camera.black_level[2 * ((i / size) % 2) + (i % size) % 2]);
                let value = black + (1.0 - black) * electrons / self.full_well;
                ((value * white).round().clamp(0.0, white) / white) as f32
            })
            .collect()
    }
}
