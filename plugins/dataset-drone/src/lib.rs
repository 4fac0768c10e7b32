//! l2l plugin `dataset-drone`: the Raw-Drone data set of "From Lens to Logit" — raw DNG images taken
//! from a drone, with car masks, at seven intensities.
//!
//! Layout under `root` (as published): `images_full/raw_scale{001,…,100}/*.dng` and
//! `masks_full/*.png` (same stem; car = non-zero). Each DNG is decoded with rawloader — cropped to its
//! active area, with the CFA pattern, black and white level, white balance and colour matrix of the
//! file (the config's `camera` overrides them key by key) — and cut with its mask into non-overlapping
//! `tile_size` tiles (a remainder at the right and bottom is left out), which are cached on disk
//! ([`cache`]).
//!
//! - `task = "segmentation"`: every tile that holds car pixels; the target is its mask.
//! - `task = "classification"`: classes `car` (more than `max_small_car_fraction` car pixels) and
//!   `no_car` (none), balanced by a seeded draw of the larger class down to the smaller; tiles with
//!   a sliver of car (0 < fraction ≤ `max_small_car_fraction`) are left out as ambiguous.

pub mod cache;

use cache::TileCache;
use l2l_plugin_sdk::{BuildDataset, Choices, ComponentConfig, Dataset, PluginError, PluginResult, Sample};
use l2l_rawio::CameraOverride;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use tch::{Kind, Tensor};

/// What the tiles are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Choices)]
#[serde(rename_all = "snake_case")]
pub enum DroneTask {
    /// Tiles with cars, targets are masks.
    Segmentation,
    /// Balanced car / no-car tiles, targets are classes.
    Classification,
}

/// Config of the `raw_drone` dataset.
#[derive(Debug, Clone, Serialize, Deserialize, ComponentConfig)]
#[serde(deny_unknown_fields, default)]
pub struct DroneConfig {
    /// The data set's folder (holding images_full/ and masks_full/).
    #[config(required, default = PathBuf::new())]
    pub root: PathBuf,
    /// Intensity folder in percent: 1, 5, 10, 25, 50, 75 or 100.
    #[config(default = 100.0)]
    pub intensity: f64,
    /// Segmentation (tiles with cars, mask targets) or classification (balanced car / no_car).
    #[config(choices, default = DroneTask::Segmentation)]
    pub task: DroneTask,
    /// Tile side in pixels (even).
    #[config(default = 256)]
    pub tile_size: usize,
    /// Where tiles are cached (default: root/.l2l-tiles); rebuilt when the sources change.
    #[config(default = PathBuf::new())]
    pub cache_dir: PathBuf,
    /// Seed of the balanced car / no_car draw.
    #[config(default = 0)]
    pub seed: u64,
    /// Classification: tiles with a car fraction in (0, this] are left out.
    #[config(default = 0.01)]
    pub max_small_car_fraction: f64,
    /// Divide samples by this instead of each file's white level.
    #[config(default = None)]
    pub white_level: Option<f64>,
    /// Camera parameters over each file's.
    pub camera: CameraOverride,
    /// Skip unreadable images and masks with a warning.
    #[config(default = false)]
    pub skip_invalid: bool,
}

/// The opened data set: a selection of cached tiles.
pub struct Drone {
    cache: TileCache,
    /// (image, tile, class) of every sample.
    tiles: Vec<(usize, usize, usize)>,
    task: DroneTask,
    camera: CameraOverride,
    intensity: f32,
}

impl BuildDataset for Drone {
    type Config = DroneConfig;
    const NAME: &'static str = "raw_drone";
    const SUMMARY: &'static str =
        "Raw-Drone: DNG drone images with car masks, cut into cached tiles (segmentation or balanced classification)";

    fn build(config: DroneConfig) -> PluginResult<Self> {
        if config.root.as_os_str().is_empty() {
            return Err(PluginError::Config(
                "root is required: the folder holding images_full/ and masks_full/".into(),
            ));
        }
        if config.tile_size < 2 || !config.tile_size.is_multiple_of(2) {
            return Err(PluginError::Config(format!(
                "tile_size must be even and at least 2, found {}",
                config.tile_size
            )));
        }
        if !(0.0..1.0).contains(&config.max_small_car_fraction) {
            return Err(PluginError::Config(format!(
                "max_small_car_fraction must be in [0, 1), found {}",
                config.max_small_car_fraction
            )));
        }
        let intensity = l2l_rawio::published_intensity(config.intensity).map_err(PluginError::Config)?;
        let folder = l2l_rawio::intensity_folder(intensity);
        let cache_root = if config.cache_dir.as_os_str().is_empty() {
            config.root.join(".l2l-tiles")
        } else {
            config.cache_dir.clone()
        };
        let cache = TileCache::open(
            &cache_root.join(format!("{folder}-tile{}", config.tile_size)),
            &config.root.join("images_full").join(&folder),
            &config.root.join("masks_full"),
            config.tile_size,
            config.white_level,
            config.skip_invalid,
        )?;
        let pixels = (config.tile_size * config.tile_size) as f64;
        let all = cache.manifest.images.iter().enumerate().flat_map(|(i, image)| {
            image
                .car_pixels
                .iter()
                .enumerate()
                .map(move |(t, &cars)| (i, t, f64::from(cars) / pixels))
        });
        let tiles: Vec<(usize, usize, usize)> = match config.task {
            DroneTask::Segmentation => all.filter(|(_, _, f)| *f > 0.0).map(|(i, t, _)| (i, t, 0)).collect(),
            DroneTask::Classification => {
                let (mut cars, mut empty): (Vec<_>, Vec<_>) = (Vec::new(), Vec::new());
                for (i, t, fraction) in all {
                    if fraction > config.max_small_car_fraction {
                        cars.push((i, t, 0));
                    } else if fraction == 0.0 {
                        empty.push((i, t, 1));
                    }
                }
                let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
                let n = cars.len().min(empty.len());
                cars.shuffle(&mut rng);
                empty.shuffle(&mut rng);
                let mut chosen: Vec<_> = cars.into_iter().take(n).chain(empty.into_iter().take(n)).collect();
                chosen.sort_unstable();
                chosen
            }
        };
        if tiles.is_empty() {
            return Err(PluginError::Data(format!(
                "{}: no {:?} tiles of {} px in {} image(s) (segmentation needs tiles with cars; classification needs both car and car-free tiles)",
                config.root.join("images_full").join(&folder).display(),
                config.task,
                config.tile_size,
                cache.manifest.images.len()
            )));
        }
        Ok(Self {
            cache,
            tiles,
            task: config.task,
            camera: config.camera,
            intensity: intensity as f32,
        })
    }
}

impl Dataset for Drone {
    fn class_names(&self) -> Option<Vec<String>> {
        (self.task == DroneTask::Classification).then(|| vec!["car".to_string(), "no_car".to_string()])
    }

    fn len(&self) -> usize {
        self.tiles.len()
    }

    fn labels(&self) -> Option<Vec<usize>> {
        (self.task == DroneTask::Classification).then(|| self.tiles.iter().map(|(_, _, class)| *class).collect())
    }

    fn warnings(&self) -> Vec<String> {
        self.cache.manifest.skipped.clone()
    }

    fn sample(&self, index: usize) -> PluginResult<Sample> {
        let &(image, tile, class) = self.tiles.get(index).ok_or_else(|| {
            PluginError::Input(format!(
                "sample {index} is out of range (the dataset has {})",
                self.tiles.len()
            ))
        })?;
        let (values, mask) = self.cache.read_tile(image, tile)?;
        let t = self.cache.manifest.tile_size as i64;
        let target = match self.task {
            DroneTask::Segmentation => Tensor::from_slice(&mask).f_view([t, t])?.f_to_kind(Kind::Int64)?,
            DroneTask::Classification => Tensor::from(class as i64),
        };
        Ok(Sample {
            raw: Tensor::from_slice(&values).f_view([t, t])?,
            target,
            metadata: self
                .camera
                .apply(self.cache.manifest.images[image].camera.metadata(self.intensity)),
        })
    }
}

l2l_plugin_sdk::plugin! { datasets: [Drone] }
