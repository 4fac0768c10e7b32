//! `l2l-host run`: the job a config's `[job]` table describes, parsed here by its `kind` and handed to
//! the module that owns it. Jobs that train share one [`JobContext`] (the dataset opened once).

pub mod pipeline_job;

use crate::config::{parse_table, LoadedConfig};
use crate::experiments::drift_synthesis::{self, DriftSynthesisConfig};
use crate::experiments::forensics::{self, ForensicsConfig};
use crate::experiments::optimisation::{self, OptimisationConfig};
use crate::experiments::suite::{self, ExperimentSuiteConfig};
use crate::plugins::Registry;
use crate::train::config::TrainConfig;
use crate::train::context::JobContext;
use anyhow::{anyhow, Result};
use pipeline_job::PipelineJobConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// What `run` does: `[job] kind = "…"` and that kind's keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Job {
    /// Process `input` through `pipeline`, writing every stage's output and a report.
    Pipeline(PipelineJobConfig),
    /// Train the task model (and the processing, by `mode`) on the dataset; see [`TrainConfig`].
    Train(TrainConfig),
    /// Train behind each of several pipelines and test every model behind every pipeline.
    DriftSynthesis(DriftSynthesisConfig),
    /// Search a parametrized processor's parameters for settings that break a frozen model.
    Forensics(ForensicsConfig),
    /// Train the task model with each processing mode and compare their learning curves.
    Optimisation(OptimisationConfig),
    /// Several experiments on the same data and task model, with one report.
    Experiments(ExperimentSuiteConfig),
}

impl Job {
    /// The config's `[job]`, parsed (errors name the key path under `job`).
    pub fn of(loaded: &LoadedConfig) -> Result<Job> {
        let table = loaded.config.job.as_ref().ok_or_else(|| anyhow!("config: missing table `[job]`"))?;
        parse_table(table, "job")
    }

    /// The kind's name, as configs spell it.
    pub fn kind(&self) -> &'static str {
        match self {
            Job::Pipeline(_) => "pipeline",
            Job::Train(_) => "train",
            Job::DriftSynthesis(_) => "drift_synthesis",
            Job::Forensics(_) => "forensics",
            Job::Optimisation(_) => "optimisation",
            Job::Experiments(_) => "experiments",
        }
    }
}

/// Runs the config's job; returns the run directory.
pub fn run(loaded: &LoadedConfig, registry: &Registry) -> Result<PathBuf> {
    let job = Job::of(loaded)?;
    if let Job::Pipeline(job) = &job {
        return pipeline_job::run(loaded, registry, job);
    }
    let context = JobContext::new(loaded, registry, job.kind())?;
    match &job {
        Job::Pipeline(_) => unreachable!("handled above: a pipeline job opens no dataset"),
        Job::Train(train) => crate::train::train(&context, &loaded.pipeline()?, train, None),
        Job::DriftSynthesis(job) => drift_synthesis::run(&context, job),
        Job::Forensics(job) => forensics::run(&context, job),
        Job::Optimisation(job) => optimisation::run(&context, job),
        Job::Experiments(suite) => suite::run(&context, suite),
    }
}

/// Continues the interrupted training run in `run_dir` from its last checkpoint, with the config it
/// recorded; returns the run directory.
pub fn resume(run_dir: &Path, loaded: &LoadedConfig, registry: &Registry) -> Result<PathBuf> {
    let Job::Train(train) = Job::of(loaded)? else {
        anyhow::bail!("{}: not a training run (only training runs resume)", run_dir.display());
    };
    let context = JobContext::new(loaded, registry, "train")?;
    crate::train::train(&context, &loaded.pipeline()?, &train, Some(run_dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(text: &str) -> Result<Job> {
        parse_table(&text.parse::<toml::Table>().unwrap(), "job")
    }

    #[test]
    fn job_keys_are_named_with_their_path() {
        let err = job("kind = \"pipeline\"\noutput_dri = \"x\"\n").unwrap_err().to_string();
        assert!(err.contains("config key `job`") && err.contains("unknown field `output_dri`"), "{err}");
        let err = job("kind = \"trian\"\n").unwrap_err().to_string();
        assert!(err.contains("unknown variant `trian`"), "{err}");
        assert_eq!(job("kind = \"train\"\nmode = \"static\"\n").unwrap().kind(), "train");
    }
}
