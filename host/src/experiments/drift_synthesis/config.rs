//! The drift synthesis's `[job]` table.

use super::corruptions::{self, Corruption, Table};
use crate::train::config::{default_output_dir, TrainConfig};
use serde::Deserialize;
use std::path::PathBuf;

/// A drift-synthesis experiment: `[job] kind = "drift_synthesis"`, the pipelines, and `[job.train]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftSynthesisConfig {
    /// Pipeline configs to train behind (relative to this config).
    pub pipelines: Vec<PathBuf>,
    /// Pipeline configs to test behind (default: the training pipelines).
    #[serde(default)]
    pub test_pipelines: Vec<PathBuf>,
    /// The metric of the matrices (default: accuracy, or iou for segmentation).
    #[serde(default)]
    pub metric: Option<String>,
    /// How each model trains (its `mode` is taken as `static`).
    pub train: TrainConfig,
    /// The common-corruption baseline: each model also tested behind its own pipeline with corruptions.
    #[serde(default)]
    pub corruptions: Option<CorruptionBaseline>,
    /// Intensity drift: each model also tested behind its own pipeline on the same validation samples
    /// re-read (a data set's `raw_scale` folders) or re-simulated (generated data: fewer photons, more
    /// shot noise) at these light intensities, in percent of full.
    #[serde(default)]
    pub test_intensities: Vec<f64>,
    /// Parent of the experiment directory.
    #[serde(default = "default_output_dir")]
    pub output_dir: PathBuf,
    /// The experiment directory is named `NAME-N`.
    #[serde(default = "default_drift_name")]
    pub name: String,
}

/// Which corruptions, severities and parameter tables the baseline uses.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorruptionBaseline {
    /// The severity tables: cifar10 (CIFAR-10-C's parameters, for small images) and/or imagenet
    /// (ImageNet-C's); with both, every corruption is reported once per table.
    #[serde(default = "default_tables")]
    pub tables: Vec<Table>,
    /// The corruptions (default: all ten).
    #[serde(default = "default_corruptions")]
    pub types: Vec<Corruption>,
    /// Severities 1..5 (default: all).
    #[serde(default = "default_severities")]
    pub severities: Vec<usize>,
}

fn default_tables() -> Vec<Table> {
    vec![Table::Cifar10]
}
fn default_corruptions() -> Vec<Corruption> {
    corruptions::ALL.to_vec()
}
fn default_severities() -> Vec<usize> {
    vec![1, 2, 3, 4, 5]
}

fn default_drift_name() -> String {
    "drift-synthesis".into()
}
