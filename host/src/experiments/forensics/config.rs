//! The forensics search's `[job]` table.

use crate::train::config::{default_output_dir, TrainConfig};
use serde::Deserialize;
use std::path::PathBuf;

/// How far the adversarial processing's output may move from the default's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Distance {
    /// 1 − SSIM.
    Ssim,
    /// Mean squared difference.
    L2,
}

/// A drift-forensics experiment: `[job] kind = "forensics"`, and `[job.train]` for the model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForensicsConfig {
    /// The processing under attack: a pipeline config with learnable parameters, at its default values
    /// also the processing the model is trained behind.
    pub pipeline: PathBuf,
    /// Parameter groups to attack, one search each: `all`, or stage names of the pipeline.
    #[serde(default = "default_groups")]
    pub groups: Vec<String>,
    /// Adam steps per search.
    #[serde(default = "default_forensics_steps")]
    pub steps: usize,
    /// Adam learning rate of the search.
    #[serde(default = "default_forensics_lr")]
    pub lr: f64,
    /// w in −task_loss + w · distance(adversarial output, default output).
    #[serde(default = "default_similarity_weight")]
    pub similarity_weight: f64,
    /// A sweep of w: every group searched once per weight, for the drop-against-similarity curve
    /// (empty: `similarity_weight` alone).
    #[serde(default)]
    pub similarity_weights: Vec<f64>,
    /// ssim (1 − SSIM) or l2.
    #[serde(default = "default_distance")]
    pub distance: Distance,
    /// Validation samples attacked and evaluated.
    #[serde(default = "default_forensics_samples")]
    pub samples: usize,
    /// How the model is trained (behind the pipeline at its defaults; `mode` taken as `static`).
    pub train: TrainConfig,
    /// Parent of the experiment directory.
    #[serde(default = "default_output_dir")]
    pub output_dir: PathBuf,
    /// The experiment directory is named `NAME-N`.
    #[serde(default = "default_forensics_name")]
    pub name: String,
}

impl ForensicsConfig {
    /// The similarity weights searched: the sweep, or the one weight.
    pub fn weights(&self) -> Vec<f64> {
        if self.similarity_weights.is_empty() {
            vec![self.similarity_weight]
        } else {
            self.similarity_weights.clone()
        }
    }
}

fn default_groups() -> Vec<String> {
    vec!["all".into()]
}
fn default_forensics_steps() -> usize {
    30
}
fn default_forensics_lr() -> f64 {
    1e-2
}
fn default_similarity_weight() -> f64 {
    1.0
}
fn default_distance() -> Distance {
    Distance::Ssim
}
fn default_forensics_samples() -> usize {
    32
}
fn default_forensics_name() -> String {
    "forensics".into()
}
