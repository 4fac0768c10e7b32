//! `[job] kind = "train"` and the training block every experiment embeds (`[job.….train]`): how a
//! task model (and, by mode, the processing) trains.

use crate::data::{SplitKind, SplitPlan};
use serde::Deserialize;
use std::path::PathBuf;

/// How the processing takes part in training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessingMode {
    /// The config's pipeline, fixed: no gradient into it.
    Static,
    /// The config's pipeline; its learnable parameters train with the task model.
    Parametrized,
    /// The pipeline holds a `processor_nn` stage, trained with the task model.
    NeuralNetwork,
    /// No processing: the 2×2-packed raw goes to the task model.
    None,
}

impl ProcessingMode {
    /// The mode's name in configs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Static => "static",
            Self::Parametrized => "parametrized",
            Self::NeuralNetwork => "neural_network",
            Self::None => "none",
        }
    }
}

/// How the learning rates change over the epochs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    /// The configured rates throughout.
    #[default]
    Constant,
    /// Cosine annealing to zero over the run (`torch.optim.lr_scheduler.CosineAnnealingLR` with
    /// `T_max = epochs`, `eta_min = 0`, stepped once per epoch): the last epochs take small steps, so a
    /// run does not end on the spike of a large one.
    Cosine,
}

impl LrSchedule {
    /// The factor on every configured rate during `epoch` (1-based) of `epochs`.
    pub fn factor(self, epoch: usize, epochs: usize) -> f64 {
        match self {
            Self::Constant => 1.0,
            Self::Cosine => {
                (1.0 + (std::f64::consts::PI * epoch.saturating_sub(1) as f64 / epochs.max(1) as f64).cos()) / 2.0
            }
        }
    }
}

/// Geometric augmentation after processing, applied to masks identically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Augmentation {
    /// None.
    None,
    /// Random flips and 90° rotations.
    Weak,
    /// Weak, plus a random rotation by any angle and a random scale in [0.8, 1.25].
    Strong,
}

/// A `train` job: `[job] kind = "train"` and these keys.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// static, parametrized, neural_network or none.
    pub mode: ProcessingMode,
    /// Passes over the training split.
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    /// Samples per batch.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Adam learning rate of the task model.
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Adam learning rate of the processing (default: `lr`).
    #[serde(default)]
    pub processor_lr: Option<f64>,
    /// Adam weight decay (L2, as `torch.optim.Adam`).
    #[serde(default)]
    pub weight_decay: f64,
    /// `constant` or `cosine` (annealed to zero over the epochs).
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    /// How many train/validation splits (folds) to train on, one after another.
    #[serde(default = "default_splits")]
    pub n_splits: usize,
    /// `shuffle` (independent shuffles cut at `train_size`, as published; validation parts overlap) or
    /// `kfold` (disjoint validation folds, each sample validated once).
    #[serde(default)]
    pub split: SplitKind,
    /// Fraction of the samples that train in each shuffle split.
    #[serde(default = "default_train_size")]
    pub train_size: f64,
    /// Fraction held out before the folds are made: never trained or validated on, every model is
    /// scored on it (0: none; reports then give validation numbers).
    #[serde(default)]
    pub test_fraction: f64,
    /// Seed of the test part and the splits, and the first training seed.
    #[serde(default)]
    pub seed: u64,
    /// Training seeds: a count (`seed`, `seed + 1`, …) or a list; every fold trains once per seed,
    /// each seed setting the shuffles, the augmentation and the task model's initialisation.
    #[serde(default)]
    pub seeds: Option<Seeds>,
    /// none, weak or strong.
    #[serde(default = "default_augmentation")]
    pub augmentation: Augmentation,
    /// Keep the processing's parameters fixed.
    #[serde(default)]
    pub freeze_processor: bool,
    /// Keep the task model's parameters fixed.
    #[serde(default)]
    pub freeze_task_model: bool,
    /// Validation samples whose stage outputs, gradients and predictions are drawn every epoch.
    #[serde(default = "default_tracked")]
    pub tracked_samples: usize,
    /// A pipeline config to compare the processing's output with in the tracked grids.
    #[serde(default)]
    pub reference_pipeline: Option<PathBuf>,
    /// Decoding threads of the loader (default: every core).
    #[serde(default)]
    pub workers: Option<usize>,
    /// Parent of the run directories.
    #[serde(default = "default_output_dir")]
    pub output_dir: PathBuf,
    /// Run directories are named `NAME-N`.
    #[serde(default = "default_train_name")]
    pub name: String,
    /// The MLflow experiment the run is filed under.
    #[serde(default = "default_experiment")]
    pub experiment: String,
    /// The MLflow file store the run is filed in (default: `output_dir/mlruns`; a suite files all its
    /// experiments' runs in one store, its own `mlruns`).
    #[serde(default)]
    pub mlflow_store: Option<PathBuf>,
    /// Train only these folds (default: all `n_splits`); a sweep gives each job one.
    #[serde(default)]
    pub folds: Option<Vec<usize>>,
    /// Process each sample once through a processing that does not train and reuse the image in every
    /// epoch, fold and evaluation of the job (default); false for a stage whose output changes from
    /// call to call (random or stateful), which must run every time.
    #[serde(default = "default_cache_processing")]
    pub cache_processing: bool,
}

impl TrainConfig {
    /// Where the run is filed for MLflow.
    pub fn store(&self) -> PathBuf {
        self.mlflow_store
            .clone()
            .unwrap_or_else(|| self.output_dir.join("mlruns"))
    }

    /// Whether replicate `fold` (fold `fold % n_splits` of seed `fold / n_splits`) is trained.
    pub fn trains_fold(&self, fold: usize) -> bool {
        self.folds.as_ref().is_none_or(|folds| folds.contains(&fold))
    }

    /// The training seeds, in order.
    pub fn training_seeds(&self) -> Vec<u64> {
        match &self.seeds {
            None => vec![self.seed],
            Some(Seeds::Count(count)) => (0..*count as u64).map(|k| self.seed.wrapping_add(k)).collect(),
            Some(Seeds::List(seeds)) => seeds.clone(),
        }
    }

    /// What decides the splits.
    pub fn split_plan(&self) -> SplitPlan {
        SplitPlan {
            kind: self.split,
            n_splits: self.n_splits,
            train_size: self.train_size,
            test_fraction: self.test_fraction,
            seed: self.seed,
            training_seeds: self.training_seeds(),
        }
    }
}

/// `seeds = 3` or `seeds = [0, 7, 13]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum Seeds {
    /// This many seeds from `seed` on.
    Count(usize),
    /// These seeds.
    List(Vec<u64>),
}

fn default_cache_processing() -> bool {
    true
}

fn default_epochs() -> usize {
    10
}
fn default_batch_size() -> usize {
    8
}
fn default_lr() -> f64 {
    1e-3
}
fn default_splits() -> usize {
    1
}
fn default_train_size() -> f64 {
    0.8
}
fn default_augmentation() -> Augmentation {
    Augmentation::None
}
fn default_tracked() -> usize {
    2
}
fn default_train_name() -> String {
    "train".into()
}
fn default_experiment() -> String {
    "l2l".into()
}

/// The default parent of run directories, for every job kind.
pub fn default_output_dir() -> PathBuf {
    PathBuf::from("runs")
}

#[cfg(test)]
mod tests {
    use super::LrSchedule;

    /// PyTorch's CosineAnnealingLR closed form, η = η_max · (1 + cos(π · t / T_max)) / 2 with t the
    /// epochs done: full rate in the first epoch, half at t = T_max / 2, near zero in the last.
    #[test]
    fn the_cosine_schedule_is_pytorchs_closed_form() {
        assert_eq!(LrSchedule::Cosine.factor(1, 12), 1.0);
        assert!((LrSchedule::Cosine.factor(7, 12) - 0.5).abs() < 1e-12);
        assert!((LrSchedule::Cosine.factor(12, 12) - 0.017_037_086_855_465_844).abs() < 1e-12);
        assert!((LrSchedule::Cosine.factor(4, 12) - (2.0 + 2f64.sqrt()) / 4.0).abs() < 1e-12);
        assert_eq!(LrSchedule::Constant.factor(12, 12), 1.0);
    }
}
