//! Sweeps: a drift-synthesis experiment split into a grid of independent jobs — training pipeline ×
//! fold × augmentation — each a plain `l2l-host run` of a fully resolved config, run here in parallel
//! (`local`) or as one Slurm job array (`slurm`), then collected into the experiment's matrices and
//! report. A job is finished when its `results.json` exists (written atomically, so a killed job never
//! looks finished); running a sweep again runs only the jobs that are not.
//!
//! This file expands a config into jobs; `manifest` owns `[sweep]` and what a sweep directory records,
//! `executors` runs the jobs and `collect` gathers their results.

mod collect;
mod executors;
mod manifest;

pub use collect::{collect, Collected};
pub use executors::run;
pub use manifest::{manifest, result_of, Executor, Manifest, SlurmResources, SweepConfig, SweepJob};

use crate::config::{LoadedConfig, DATASET_PATH_KEYS, TASK_MODEL_PATH_KEYS};
use crate::experiments::stem;
use crate::imageio::write_atomically;
use crate::run::Job;
use crate::tracking;
use anyhow::{anyhow, bail, Result};
use std::path::{Path, PathBuf};

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| std::env::current_dir().unwrap_or_default().join(path))
}

/// Expands the drift-synthesis config `loaded` into a new sweep directory of job configs.
pub fn create(loaded: &LoadedConfig) -> Result<PathBuf> {
    let Job::DriftSynthesis(job) = Job::of(loaded)? else {
        bail!(
            "config {}: a sweep expands a `drift_synthesis` job",
            loaded.path.display()
        );
    };
    let sweep = SweepConfig::of(loaded)?;
    let dir = absolute(&tracking::create_run_dir(
        &job.output_dir,
        &format!("{}-sweep", job.name),
    )?);
    let training: Vec<PathBuf> = job.pipelines.iter().map(|p| absolute(&loaded.resolve(p))).collect();
    let testing: Vec<PathBuf> = if job.test_pipelines.is_empty() {
        training.clone()
    } else {
        job.test_pipelines
            .iter()
            .map(|p| absolute(&loaded.resolve(p)))
            .collect()
    };
    let augmentations = if sweep.augmentations.is_empty() {
        vec![job.train.augmentation]
    } else {
        sweep.augmentations.clone()
    };
    // the config as every job sees it: absolute paths, no [sweep]
    let mut base = loaded.resolved.clone();
    base.remove("sweep");
    let components = [
        ("dataset", loaded.dataset_spec()?, DATASET_PATH_KEYS),
        ("task_model", loaded.task_model_spec()?, TASK_MODEL_PATH_KEYS),
    ];
    for (table, spec, keys) in components {
        let Some(mut spec) = spec else { continue };
        for key in keys {
            if let Some(toml::Value::String(p)) = spec.config.get(*key) {
                let p = absolute(Path::new(p)).to_string_lossy().into_owned();
                spec.config.insert(key.to_string(), toml::Value::String(p));
            }
        }
        base.insert(table.into(), toml::Value::Table(spec.to_table()));
    }
    let dirs: Vec<toml::Value> = loaded
        .plugin_dirs()
        .iter()
        .map(|p| toml::Value::String(absolute(p).to_string_lossy().into_owned()))
        .collect();
    base.insert("plugin_dirs".into(), toml::Value::Array(dirs));
    // one job per replicate: every fold of every training seed (fold r % n_splits of seed r / n_splits)
    let folds = job.train.n_splits * job.train.training_seeds().len();
    let mut jobs = Vec::new();
    for pipeline in &training {
        for fold in (0..folds).filter(|f| job.train.trains_fold(*f)) {
            for augmentation in &augmentations {
                let aug = serde_json::to_value(augmentation)?
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let id = format!("{}__fold-{fold}__{aug}", stem(pipeline));
                let job_dir = dir.join("jobs").join(&id);
                std::fs::create_dir_all(&job_dir)?;
                let mut table = base.clone();
                let job_table = table
                    .get_mut("job")
                    .and_then(toml::Value::as_table_mut)
                    .ok_or_else(|| anyhow!("config has no [job] table"))?;
                job_table.insert(
                    "pipelines".into(),
                    toml::Value::Array(vec![toml::Value::String(pipeline.to_string_lossy().into_owned())]),
                );
                job_table.insert(
                    "test_pipelines".into(),
                    toml::Value::Array(
                        testing
                            .iter()
                            .map(|p| toml::Value::String(p.to_string_lossy().into_owned()))
                            .collect(),
                    ),
                );
                job_table.insert(
                    "output_dir".into(),
                    toml::Value::String(job_dir.join("run").to_string_lossy().into_owned()),
                );
                job_table.insert("name".into(), toml::Value::String("result".into()));
                let train = job_table
                    .get_mut("train")
                    .and_then(toml::Value::as_table_mut)
                    .ok_or_else(|| anyhow!("config has no [job.train] table"))?;
                train.insert(
                    "folds".into(),
                    toml::Value::Array(vec![toml::Value::Integer(fold as i64)]),
                );
                train.insert("augmentation".into(), toml::Value::String(aug));
                let path = job_dir.join("config.toml");
                let text = toml::to_string(&table)?;
                write_atomically(&path, |out| Ok(out.write_all(text.as_bytes())?))?;
                jobs.push(SweepJob {
                    id: id.clone(),
                    config: path,
                    dir: job_dir.join("run"),
                    log: dir.join("logs").join(format!("{id}.log")),
                });
            }
        }
    }
    std::fs::create_dir_all(dir.join("logs"))?;
    let manifest = Manifest {
        train: training.iter().map(|p| stem(p)).collect(),
        test: testing.iter().map(|p| stem(p)).collect(),
        metric: job.metric.clone(),
        jobs,
        sweep,
    };
    write_atomically(&dir.join("manifest.json"), |out| {
        Ok(serde_json::to_writer_pretty(out, &manifest)?)
    })?;
    Ok(dir)
}
