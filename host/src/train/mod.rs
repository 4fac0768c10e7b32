//! The training engine every experiment runs on: a job's context (dataset, task model), a
//! processing (by mode), Adam, the k-fold loop over the dataset's splits, validation every epoch,
//! checkpoints every epoch (resumable), and tracking (metrics, MLflow file store, image grids of
//! every stage, its gradient and the predictions, learning curves).
//!
//! Processing modes: `static` — the given pipeline, fixed (run without gradient); `parametrized` —
//! the pipeline's learnable parameters train with the task model; `neural_network` — the pipeline holds
//! a `processor_nn` stage, trained with the task model; `none` — the 2×2-packed raw (isp-core `pack`).

pub mod augment;
pub mod checkpoint;
pub mod config;
pub mod context;
mod evaluate;
pub mod metrics;
pub mod optim;
pub mod processed;
mod trainer;

use crate::config::{LoadedConfig, PipelineSpec};
use crate::pipeline::Pipeline;
use crate::plugins::Registry;
use crate::tracking::{self, MetricsRow, MlflowRun};
use anyhow::{anyhow, bail, Context, Result};
use config::{ProcessingMode, TrainConfig};
use context::JobContext;
use metrics::{Outcome, PredictionSummary};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::Tensor;
use trainer::Trainer;

pub use evaluate::{evaluate, ImageTransform};
pub use trainer::validation_outcomes_file;

/// Where a run is, as its checkpoint records it.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Progress {
    /// The fold being trained.
    pub fold: usize,
    /// Epochs of that fold finished (and checkpointed).
    pub epochs_done: usize,
    /// Every metrics row so far.
    pub history: Vec<MetricsRow>,
}

/// What `run.json` records about a training run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RunRecord {
    /// The config file the run was started from (relative paths in it are resolved against it).
    pub config_path: PathBuf,
    /// `git rev-parse HEAD` where the config lives, or "unknown".
    pub git_commit: String,
    /// The training seed (splits, shuffles, augmentation); model seeds are in the config.
    pub seed: u64,
    /// l2l-host's version.
    pub l2l_version: String,
    /// The run's folder in the MLflow store.
    pub mlflow_run: PathBuf,
    /// `config.toml` as the run started with it: `--resume` refuses an edited one unless asked.
    #[serde(default)]
    pub config: Option<String>,
}

const CHECKPOINT: &str = "checkpoint.safetensors";

/// What a training hands back for the experiments to use directly; its files (metrics, checkpoints,
/// outcomes, plots) are the record, not the channel.
pub struct Trained {
    /// The run directory.
    pub run_dir: PathBuf,
    /// Every metrics row of the run, as `metrics.jsonl` records them.
    pub history: Vec<MetricsRow>,
    /// The folds this call trained to the end (a resumed run's earlier folds are on disk only).
    pub folds: BTreeMap<usize, TrainedFold>,
}

/// One replicate's end of training.
pub struct TrainedFold {
    /// The task model's state after the last epoch (what `fold{N}.safetensors` saves as `task_model`).
    pub task_model: Vec<(String, Tensor)>,
    /// The finished model's per-sample outcomes on the split's scored samples (the test part where
    /// there is one, else the last epoch's validation), in their order.
    pub scored_outcomes: Vec<Outcome>,
    /// The same pass's truths and predictions in counts (baselines, collapse).
    pub scored_summary: PredictionSummary,
}

impl Trained {
    /// Fold `fold`'s end of training; an error for a fold this call did not train.
    pub fn fold(&self, fold: usize) -> Result<&TrainedFold> {
        self.folds
            .get(&fold)
            .ok_or_else(|| anyhow!("{}: fold {fold} was not trained here", self.run_dir.display()))
    }
}

/// Trains as `config` says behind `processing` (used as `config.mode` says), in a new run directory —
/// or, with `resume`, continues the run in that directory from its last checkpoint.
pub fn train(
    context: &JobContext,
    processing: &PipelineSpec,
    config: &TrainConfig,
    resume: Option<&Path>,
) -> Result<Trained> {
    check_config(processing, config)?;
    let splits = context.splits(config)?;
    let (run_dir, mut progress, mut mlflow, resumed_state) = match resume {
        Some(dir) => {
            for folder in [dir.to_path_buf(), dir.join("checkpoints")] {
                l2l_rawio::remove_stale_temporaries(&folder)
                    .with_context(|| format!("cleaning {}", folder.display()))?;
            }
            let record = run_record(dir)?;
            // killed before its first checkpoint: the run starts over, in its own directory
            let checkpoint = dir.join("checkpoints").join(CHECKPOINT);
            let (progress, state) = if checkpoint.exists() {
                let (progress, state) = read_checkpoint(&checkpoint)?;
                check_progress(&progress, splits.len(), config)
                    .with_context(|| format!("{}: the progress record", checkpoint.display()))?;
                (progress, Some(state))
            } else {
                (Progress::default(), None)
            };
            tracing::info!(
                "resuming {} at fold {} after epoch {}",
                dir.display(),
                progress.fold,
                progress.epochs_done
            );
            (dir.to_path_buf(), progress, MlflowRun::open(&record.mlflow_run)?, state)
        }
        None => {
            let dir = tracking::create_run_dir(&config.output_dir, &config.name)?;
            let (progress, mlflow) = start_run(context, processing, config, &dir)?;
            (dir, progress, mlflow, None)
        }
    };
    let mut folds = BTreeMap::new();
    let result = (|| -> Result<()> {
        let mut resumed_state = resumed_state;
        for (fold, split) in splits.iter().enumerate().skip(progress.fold) {
            if !config.trains_fold(fold) {
                continue;
            }
            let mut trainer = Trainer::build(context, processing, config, fold, split)?;
            let mut first_epoch = 1;
            if let Some(state) = resumed_state.take() {
                if progress.fold == fold && progress.epochs_done > 0 {
                    trainer.load_state(&state)?;
                    first_epoch = progress.epochs_done + 1;
                }
            }
            progress.fold = fold;
            for epoch in first_epoch..=config.epochs {
                let rows = trainer.epoch(&context.dataset, split, epoch, &run_dir)?;
                progress.history.extend(rows);
                progress.epochs_done = epoch;
                write_checkpoint(
                    &run_dir.join("checkpoints").join(CHECKPOINT),
                    &progress,
                    &trainer.state()?,
                )?;
                tracking::write_metrics(&run_dir, &progress.history)?;
                mlflow.write_metrics(&progress.history)?;
                tracking::plot_learning_curves(
                    &run_dir.join("learning_curves.png"),
                    &progress.history,
                    &["loss", context.metric()],
                )?;
            }
            let state = trainer.state()?;
            checkpoint::save(
                &run_dir.join("checkpoints").join(format!("fold{fold}.safetensors")),
                &state,
            )?;
            let task_model = checkpoint::section(&state, "task_model")
                .into_iter()
                .map(|(name, tensor)| Ok((name, tensor.f_detach()?.copy())))
                .collect::<Result<_>>()?;
            let (scored_outcomes, scored_summary) = if split.test.is_empty() {
                (
                    std::mem::take(&mut trainer.validation_outcomes),
                    trainer.validation_summary.clone(),
                )
            } else {
                let pass = trainer.test(&context.dataset, split, &run_dir)?;
                let summary = pass.summary();
                (pass.outcomes, summary)
            };
            folds.insert(
                fold,
                TrainedFold {
                    task_model,
                    scored_outcomes,
                    scored_summary,
                },
            );
            progress.epochs_done = 0;
        }
        progress.fold = splits.len();
        write_summary(&run_dir, &progress.history, splits.len(), config.epochs)
    })();
    mlflow.finish(result.is_ok())?;
    result?;
    Ok(Trained {
        run_dir,
        history: progress.history,
        folds,
    })
}

/// A training run directory's `run.json`.
fn run_record(dir: &Path) -> Result<RunRecord> {
    let path = dir.join("run.json");
    serde_json::from_slice(
        &std::fs::read(&path)
            .with_context(|| format!("{}: not a training run directory (no run.json)", dir.display()))?,
    )
    .with_context(|| format!("reading {}", path.display()))
}

/// Before `--resume`: the run's `config.toml` must be the one it started with, unless `allow_change`
/// (then the change is logged); an edit (a learning rate changed mid-run) would otherwise apply silently.
pub fn check_resumed_config(dir: &Path, allow_change: bool) -> Result<()> {
    let Some(started) = run_record(dir)?.config else {
        return Ok(());
    };
    let now = std::fs::read_to_string(dir.join("config.toml"))
        .with_context(|| format!("reading {}", dir.join("config.toml").display()))?;
    if now == started {
        return Ok(());
    }
    let removed = started
        .lines()
        .filter(|l| !now.lines().any(|n| n == *l))
        .map(|l| format!("- {l}"));
    let added = now
        .lines()
        .filter(|l| !started.lines().any(|s| s == *l))
        .map(|l| format!("+ {l}"));
    let difference: Vec<String> = removed.chain(added).collect();
    if allow_change {
        tracing::warn!(
            "{}: config.toml changed since the run started; continuing with it:\n{}",
            dir.display(),
            difference.join("\n")
        );
        Ok(())
    } else {
        bail!(
            "{}: config.toml changed since the run started (resume with --allow-config-change to continue with it):\n{}",
            dir.display(),
            difference.join("\n")
        )
    }
}

/// What a training's config must hold whatever the data: something to train, epochs and batches, a
/// processing that fits the mode.
fn check_config(processing: &PipelineSpec, config: &TrainConfig) -> Result<()> {
    if config.freeze_processor && config.freeze_task_model {
        bail!("config keys `job.freeze_processor` and `job.freeze_task_model`: freezing both leaves nothing to train");
    }
    if config.epochs == 0 || config.batch_size == 0 || config.n_splits == 0 {
        bail!("config keys `job.epochs`, `job.batch_size` and `job.n_splits` must be at least 1");
    }
    for (key, rate) in [("lr", Some(config.lr)), ("processor_lr", config.processor_lr)] {
        if let Some(rate) = rate.filter(|r| !(r.is_finite() && *r > 0.0)) {
            bail!("config key `job.{key}`: expected a learning rate > 0, found {rate}");
        }
    }
    if !(config.weight_decay.is_finite() && config.weight_decay >= 0.0) {
        bail!(
            "config key `job.weight_decay`: expected a number ≥ 0, found {}",
            config.weight_decay
        );
    }
    if !(config.train_size > 0.0 && config.train_size < 1.0) {
        bail!(
            "config key `job.train_size`: expected a fraction in (0, 1), found {}",
            config.train_size
        );
    }
    match config.mode {
        ProcessingMode::None => {}
        mode if processing.stages.is_empty() => {
            bail!("config key `job.mode`: `{mode:?}` processing needs a `pipeline` (or use mode = \"none\")")
        }
        ProcessingMode::NeuralNetwork if !processing.stages.iter().any(|s| s.kind == "processor_nn") => {
            bail!("config key `job.mode`: neural_network processing needs a stage of kind `processor_nn` in `pipeline`")
        }
        _ => {}
    }
    Ok(())
}

/// One training a job will do, named for messages: what [`preflight`] tries before the job starts.
pub struct PlannedTraining {
    /// Which training this is (`pipeline FILE`, `mode none`), for the error that names it.
    pub label: String,
    /// Its processing, used as `config.mode` says.
    pub processing: PipelineSpec,
    /// How it trains.
    pub config: TrainConfig,
}

/// Runs two samples of the first fold through the planned training's processing and untrained task
/// model as the training would (evaluation mode), so that what only the data reveal — an image size the
/// task model cannot take, a mode whose output it does not fit — fails in seconds, before any of a job's
/// trainings starts, rather than after hours of the others.
pub fn preflight(context: &JobContext, planned: &PlannedTraining) -> Result<()> {
    let PlannedTraining {
        label,
        processing,
        config,
    } = planned;
    let tried = || -> Result<()> {
        check_config(processing, config)?;
        let splits = context.splits(config)?;
        let Some(split) = splits.first() else { return Ok(()) };
        let samples: Vec<usize> = split.validation.iter().chain(&split.train).copied().take(2).collect();
        Trainer::build(context, processing, config, 0, split)?
            .validate(&context.dataset, &samples, 1)
            .map(drop)
    };
    tried().with_context(|| format!("{label}, tried on two samples before training"))
}

/// Checks a training before it starts: its config, and its processing and reference pipeline built.
pub fn check(
    loaded: &LoadedConfig,
    registry: &Registry,
    processing: &PipelineSpec,
    config: &TrainConfig,
) -> Result<()> {
    check_config(processing, config)?;
    Pipeline::build(registry, &processing.stages, tch::Device::Cpu)?;
    if let Some(path) = &config.reference_pipeline {
        let reference = loaded
            .load_pipeline(path)
            .with_context(|| format!("config key `job.reference_pipeline`: {}", path.display()))?;
        Pipeline::build(registry, &reference.stages, tch::Device::Cpu)?;
    }
    Ok(())
}

/// The config a training run records (`config.toml`, what `--resume` reads back): the job's config
/// with this training's processing and a `train` job.
fn recorded_config(context: &JobContext, processing: &PipelineSpec, config: &TrainConfig) -> Result<toml::Table> {
    let mut table = context.loaded.resolved.clone();
    table.remove("pipeline");
    table.remove("stages");
    if !processing.stages.is_empty() {
        let (names, stages) = processing.to_tables();
        table.insert("pipeline".into(), names);
        table.insert("stages".into(), toml::Value::Table(stages));
    }
    let mut job = toml::Table::try_from(config)?;
    job.insert("kind".into(), toml::Value::String("train".into()));
    table.insert("job".into(), toml::Value::Table(job));
    Ok(table)
}

/// Writes the run's config, `run.json`, and files it in the MLflow store.
fn start_run(
    context: &JobContext,
    processing: &PipelineSpec,
    config: &TrainConfig,
    dir: &Path,
) -> Result<(Progress, MlflowRun)> {
    let recorded = recorded_config(context, processing, config)?;
    let text = toml::to_string(&recorded)?;
    crate::imageio::write_atomically(&dir.join("config.toml"), |out| Ok(out.write_all(text.as_bytes())?))?;
    let mut params = BTreeMap::new();
    flatten_params("", &toml::Value::Table(recorded), &mut params);
    let run_name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let loaded = context.loaded;
    let commit = git_commit(loaded.path.parent().unwrap_or(Path::new(".")));
    let tags = BTreeMap::from([
        ("mlflow.source.git.commit".to_string(), commit.clone()),
        ("mlflow.user".to_string(), tracking::user()),
        ("mlflow.source.name".to_string(), loaded.path.display().to_string()),
        ("l2l.version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
    ]);
    let mlflow = MlflowRun::create(&config.store(), &config.experiment, &run_name, dir, &params, &tags)?;
    let record = RunRecord {
        config_path: loaded.path.canonicalize().unwrap_or_else(|_| loaded.path.clone()),
        git_commit: commit,
        seed: config.seed,
        l2l_version: env!("CARGO_PKG_VERSION").into(),
        mlflow_run: mlflow.dir().to_path_buf(),
        config: Some(text),
    };
    crate::imageio::write_atomically(&dir.join("run.json"), |out| {
        Ok(serde_json::to_writer_pretty(out, &record)?)
    })?;
    Ok((Progress::default(), mlflow))
}

/// `a.b.c = value` for every leaf of a TOML table (MLflow params).
fn flatten_params(prefix: &str, value: &toml::Value, out: &mut BTreeMap<String, String>) {
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                let name = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten_params(&name, value, out);
            }
        }
        toml::Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

fn git_commit(dir: &Path) -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(dir)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Saves the tensors and the progress (as the file's metadata) in one atomic write.
fn write_checkpoint(path: &Path, progress: &Progress, tensors: &[(String, Tensor)]) -> Result<()> {
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    let state = serde_json::to_string(progress)?;
    crate::imageio::write_atomically(path, |out| {
        checkpoint::write_tensors_with_metadata(out, tensors, &[("l2l_progress", &state)])
    })
}

fn read_checkpoint(path: &Path) -> Result<(Progress, Vec<(String, Tensor)>)> {
    let (tensors, metadata) = checkpoint::read_with_metadata(path)?;
    let progress = metadata.get("l2l_progress").ok_or_else(|| {
        anyhow!(
            "{}: not an l2l training checkpoint (no progress record)",
            path.display()
        )
    })?;
    let progress = serde_json::from_str(progress)
        .with_context(|| format!("{}: the progress record is not readable", path.display()))?;
    Ok((progress, tensors))
}

/// Refuses a progress record that this run could not have written: a fold it does not train, more
/// epochs than it runs (an edited or mixed-up checkpoint would otherwise end "finished" with nothing
/// trained).
fn check_progress(progress: &Progress, folds: usize, config: &TrainConfig) -> Result<()> {
    if progress.fold >= folds || !config.trains_fold(progress.fold) {
        bail!("fold {} is not one this run trains (it has {folds} folds); the checkpoint belongs to another run or was edited", progress.fold);
    }
    if progress.epochs_done > config.epochs {
        bail!(
            "{} epochs done, but the run trains {} per fold; the checkpoint belongs to another run or was edited",
            progress.epochs_done,
            config.epochs
        );
    }
    Ok(())
}

/// The final validation metrics of every fold, and their mean, as `summary.json`.
fn write_summary(dir: &Path, history: &[MetricsRow], folds: usize, epochs: usize) -> Result<()> {
    let last: Vec<&MetricsRow> = history
        .iter()
        .filter(|r| r.split == "validation" && r.epoch == epochs)
        .collect();
    let folds = last.len().max(1).min(folds);
    let mut mean: BTreeMap<String, f64> = BTreeMap::new();
    for row in &last {
        for (k, v) in &row.values {
            *mean.entry(k.clone()).or_default() += v / folds as f64;
        }
    }
    let summary = serde_json::json!({ "folds": folds, "epochs": epochs, "final_validation": last, "mean_final_validation": mean });
    crate::imageio::write_atomically(&dir.join("summary.json"), |out| {
        Ok(serde_json::to_writer_pretty(out, &summary)?)
    })
}
