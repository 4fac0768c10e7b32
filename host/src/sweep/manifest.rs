//! `[sweep]`, the sweep directory's manifest (`manifest.json`) and its jobs: what every part of a sweep
//! reads.

use crate::config::{parse_table, LoadedConfig};
use crate::train::config::Augmentation;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// `[sweep]`: the grid's extra axis and where the jobs run.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    /// Augmentations to train with (default: the job's own).
    #[serde(default)]
    pub augmentations: Vec<Augmentation>,
    /// `local` or `slurm`.
    #[serde(default)]
    pub executor: Executor,
    /// local: jobs at a time (default 1).
    #[serde(default)]
    pub parallel: Option<usize>,
    /// slurm: per-task resources.
    #[serde(default)]
    pub slurm: SlurmResources,
}

/// Where the jobs run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Executor {
    /// Child processes on this machine.
    #[default]
    Local,
    /// One `sbatch --array` submission.
    Slurm,
}

/// Per-task Slurm resources; unset ones are left to the cluster's defaults.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmResources {
    /// `--partition`.
    pub partition: Option<String>,
    /// `--time`, e.g. "02:00:00".
    pub time: Option<String>,
    /// `--cpus-per-task`.
    pub cpus: Option<u32>,
    /// `--gpus`.
    pub gpus: Option<u32>,
    /// `--mem`, e.g. "16G".
    pub memory: Option<String>,
}

/// One job of a sweep.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct SweepJob {
    /// Stable id: `pipeline__fold-K__augmentation`.
    pub id: String,
    /// Its fully resolved config.
    pub config: PathBuf,
    /// Where its run directory goes.
    pub dir: PathBuf,
    /// Its log.
    pub log: PathBuf,
}

/// The sweep manifest (`manifest.json`).
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct Manifest {
    /// Training pipelines (stems), in matrix order.
    pub train: Vec<String>,
    /// Test pipelines (stems).
    pub test: Vec<String>,
    /// The metric.
    pub metric: Option<String>,
    /// The jobs.
    pub jobs: Vec<SweepJob>,
    /// How to run them.
    pub sweep: SweepConfig,
}

impl SweepConfig {
    /// The config's `[sweep]` (defaults without one).
    pub fn of(loaded: &LoadedConfig) -> Result<SweepConfig> {
        loaded
            .config
            .sweep
            .as_ref()
            .map(|table| parse_table(table, "sweep"))
            .transpose()
            .map(Option::unwrap_or_default)
    }
}

/// The result file of a finished job, if any.
pub fn result_of(job: &SweepJob) -> Option<PathBuf> {
    let entries = std::fs::read_dir(&job.dir).ok()?;
    entries
        .flatten()
        .map(|e| e.path().join("results.json"))
        .find(|p| p.is_file())
}

/// Reads a sweep's manifest.
pub fn manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join("manifest.json");
    serde_json::from_slice(&std::fs::read(&path).with_context(|| format!("{}: not a sweep directory", dir.display()))?)
        .with_context(|| format!("reading {}", path.display()))
}
