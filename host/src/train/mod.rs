//! The training engine every experiment runs on: a dataset, a processing (by mode), a task model, Adam,
//! the k-fold loop over the dataset's splits, validation every epoch, checkpoints every epoch (resumable),
//! and tracking (metrics, MLflow file store, image grids of every stage, its gradient and the
//! predictions, learning curves).
//!
//! Processing modes: `static` — the config's pipeline, fixed (run without gradient); `parametrized` —
//! the pipeline's learnable parameters train with the task model; `neural_network` — the pipeline holds
//! a `processor_nn` stage, trained with the task model; `none` — the 2×2-packed raw (isp-core `pack`).

pub mod augment;
pub mod checkpoint;
pub mod metrics;
pub mod optim;

use crate::config::{LoadedConfig, ProcessingMode, StageSpec, TrainConfig};
use crate::data::{self, Loader, LoaderOptions, Split};
use crate::datasets;
use crate::pipeline::Pipeline;
use crate::plugins::{Registry, RemoteDataset, RemoteModule};
use crate::tracking::{self, MetricsRow, MlflowRun};
use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use metrics::{Accumulator, Task};
use optim::{Adam, ParameterGroup};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

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
}

const CHECKPOINT: &str = "checkpoint.safetensors";

/// Trains as `config` says, in a new run directory — or, with `resume`, continues the run in that
/// directory from its last checkpoint. Returns the run directory.
pub fn train(loaded: &LoadedConfig, registry: &Registry, config: &TrainConfig, resume: Option<&Path>) -> Result<PathBuf> {
    if config.freeze_processor && config.freeze_task_model {
        bail!("config keys `job.freeze_processor` and `job.freeze_task_model`: freezing both leaves nothing to train");
    }
    if config.epochs == 0 || config.batch_size == 0 {
        bail!("config keys `job.epochs` and `job.batch_size` must be at least 1");
    }
    let device = loaded.device()?;
    let dataset = Arc::new(datasets::open(registry, &datasets::spec(loaded)?, &[])?);
    let task = task_of(&dataset);
    let splits = splits_of(&dataset, config)?;
    let model_spec = loaded
        .task_model_spec()?
        .ok_or_else(|| anyhow!("config {}: a train job needs a [task_model] table (e.g. kind = \"resnet\")", loaded.path.display()))?;

    let (run_dir, mut progress, mut mlflow, resumed_state) = match resume {
        Some(dir) => {
            for folder in [dir.to_path_buf(), dir.join("checkpoints")] {
                l2l_rawio::remove_stale_temporaries(&folder).with_context(|| format!("cleaning {}", folder.display()))?;
            }
            let (progress, state) = read_checkpoint(&dir.join("checkpoints").join(CHECKPOINT))?;
            let record: RunRecord = serde_json::from_slice(&std::fs::read(dir.join("run.json"))?)
                .with_context(|| format!("reading {}", dir.join("run.json").display()))?;
            tracing::info!("resuming {} at fold {} after epoch {}", dir.display(), progress.fold, progress.epochs_done);
            (dir.to_path_buf(), progress, MlflowRun::open(&record.mlflow_run)?, Some(state))
        }
        None => {
            let dir = tracking::create_run_dir(&config.output_dir, &config.name)?;
            let (progress, mlflow) = start_run(loaded, config, &dir)?;
            (dir, progress, mlflow, None)
        }
    };
    let result = (|| -> Result<()> {
        let mut resumed_state = resumed_state;
        for fold in progress.fold..splits.len() {
            if !config.trains_fold(fold) {
                continue;
            }
            let mut trainer = Trainer::build(loaded, registry, config, &model_spec, &task, device, fold)?;
            let mut first_epoch = 1;
            if let Some(state) = resumed_state.take() {
                if progress.fold == fold && progress.epochs_done > 0 {
                    trainer.load_state(&state)?;
                    first_epoch = progress.epochs_done + 1;
                }
            }
            progress.fold = fold;
            for epoch in first_epoch..=config.epochs {
                let rows = trainer.epoch(&dataset, &splits[fold], epoch, &run_dir)?;
                progress.history.extend(rows);
                progress.epochs_done = epoch;
                write_checkpoint(&run_dir.join("checkpoints").join(CHECKPOINT), &progress, &trainer.state()?)?;
                tracking::write_metrics(&run_dir, &progress.history)?;
                mlflow.write_metrics(&progress.history)?;
                let main = if matches!(task, Task::Segmentation) { "iou" } else { "accuracy" };
                tracking::plot_learning_curves(&run_dir.join("learning_curves.png"), &progress.history, &["loss", main])?;
            }
            checkpoint::save(&run_dir.join("checkpoints").join(format!("fold{fold}.safetensors")), &trainer.state()?)?;
            progress.epochs_done = 0;
        }
        progress.fold = splits.len();
        write_summary(&run_dir, &progress.history, splits.len(), config.epochs)
    })();
    mlflow.finish(result.is_ok())?;
    result?;
    Ok(run_dir)
}

/// The task a dataset poses.
pub fn task_of(dataset: &RemoteDataset) -> Task {
    match dataset.class_names() {
        Some(names) => Task::Classification { class_names: names.to_vec() },
        None => Task::Segmentation,
    }
}

/// The folds a training with `config` uses: stratified for classification, plain for segmentation.
pub fn splits_of(dataset: &RemoteDataset, config: &TrainConfig) -> Result<Vec<Split>> {
    match dataset.labels()? {
        Some(labels) => data::stratified_splits(&labels, config.n_splits, config.train_size, config.seed),
        None => data::shuffle_splits(dataset.len(), config.n_splits, config.train_size, config.seed),
    }
}

/// Writes the run's config, `run.json`, and files it in the MLflow store.
fn start_run(loaded: &LoadedConfig, config: &TrainConfig, dir: &Path) -> Result<(Progress, MlflowRun)> {
    let text = toml::to_string(&loaded.resolved)?;
    crate::imageio::write_atomically(&dir.join("config.toml"), |out| Ok(out.write_all(text.as_bytes())?))?;
    let mut params = BTreeMap::new();
    flatten_params("", &toml::Value::Table(loaded.resolved.clone()), &mut params);
    let run_name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mlflow = MlflowRun::create(&config.output_dir.join("mlruns"), &config.experiment, &run_name, dir, &params)?;
    let record = RunRecord {
        config_path: loaded.path.canonicalize().unwrap_or_else(|_| loaded.path.clone()),
        git_commit: git_commit(loaded.path.parent().unwrap_or(Path::new("."))),
        seed: config.seed,
        l2l_version: env!("CARGO_PKG_VERSION").into(),
        mlflow_run: mlflow.dir().to_path_buf(),
    };
    crate::imageio::write_atomically(&dir.join("run.json"), |out| Ok(serde_json::to_writer_pretty(out, &record)?))?;
    Ok((Progress::default(), mlflow))
}


/// `a.b.c = value` for every leaf of a TOML table (MLflow params).
fn flatten_params(prefix: &str, value: &toml::Value, out: &mut BTreeMap<String, String>) {
    match value {
        toml::Value::Table(table) => {
            for (key, value) in table {
                let name = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
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
    crate::imageio::write_atomically(path, |out| checkpoint::write_tensors_with_metadata(out, tensors, &[("l2l_progress", &state)]))
}

fn read_checkpoint(path: &Path) -> Result<(Progress, Vec<(String, Tensor)>)> {
    let (tensors, metadata) = checkpoint::read_with_metadata(path)?;
    let progress = metadata
        .get("l2l_progress")
        .ok_or_else(|| anyhow!("{}: not an l2l training checkpoint (no progress record)", path.display()))?;
    Ok((serde_json::from_str(progress)?, tensors))
}

/// The final validation metrics of every fold, and their mean, as `summary.json`.
fn write_summary(dir: &Path, history: &[MetricsRow], folds: usize, epochs: usize) -> Result<()> {
    let last: Vec<&MetricsRow> = history.iter().filter(|r| r.split == "validation" && r.epoch == epochs).collect();
    let folds = last.len().max(1).min(folds);
    let mut mean: BTreeMap<String, f64> = BTreeMap::new();
    for row in &last {
        for (k, v) in &row.values {
            *mean.entry(k.clone()).or_default() += v / folds as f64;
        }
    }
    let summary = serde_json::json!({ "folds": folds, "epochs": epochs, "final_validation": last, "mean_final_validation": mean });
    crate::imageio::write_atomically(&dir.join("summary.json"), |out| Ok(serde_json::to_writer_pretty(out, &summary)?))
}

/// A change applied to processed images before the task model sees them (a corruption).
pub type ImageTransform<'t> = &'t dyn Fn(&Tensor) -> Result<Tensor>;

/// Evaluates `model` behind `processing` on the samples `indices` without gradient (both must be in
/// evaluation mode), `transform` applied between them when given.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    processing: &mut Pipeline,
    model: &mut RemoteModule,
    dataset: &Arc<RemoteDataset>,
    indices: &[usize],
    task: &Task,
    options: &LoaderOptions,
    device: Device,
    transform: Option<ImageTransform<'_>>,
) -> Result<Accumulator> {
    let mut accumulator = Accumulator::new(task);
    for batch in Loader::new(dataset.clone(), indices.to_vec(), options)? {
        let batch = batch?;
        let raw = batch.raw.f_to_device(device)?;
        let target = batch.target.f_to_device(device)?;
        tch::no_grad(|| -> Result<()> {
            processing.set_camera(&batch.cameras)?;
            let mut processed = processing.forward(&raw)?;
            if let Some(transform) = transform {
                processed = transform(&processed)?;
            }
            let logits = model.forward(&processed)?;
            let loss = metrics::loss(task, &logits, &target)?;
            accumulator.add(&logits, &target, loss.f_double_value(&[])?)
        })?;
    }
    Ok(accumulator)
}

/// One fold's processing, task model and optimiser.
struct Trainer<'a> {
    config: &'a TrainConfig,
    task: Task,
    device: Device,
    fold: usize,
    processing: Pipeline,
    reference: Option<Pipeline>,
    model: RemoteModule,
    optimizer: Adam,
    trains_processor: bool,
}

impl<'a> Trainer<'a> {
    fn build(
        loaded: &LoadedConfig,
        registry: &Registry,
        config: &'a TrainConfig,
        model_spec: &crate::config::ComponentSpec,
        task: &Task,
        device: Device,
        fold: usize,
    ) -> Result<Self> {
        let specs = match config.mode {
            ProcessingMode::None => vec![StageSpec {
                name: "pack".into(),
                kind: "pack".into(),
                plugin: None,
                config_text: "cfa_from_metadata = true\n".into(),
            }],
            mode => {
                let specs = loaded.stage_specs()?;
                if specs.is_empty() {
                    bail!("config key `job.mode`: `{mode:?}` processing needs a `pipeline` (or use mode = \"none\")");
                }
                if mode == ProcessingMode::NeuralNetwork && !specs.iter().any(|s| s.kind == "processor_nn") {
                    bail!("config key `job.mode`: neural_network processing needs a stage of kind `processor_nn` in `pipeline`");
                }
                specs
            }
        };
        let processing = Pipeline::build(registry, &specs, device)?;
        let reference = match &config.reference_pipeline {
            Some(path) => {
                let reference = crate::config::load(&loaded.resolve(path), &[])?;
                Some(Pipeline::build(registry, &reference.stage_specs()?, device)?)
            }
            None => None,
        };
        let classes = match task {
            Task::Classification { class_names } => class_names.len(),
            Task::Segmentation => 1,
        };
        let mut model = registry.build_task_model(&model_spec.kind, model_spec.plugin.as_deref(), &model_spec.config_text, classes, "config key `task_model`")?;
        model.to(device, Kind::Float)?;
        let trains_processor = matches!(config.mode, ProcessingMode::Parametrized | ProcessingMode::NeuralNetwork) && !config.freeze_processor;
        let mut groups = Vec::new();
        if !config.freeze_task_model {
            let parameters: Vec<Tensor> = model.parameters()?.into_iter().filter(|p| p.trainable).map(|p| p.tensor).collect();
            groups.push(ParameterGroup { parameters, lr: config.lr });
        }
        if trains_processor {
            let parameters: Vec<Tensor> = processing.parameters()?.into_iter().filter(|p| p.trainable).map(|p| p.tensor).collect();
            if parameters.is_empty() {
                bail!("config key `job.mode`: `{:?}` processing, but no stage of the pipeline has a learnable parameter", config.mode);
            }
            groups.push(ParameterGroup { parameters, lr: config.processor_lr.unwrap_or(config.lr) });
        }
        if groups.iter().all(|g| g.parameters.is_empty()) {
            bail!("nothing to train: no learnable parameter in the task model or the processing");
        }
        let optimizer = Adam::new(groups, config.weight_decay)?;
        Ok(Self { config, task: task.clone(), device, fold, processing, reference, model, optimizer, trains_processor })
    }

    fn state(&self) -> Result<Vec<(String, Tensor)>> {
        let mut state: Vec<(String, Tensor)> = Vec::new();
        state.extend(self.processing.state()?.into_iter().map(|(n, t)| (format!("processor.{n}"), t)));
        state.extend(self.model.state()?.into_iter().map(|(n, t)| (format!("task_model.{n}"), t)));
        state.extend(self.optimizer.state()?.into_iter().map(|(n, t)| (format!("optimizer.{n}"), t)));
        Ok(state)
    }

    fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        self.processing.load_state(&checkpoint::section(state, "processor"))?;
        self.model.load_state(checkpoint::section(state, "task_model")).context("restoring the task model")?;
        self.optimizer.load_state(&checkpoint::section(state, "optimizer"))
    }

    fn set_train(&mut self, train: bool) -> Result<()> {
        self.processing.set_train(train && self.trains_processor)?;
        self.model.set_train(train && !self.config.freeze_task_model)
    }

    /// The processing of a batch: without gradient when it does not train.
    fn process(&mut self, raw: &Tensor, cameras: &[l2l_plugin_api::RawMetadata]) -> Result<Tensor> {
        self.processing.set_camera(cameras)?;
        if self.trains_processor {
            self.processing.forward(raw)
        } else {
            tch::no_grad(|| self.processing.forward(raw))
        }
    }

    /// Which stage first produced a NaN or infinity on `raw` (run again without gradient), or that the
    /// task model did.
    fn first_non_finite_stage(&mut self, raw: &Tensor, cameras: &[l2l_plugin_api::RawMetadata]) -> Result<String> {
        self.processing.set_camera(cameras)?;
        let outputs = tch::no_grad(|| self.processing.forward_traced(raw, |_| {}))?;
        for output in &outputs {
            if output.output.f_isfinite()?.f_all()?.f_int64_value(&[])? == 0 {
                return Ok(format!("the first non-finite output is stage `{}`'s", output.name));
            }
        }
        Ok("every stage's output is finite: the task model or the loss produced it".into())
    }

    fn targets(&self, batch: &data::Batch) -> Result<Tensor> {
        Ok(batch.target.f_to_device(self.device)?)
    }

    /// One epoch: train on the split's training samples, validate, draw the tracked samples.
    fn epoch(&mut self, dataset: &Arc<RemoteDataset>, split: &Split, epoch: usize, run_dir: &Path) -> Result<Vec<MetricsRow>> {
        let started = Instant::now();
        let workers = self.config.workers.unwrap_or_else(|| LoaderOptions::default().workers);
        let seed = self.config.seed ^ (self.fold as u64) << 32 ^ epoch as u64;
        let options = LoaderOptions {
            batch_size: self.config.batch_size,
            workers,
            shuffle_seed: Some(seed),
            ..Default::default()
        };
        let loader = Loader::new(dataset.clone(), split.train.clone(), &options)?;
        let bar = ProgressBar::new(loader.len() as u64).with_style(
            ProgressStyle::with_template("{spinner} fold {msg} [{bar:30}] {pos}/{len} batches {elapsed_precise} eta {eta}")?.progress_chars("=> "),
        );
        bar.set_message(format!("{} epoch {epoch}/{}", self.fold, self.config.epochs));
        self.set_train(true)?;
        let mut accumulator = Accumulator::new(&self.task);
        for (index, batch) in loader.enumerate() {
            let batch = batch?;
            let raw = batch.raw.f_to_device(self.device)?;
            let processed = self.process(&raw, &batch.cameras)?;
            let target = self.targets(&batch)?;
            let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index as u64);
            let masks = matches!(self.task, Task::Segmentation).then(|| metrics::mask_like(&target, &processed)).transpose()?;
            let (input, masks) = augment::augment(&processed, masks.as_ref(), self.config.augmentation, &mut rng)?;
            let target = masks.unwrap_or(target);
            let logits = self.model.forward(&input)?;
            let loss = metrics::loss(&self.task, &logits, &target)?;
            if loss.f_isfinite()?.f_all()?.f_int64_value(&[])? == 0 {
                let culprit = self.first_non_finite_stage(&raw, &batch.cameras)?;
                bail!(
                    "fold {} epoch {epoch} step {}: the loss is {} — {culprit}; training stopped, the last checkpoint (epoch {}) is kept",
                    self.fold,
                    index + 1,
                    loss.f_double_value(&[])?,
                    epoch - 1
                );
            }
            self.optimizer.zero_grad();
            loss.f_backward()?;
            self.optimizer.step()?;
            accumulator.add(&logits.f_detach()?, &target, loss.f_double_value(&[])?)?;
            bar.inc(1);
        }
        bar.finish_and_clear();
        let train_seconds = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let validation = self.validate(dataset, &split.validation, workers)?;
        let rows = vec![
            MetricsRow { fold: self.fold, epoch, split: "train".into(), seconds: train_seconds, values: accumulator.finish() },
            MetricsRow { fold: self.fold, epoch, split: "validation".into(), seconds: started.elapsed().as_secs_f64(), values: validation.finish() },
        ];
        tracing::info!(
            "fold {} epoch {epoch}: train {:?}, validation {:?}",
            self.fold,
            rows[0].values.iter().filter(|(k, _)| ["loss", "accuracy", "iou"].contains(&k.as_str())).collect::<Vec<_>>(),
            rows[1].values.iter().filter(|(k, _)| ["loss", "accuracy", "iou"].contains(&k.as_str())).collect::<Vec<_>>()
        );
        if let Task::Classification { .. } = self.task {
            let path = run_dir.join(format!("confusion_fold{}.json", self.fold));
            crate::imageio::write_atomically(&path, |out| Ok(serde_json::to_writer(out, &validation.confusion)?))?;
        }
        let tracked: Vec<usize> = split.validation.iter().copied().take(self.config.tracked_samples).collect();
        if !tracked.is_empty() {
            let dir = run_dir.join("tracked").join(format!("fold{}", self.fold)).join(format!("epoch{epoch:03}"));
            self.draw_tracked(dataset, &tracked, &dir)?;
        }
        Ok(rows)
    }

    fn validate(&mut self, dataset: &Arc<RemoteDataset>, indices: &[usize], workers: usize) -> Result<Accumulator> {
        self.set_train(false)?;
        let options = LoaderOptions { batch_size: self.config.batch_size, workers, ..Default::default() };
        evaluate(&mut self.processing, &mut self.model, dataset, indices, &self.task, &options, self.device, None)
    }

    /// Grids for the tracked samples: every stage's output, the task loss's gradient at every stage,
    /// the predictions, and (with a reference pipeline) the difference to the reference processing.
    fn draw_tracked(&mut self, dataset: &Arc<RemoteDataset>, indices: &[usize], dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        self.set_train(false)?;
        let options = LoaderOptions { batch_size: indices.len(), workers: 1, prefetch: 1, ..Default::default() };
        let batch = Loader::new(dataset.clone(), indices.to_vec(), &options)?
            .next()
            .ok_or_else(|| anyhow!("no tracked samples"))??;
        let raw = batch.raw.f_to_device(self.device)?.f_set_requires_grad(true)?;
        let target = self.targets(&batch)?;
        self.processing.set_camera(&batch.cameras)?;
        let outputs = self.processing.forward_traced(&raw, |_| {})?;
        let processed = outputs.last().map(|o| o.output.shallow_clone()).unwrap_or(raw.shallow_clone());
        let logits = self.model.forward(&processed)?;
        let loss = metrics::loss(&self.task, &logits, &target)?;
        let stage_outputs: Vec<Tensor> = outputs.iter().map(|o| o.output.shallow_clone()).collect();
        let gradients = Tensor::run_backward(&[&loss], &stage_outputs, false, false);
        let rows = |tensors: &[Tensor], first: &Tensor| -> Result<Vec<Vec<Tensor>>> {
            (0..indices.len() as i64)
                .map(|i| {
                    let mut row = vec![first.f_get(i)?];
                    for t in tensors {
                        row.push(t.f_get(i)?);
                    }
                    Ok(row)
                })
                .collect()
        };
        tracking::write_grid(&dir.join("stages.png"), &rows(&stage_outputs, &raw.f_detach()?)?, false)?;
        tracking::write_grid(&dir.join("gradients.png"), &rows(&gradients, &raw.f_detach()?)?, true)?;
        let mut predictions = Vec::new();
        let mut labels = Vec::new();
        for i in 0..indices.len() as i64 {
            let image = processed.f_get(i)?.f_detach()?;
            match &self.task {
                Task::Segmentation => {
                    let truth = metrics::mask_like(&target, &logits)?.f_get(i)?.f_unsqueeze(0)?.f_to_kind(Kind::Float)?;
                    let predicted = logits.f_get(i)?.f_detach()?.f_sigmoid()?;
                    predictions.push(vec![image, truth, predicted]);
                }
                Task::Classification { class_names } => {
                    let predicted = logits.f_get(i)?.f_argmax(0, false)?.f_int64_value(&[])? as usize;
                    let truth = target.f_int64_value(&[i])? as usize;
                    labels.push(serde_json::json!({"sample": indices[i as usize], "truth": class_names[truth], "predicted": class_names[predicted]}));
                    predictions.push(vec![image]);
                }
            }
        }
        tracking::write_grid(&dir.join("predictions.png"), &predictions, false)?;
        if !labels.is_empty() {
            crate::imageio::write_atomically(&dir.join("predictions.json"), |out| Ok(serde_json::to_writer_pretty(out, &labels)?))?;
        }
        if let Some(reference) = &mut self.reference {
            let reference_output = tch::no_grad(|| -> Result<Tensor> {
                reference.set_camera(&batch.cameras)?;
                reference.forward(&raw.f_detach()?)
            })?;
            let grid = (0..indices.len() as i64)
                .map(|i| -> Result<Vec<Tensor>> {
                    let ours = processed.f_get(i)?.f_detach()?;
                    let theirs = reference_output.f_get(i)?;
                    let size = ours.size();
                    let theirs_resized = theirs.f_unsqueeze(0)?.f_upsample_bilinear2d([size[1], size[2]], false, None, None)?.f_squeeze_dim(0)?;
                    let difference = if theirs_resized.size() == ours.size() { ours.f_sub(&theirs_resized)?.f_abs()? } else { ours.f_zeros_like()? };
                    Ok(vec![ours, theirs, difference])
                })
                .collect::<Result<Vec<_>>>()?;
            tracking::write_grid(&dir.join("reference_difference.png"), &grid, false)?;
        }
        Ok(())
    }
}

