//! The suite (`[job] kind = "experiments"`): several experiments one after another on one job context
//! (one dataset opening), into one run directory with a `report.md` that gathers theirs.

use super::drift_synthesis::{self, DriftSynthesisConfig};
use super::forensics::{self, ForensicsConfig};
use super::optimisation::{self, OptimisationConfig};
use crate::config::LoadedConfig;
use crate::imageio::write_atomically;
use crate::plugins::Registry;
use crate::tracking;
use crate::train::config::{default_output_dir, TrainConfig};
use crate::train::context::JobContext;
use crate::train::PlannedTraining;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::PathBuf;

/// `[job] kind = "experiments"`: any of `[job.drift_synthesis]`, `[job.forensics]`,
/// `[job.optimisation]` (their `output_dir` and `name` are set by the suite).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSuiteConfig {
    /// A drift-synthesis experiment.
    #[serde(default)]
    pub drift_synthesis: Option<DriftSynthesisConfig>,
    /// A forensics experiment.
    #[serde(default)]
    pub forensics: Option<ForensicsConfig>,
    /// An optimisation experiment.
    #[serde(default)]
    pub optimisation: Option<OptimisationConfig>,
    /// Parent of the run directory.
    #[serde(default = "default_output_dir")]
    pub output_dir: PathBuf,
    /// The run directory is named `NAME-N`.
    #[serde(default = "default_suite_name")]
    pub name: String,
}

fn default_suite_name() -> String {
    "experiments".into()
}

/// Checks every experiment of the suite before any of them trains.
pub fn check(loaded: &LoadedConfig, registry: &Registry, suite: &ExperimentSuiteConfig) -> Result<()> {
    if suite.drift_synthesis.is_none() && suite.forensics.is_none() && suite.optimisation.is_none() {
        bail!("config key `job`: an experiments job needs at least one of [job.drift_synthesis], [job.forensics], [job.optimisation]");
    }
    if let Some(job) = &suite.drift_synthesis {
        drift_synthesis::check(loaded, registry, job).context("[job.drift_synthesis]")?;
    }
    if let Some(job) = &suite.forensics {
        forensics::check(loaded, registry, job).context("[job.forensics]")?;
    }
    if let Some(job) = &suite.optimisation {
        optimisation::check(loaded, registry, job).context("[job.optimisation]")?;
    }
    Ok(())
}

/// Every training of every experiment of the suite, labelled with its experiment.
pub fn trainings(loaded: &LoadedConfig, suite: &ExperimentSuiteConfig) -> Result<Vec<PlannedTraining>> {
    let mut all = Vec::new();
    let mut add = |section: &str, trainings: Vec<PlannedTraining>| {
        all.extend(trainings.into_iter().map(|t| PlannedTraining {
            label: format!("[job.{section}] {}", t.label),
            ..t
        }));
    };
    if let Some(job) = &suite.drift_synthesis {
        add("drift_synthesis", drift_synthesis::trainings(loaded, job)?);
    }
    if let Some(job) = &suite.forensics {
        add("forensics", vec![forensics::training(loaded, job)?]);
    }
    if let Some(job) = &suite.optimisation {
        add("optimisation", optimisation::trainings(loaded, job)?);
    }
    Ok(all)
}

/// Runs the suite's experiments one after another into one run directory; returns the run directory.
pub fn run(context: &JobContext, suite: &ExperimentSuiteConfig) -> Result<PathBuf> {
    let dir = tracking::create_run_dir(&suite.output_dir, &suite.name)?;
    let started = std::time::Instant::now();
    let mut parts: Vec<PathBuf> = Vec::new();
    // one MLflow store for the whole suite
    let filed = |train: &TrainConfig| TrainConfig {
        mlflow_store: Some(dir.join("mlruns")),
        ..train.clone()
    };
    if let Some(job) = &suite.drift_synthesis {
        let job = DriftSynthesisConfig {
            output_dir: dir.clone(),
            name: "drift-synthesis".into(),
            train: filed(&job.train),
            ..job.clone()
        };
        parts.push(drift_synthesis::run(context, &job)?);
    }
    if let Some(job) = &suite.forensics {
        let job = ForensicsConfig {
            output_dir: dir.clone(),
            name: "forensics".into(),
            train: filed(&job.train),
            ..job.clone()
        };
        parts.push(forensics::run(context, &job)?);
    }
    if let Some(job) = &suite.optimisation {
        let job = OptimisationConfig {
            output_dir: dir.clone(),
            name: "optimisation".into(),
            train: filed(&job.train),
            ..job.clone()
        };
        parts.push(optimisation::run(context, &job)?);
    }
    let mut md = format!(
        "# l2l experiments\n\nRun `{}`, {:.0} s. Each section is the report of one experiment (its folder holds the data).\n",
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    for part in &parts {
        let folder = part
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(part.join("report.md"))?;
        md += "\n";
        for line in text.lines() {
            // one level deeper, and images found in the experiment's folder
            let line = if line.starts_with('#') {
                format!("#{line}")
            } else {
                line.replace("](", &format!("]({folder}/"))
            };
            md += &line;
            md += "\n";
        }
    }
    write_atomically(&dir.join("report.md"), |out| Ok(out.write_all(md.as_bytes())?))?;
    Ok(dir)
}
