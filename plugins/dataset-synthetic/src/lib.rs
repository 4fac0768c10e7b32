//! l2l plugin `dataset-synthetic`: the embedded default dataset — procedurally generated scenes with
//! exact ground truth, taken through a simulated camera to raw mosaics, so that every command and test
//! runs on a fresh machine with nothing downloaded.
//!
//! - `task = "cells"` (classification): one white blood cell per image, four classes told apart by
//!   size, nucleus shape, granules and stain ([`cells`]); sample i has class i mod 4, so classes are
//!   balanced.
//! - `task = "aerial_cars"` (segmentation): ground, roads, trees and cars seen from above, with the exact
//!   car mask ([`aerial`]).
//!
//! The camera ([`sensor`]) inverts the colour matrix and white balance the ISP will apply, samples the
//! CFA, exposes at one of the Raw-Microscopy intensities (any percentage works), adds Poisson shot noise
//! and Gaussian read noise, adds the black level and quantises. Sample i depends only on `seed` and i:
//! the same seed gives identical data, in any order and from any thread, and changing `intensity` (or
//! the noise) keeps the scene. `l2l-host dataset write` lays a generated set out on disk in the
//! Raw-Microscopy (16-bit TIFF) or Raw-Drone (DNG + PNG mask) layout.

pub mod aerial;
pub mod cells;
pub mod draw;
pub mod sensor;

use l2l_plugin_sdk::{
    BuildDataset, CfaPattern, Choices, ComponentConfig, Dataset, PluginError, PluginResult, RawMetadata, Sample,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;
use tch::{Kind, Tensor};

/// What is generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Choices)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// White blood cells, four classes (classification).
    Cells,
    /// Cars seen from above, with masks (segmentation).
    AerialCars,
}

/// Config of the `synthetic` dataset.
#[derive(Debug, Clone, Serialize, Deserialize, ComponentConfig)]
#[serde(deny_unknown_fields, default)]
pub struct SyntheticConfig {
    /// Cells (classification, 4 classes) or aerial_cars (segmentation).
    #[config(choices, default = Task::Cells)]
    pub task: Task,
    /// Number of samples.
    #[config(default = 64)]
    pub count: usize,
    /// Image side in pixels (square, even, ≥ 16).
    #[config(default = 128)]
    pub size: usize,
    /// Seed of scenes and noise; sample i depends only on seed and i.
    #[config(default = 0)]
    pub seed: u64,
    /// Exposure in percent of full scale, in (0, 100].
    #[config(default = 100.0)]
    pub intensity: f32,
    /// Photo-electrons at full scale and 100 % intensity.
    #[config(default = 10_000.0)]
    pub full_well: f64,
    /// Read noise, electrons RMS.
    #[config(default = 3.0)]
    pub read_noise: f64,
    /// Quantisation bits, 8..16.
    #[config(default = 12)]
    pub bit_depth: u32,
    /// Add Poisson shot and Gaussian read noise (false: the mean signal).
    #[config(default = true)]
    pub noise: bool,
    /// Aerial_cars: chance that a scene has cars.
    #[config(default = 0.75)]
    pub car_probability: f64,
    /// Aerial_cars: car size multiplier (1: about an eighth of the image long).
    #[config(default = 1.0)]
    pub car_scale: f32,
    /// Sensor CFA layout of the top-left 2×2 block.
    #[config(choices, default = CfaPattern::Rggb)]
    pub cfa_pattern: CfaPattern,
    /// Black level as a fraction of the white level.
    #[config(default = 0.0625)]
    pub black_level: f32,
    /// Gains R, G, B the ISP should apply.
    #[config(default = DRONE_WHITE_BALANCE)]
    pub white_balance: [f32; 3],
    /// Camera RGB → linear sRGB the ISP should apply (9 values, row-major).
    #[config(default = DRONE_COLOUR_MATRIX)]
    pub colour_matrix: [f32; 9],
    /// Keep generated samples for later epochs (about 4·size² bytes each).
    #[config(default = true)]
    pub keep_in_memory: bool,
}

/// The Raw-Drone camera's white-balance gains (`configs/cameras/raw-drone.toml`), so that the published
/// pipelines develop the default synthetic data with the right colours.
#[allow(clippy::excessive_precision)] // the published values, digit for digit
pub const DRONE_WHITE_BALANCE: [f32; 3] = [2.86653646, 1.0, 1.73079425];

/// The Raw-Drone camera's colour matrix (from the published processing code).
#[allow(clippy::excessive_precision)] // the published values, digit for digit
pub const DRONE_COLOUR_MATRIX: [f32; 9] = [
    1.50768983,
    -0.33571374,
    -0.17197604,
    -0.23048614,
    1.70698738,
    -0.47650126,
    -0.03119153,
    -0.32803956,
    1.35923111,
];

/// A generated sample's raw mosaic and, for aerial cars, its mask.
type KeptSample = (Vec<f32>, Option<Vec<u8>>);

/// The generated dataset.
pub struct Synthetic {
    config: SyntheticConfig,
    sensor: sensor::Sensor,
    /// Generated samples kept for the next epochs (with `keep_in_memory`): raw mosaic and mask.
    kept: Vec<OnceLock<KeptSample>>,
}

impl Synthetic {
    /// The clean scene of sample `index` in linear sRGB (row-major, size×size) and, for aerial cars,
    /// its mask: the ground truth the raw data was made from.
    pub fn scene(&self, index: usize) -> (Vec<draw::Rgb>, Option<Vec<u8>>) {
        let mut rng = self.rng(index, 0);
        match self.config.task {
            Task::Cells => (
                cells::render(&mut rng, self.class_of(index), self.config.size).pixels,
                None,
            ),
            Task::AerialCars => {
                let scene = aerial::render(
                    &mut rng,
                    self.config.size,
                    self.config.car_probability,
                    self.config.car_scale,
                );
                (scene.canvas.pixels, Some(scene.car_mask))
            }
        }
    }

    /// The class of sample `index` (cells).
    pub fn class_of(&self, index: usize) -> usize {
        index % cells::CLASSES.len()
    }

    /// The simulated camera.
    pub fn sensor(&self) -> &sensor::Sensor {
        &self.sensor
    }

    fn rng(&self, index: usize, stream: u64) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.config.seed);
        rng.set_stream(2 * index as u64 + stream);
        rng
    }
}

impl BuildDataset for Synthetic {
    type Config = SyntheticConfig;
    const NAME: &'static str = "synthetic";
    const SUMMARY: &'static str =
        "generated raw scenes with exact ground truth: cells (classes) or aerial cars (masks)";

    fn build(config: SyntheticConfig) -> PluginResult<Self> {
        let bad = |what: String| Err(PluginError::Config(what));
        if config.count == 0 {
            return bad("count must be at least 1".into());
        }
        if config.size < 16 || !config.size.is_multiple_of(2) {
            return bad(format!("size must be even and at least 16, found {}", config.size));
        }
        if !(config.intensity > 0.0 && config.intensity <= 100.0) {
            return bad(format!(
                "intensity must be in (0, 100] percent, found {}",
                config.intensity
            ));
        }
        if !(config.full_well.is_finite() && config.full_well > 0.0) {
            return bad(format!("full_well must be positive, found {}", config.full_well));
        }
        if !(config.read_noise.is_finite() && config.read_noise >= 0.0) {
            return bad(format!("read_noise must be ≥ 0, found {}", config.read_noise));
        }
        if !(8..=16).contains(&config.bit_depth) {
            return bad(format!("bit_depth must be 8..16, found {}", config.bit_depth));
        }
        if !(0.0..1.0).contains(&config.black_level) {
            return bad(format!("black_level must be in [0, 1), found {}", config.black_level));
        }
        if config.white_balance.iter().any(|g| !(g.is_finite() && *g > 0.0)) {
            return bad(format!(
                "white_balance gains must be positive, found {:?}",
                config.white_balance
            ));
        }
        if !(config.car_scale > 0.0 && config.car_scale <= 5.0) {
            return bad(format!("car_scale must be in (0, 5], found {}", config.car_scale));
        }
        if !(0.0..=1.0).contains(&config.car_probability) {
            return bad(format!(
                "car_probability must be in [0, 1], found {}",
                config.car_probability
            ));
        }
        let matrix = [0, 1, 2].map(|r| [0, 1, 2].map(|c| f64::from(config.colour_matrix[3 * r + c])));
        if l2l_rawio::invert3(matrix).is_none() {
            return bad("colour_matrix is singular; the sensor model needs its inverse".into());
        }
        let sensor = sensor::Sensor {
            camera: RawMetadata {
                cfa_pattern: config.cfa_pattern,
                black_level: [config.black_level; 4],
                white_balance: config.white_balance,
                colour_matrix: config.colour_matrix,
                intensity: config.intensity,
            },
            full_well: config.full_well,
            read_noise: config.read_noise,
            bit_depth: config.bit_depth,
        };
        let kept = (0..if config.keep_in_memory { config.count } else { 0 })
            .map(|_| OnceLock::new())
            .collect();
        Ok(Self { config, sensor, kept })
    }
}

impl Dataset for Synthetic {
    fn class_names(&self) -> Option<Vec<String>> {
        (self.config.task == Task::Cells).then(|| cells::CLASSES.iter().map(|c| c.to_string()).collect())
    }

    fn len(&self) -> usize {
        self.config.count
    }

    fn labels(&self) -> Option<Vec<usize>> {
        (self.config.task == Task::Cells).then(|| (0..self.config.count).map(|i| self.class_of(i)).collect())
    }

    fn sample(&self, index: usize) -> PluginResult<Sample> {
        if index >= self.config.count {
            return Err(PluginError::Input(format!(
                "sample {index} is out of range (the dataset has {})",
                self.config.count
            )));
        }
        let generate = || {
            let (pixels, mask) = self.scene(index);
            let signal = self.sensor.mosaic_signal(&pixels, self.config.size);
            (
                self.sensor
                    .record(&signal, self.config.size, &mut self.rng(index, 1), self.config.noise),
                mask,
            )
        };
        let fresh;
        let (raw, mask) = if self.config.keep_in_memory {
            self.kept[index].get_or_init(generate)
        } else {
            fresh = generate();
            &fresh
        };
        let side = self.config.size as i64;
        let target = match mask {
            Some(mask) => Tensor::from_slice(mask).f_view([side, side])?.f_to_kind(Kind::Int64)?,
            None => Tensor::from(self.class_of(index) as i64),
        };
        Ok(Sample {
            raw: Tensor::from_slice(raw).f_view([side, side])?,
            target,
            metadata: self.sensor.camera,
        })
    }
}

l2l_plugin_sdk::plugin! { datasets: [Synthetic] }
