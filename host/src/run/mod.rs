//! `l2l-host run`: the job a config's `[job]` table describes, parsed here by its `kind` and handed to
//! the module that owns it. Jobs that train share one [`JobContext`] (the dataset opened once).

pub mod chart;
pub mod pipeline_job;

use crate::config::{parse_table, LoadedConfig};
use crate::experiments::drift_synthesis::{self, DriftSynthesisConfig};
use crate::experiments::forensics::{self, ForensicsConfig};
use crate::experiments::optimisation::{self, OptimisationConfig};
use crate::experiments::suite::{self, ExperimentSuiteConfig};
use crate::plugins::Registry;
use crate::train::config::TrainConfig;
use crate::train::context::JobContext;
use crate::train::PlannedTraining;
use anyhow::{anyhow, Context, Result};
use pipeline_job::PipelineJobConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// What `run` does: `[job] kind = "…"` and that kind's keys. One is parsed per run, so the variants'
/// sizes (a suite holds three experiments' configs) cost nothing worth a box.
#[allow(clippy::large_enum_variant)]
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
        let table = loaded
            .config
            .job
            .as_ref()
            .ok_or_else(|| anyhow!("config: missing table `[job]`"))?;
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

impl Job {
    /// Checks the whole job before anything runs: every pipeline it names read and built (stages
    /// that fit together), every group and mode, the training's settings — what `validate` reports
    /// and what `run` refuses before it trains.
    pub fn check(&self, loaded: &LoadedConfig, registry: &Registry) -> Result<()> {
        for name in self.run_names() {
            crate::tracking::check_run_name(name).context("config key `job.name`")?;
        }
        match self {
            // its pipeline is the config's own: validate builds it, and the job before it writes anything
            Job::Pipeline(_) => Ok(()),
            Job::Train(train) => crate::train::check(loaded, registry, &loaded.pipeline()?, train),
            Job::DriftSynthesis(job) => drift_synthesis::check(loaded, registry, job),
            Job::Forensics(job) => forensics::check(loaded, registry, job),
            Job::Optimisation(job) => optimisation::check(loaded, registry, job),
            Job::Experiments(suite) => suite::check(loaded, registry, suite),
        }
    }

    /// What can only be checked against the opened data set: every training the job will do fits its
    /// folds and runs on two samples (processing → untrained task model); returns how many were tried.
    pub fn check_with_data(&self, context: &JobContext) -> Result<usize> {
        let loaded = context.loaded;
        let trainings = match self {
            Job::Pipeline(_) => Vec::new(),
            Job::Train(train) => vec![PlannedTraining {
                label: "the training".into(),
                processing: loaded.pipeline()?,
                config: train.clone(),
            }],
            Job::DriftSynthesis(job) => drift_synthesis::trainings(loaded, job)?,
            Job::Forensics(job) => vec![forensics::training(loaded, job)?],
            Job::Optimisation(job) => optimisation::trainings(loaded, job)?,
            Job::Experiments(suite) => suite::trainings(loaded, suite)?,
        };
        for planned in &trainings {
            crate::train::preflight(context, planned)?;
        }
        Ok(trainings.len())
    }

    /// The names of the run directories the job makes.
    fn run_names(&self) -> Vec<&str> {
        match self {
            Job::Pipeline(job) => vec![&job.name],
            Job::Train(train) => vec![&train.name],
            Job::DriftSynthesis(job) => vec![&job.name, &job.train.name],
            Job::Forensics(job) => vec![&job.name, &job.train.name],
            Job::Optimisation(job) => vec![&job.name],
            Job::Experiments(suite) => vec![&suite.name],
        }
    }

    /// The pipeline files the job names besides the config's own pipeline.
    fn pipeline_files(&self, loaded: &LoadedConfig) -> Vec<PathBuf> {
        let files: Vec<&Path> = match self {
            Job::Pipeline(_) => Vec::new(),
            Job::Train(train) => train.reference_pipeline.iter().map(PathBuf::as_path).collect(),
            Job::DriftSynthesis(job) => job
                .pipelines
                .iter()
                .chain(&job.test_pipelines)
                .map(PathBuf::as_path)
                .collect(),
            Job::Forensics(job) => vec![job.pipeline.as_path()],
            Job::Optimisation(job) => vec![job.static_pipeline.as_path(), job.parametrized_pipeline.as_path()],
            Job::Experiments(suite) => {
                let mut files: Vec<&Path> = Vec::new();
                if let Some(job) = &suite.drift_synthesis {
                    files.extend(job.pipelines.iter().chain(&job.test_pipelines).map(PathBuf::as_path));
                }
                if let Some(job) = &suite.forensics {
                    files.push(&job.pipeline);
                }
                if let Some(job) = &suite.optimisation {
                    files.extend([job.static_pipeline.as_path(), job.parametrized_pipeline.as_path()]);
                }
                files
            }
        };
        files.into_iter().map(|f| loaded.resolve(f)).collect()
    }
}

/// A job resolved once, before anything is checked or run: its `[job]` parsed, every pipeline file it
/// names read (into the config, where checks, planned trainings and experiments take them from), and
/// where its plugins are searched.
pub struct JobPlan {
    /// The config, with the job's pipeline files read.
    pub loaded: LoadedConfig,
    /// The `[job]`, when the config has one.
    pub job: Option<Job>,
    /// The config's own `plugin_dirs` (with those of its includes), then those of every pipeline file
    /// its job names — so a third-party stage that a pipeline file brings along is found wherever the
    /// pipeline is used. A file that does not read is reported by the job's check, which names it.
    pub plugin_dirs: Vec<PathBuf>,
}

impl JobPlan {
    /// Plans `loaded`'s job (a config without `[job]` plans to nothing).
    pub fn new(mut loaded: LoadedConfig) -> Result<JobPlan> {
        let job = loaded.config.job.is_some().then(|| Job::of(&loaded)).transpose()?;
        let files = job.as_ref().map(|job| job.pipeline_files(&loaded)).unwrap_or_default();
        loaded.read_pipeline_files(&files);
        let mut plugin_dirs = loaded.plugin_dirs();
        for spec in files
            .iter()
            .filter_map(|file| loaded.pipeline_files.get(file)?.as_ref().ok())
        {
            for dir in &spec.plugin_dirs {
                if !plugin_dirs.contains(dir) {
                    plugin_dirs.push(dir.clone());
                }
            }
        }
        Ok(JobPlan {
            loaded,
            job,
            plugin_dirs,
        })
    }

    /// The job, or the error a config without `[job]` gets from `run`.
    pub fn job(&self) -> Result<&Job> {
        self.job
            .as_ref()
            .ok_or_else(|| anyhow!("config: missing table `[job]`"))
    }
}

/// Runs the planned job, checked first; returns the run directory.
pub fn run(plan: &JobPlan, registry: &Registry) -> Result<PathBuf> {
    let (loaded, job) = (&plan.loaded, plan.job()?);
    job.check(loaded, registry)?;
    if let Job::Pipeline(job) = job {
        return pipeline_job::run(loaded, registry, job);
    }
    let context = JobContext::new(loaded, registry, job.kind())?;
    job.check_with_data(&context)?;
    match job {
        Job::Pipeline(_) => unreachable!("handled above: a pipeline job opens no dataset"),
        Job::Train(train) => Ok(crate::train::train(&context, &loaded.pipeline()?, train, None)?.run_dir),
        Job::DriftSynthesis(job) => drift_synthesis::run(&context, job),
        Job::Forensics(job) => forensics::run(&context, job),
        Job::Optimisation(job) => optimisation::run(&context, job),
        Job::Experiments(suite) => suite::run(&context, suite),
    }
}

/// Continues the interrupted training run in `run_dir` from its last checkpoint (or from the start,
/// when it stopped before one), with the config it recorded — refused when that was edited, unless
/// `allow_config_change`; returns the run directory.
pub fn resume(run_dir: &Path, plan: &JobPlan, registry: &Registry, allow_config_change: bool) -> Result<PathBuf> {
    crate::train::check_resumed_config(run_dir, allow_config_change)?;
    let loaded = &plan.loaded;
    let Job::Train(train) = plan.job()? else {
        anyhow::bail!("{}: not a training run (only training runs resume)", run_dir.display());
    };
    let context = JobContext::new(loaded, registry, "train")?;
    Ok(crate::train::train(&context, &loaded.pipeline()?, train, Some(run_dir))?.run_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(text: &str) -> Result<Job> {
        parse_table(&text.parse::<toml::Table>().unwrap(), "job")
    }

    #[test]
    fn job_keys_are_named_with_their_path() {
        let err = job("kind = \"pipeline\"\noutput_dri = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config key `job`") && err.contains("unknown field `output_dri`"),
            "{err}"
        );
        let err = job("kind = \"trian\"\n").unwrap_err().to_string();
        assert!(err.contains("unknown variant `trian`"), "{err}");
        assert_eq!(job("kind = \"train\"\nmode = \"static\"\n").unwrap().kind(), "train");
    }
}
