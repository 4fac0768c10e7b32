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
    /// The most Adam steps per search (a search that converges stops earlier).
    #[serde(default = "default_forensics_steps")]
    pub steps: usize,
    /// Adam learning rate of the search, in units of each parameter's declared range (one rate serves
    /// gains, kernels and gamma; a parameter without a range: its largest initial magnitude, ≥ 1).
    #[serde(default = "default_forensics_lr")]
    pub lr: f64,
    /// The search has converged when its objective has not improved by more than this over its best
    /// for `patience` steps.
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
    /// Steps without improvement before the search stops.
    #[serde(default = "default_patience")]
    pub patience: usize,
    /// w in −task_loss + w · distance(adversarial output, default output).
    #[serde(default = "default_similarity_weight")]
    pub similarity_weight: f64,
    /// A sweep of w: every group searched once per weight, for the drop-against-similarity curve
    /// (empty: `similarity_weight` alone).
    #[serde(default)]
    pub similarity_weights: Vec<f64>,
    /// SSIM budgets: when given, every group is searched once per budget b for the largest task loss
    /// with the output's SSIM to the default output kept at or above b on the fitted images (a
    /// constraint: a step that leaves it is halved back), instead of once per similarity weight.
    #[serde(default)]
    pub ssim_budgets: Vec<f64>,
    /// ssim (1 − SSIM) or l2.
    #[serde(default = "default_distance")]
    pub distance: Distance,
    /// Images the search is fitted on (the first of the model's scored samples: its test part, else
    /// its validation part).
    #[serde(default = "default_forensics_samples")]
    pub samples: usize,
    /// Other images of the same part the values found are scored on (default: as many as `samples`,
    /// or all that are left).
    #[serde(default)]
    pub held_out_samples: Option<usize>,
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
    /// Every search of one group: its similarity weight, and its SSIM budget when searching under
    /// budgets.
    pub fn searches(&self) -> anyhow::Result<Vec<(f64, Option<f64>)>> {
        if self.ssim_budgets.is_empty() {
            return Ok(self.weights().into_iter().map(|w| (w, None)).collect());
        }
        if self.distance != Distance::Ssim {
            anyhow::bail!("config key `job.ssim_budgets`: budgets are on SSIM; expected `distance = \"ssim\"`");
        }
        if let Some(b) = self.ssim_budgets.iter().find(|b| !(0.0..=1.0).contains(*b)) {
            anyhow::bail!("config key `job.ssim_budgets`: expected SSIM values in [0, 1], found {b}");
        }
        // under a budget the similarity is a constraint, not a weighted term
        Ok(self.ssim_budgets.iter().map(|&b| (0.0, Some(b))).collect())
    }

    /// How many held-out images score a search.
    pub fn held_out_samples(&self) -> usize {
        self.held_out_samples.unwrap_or(self.samples)
    }

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
fn default_tolerance() -> f64 {
    1e-4
}
fn default_patience() -> usize {
    10
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
