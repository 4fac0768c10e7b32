//! One fold's training: the processing (by mode), the task model and Adam; an epoch of training,
//! validation, and the tracked samples' image grids.

use super::augment;
use super::checkpoint;
use super::config::{ProcessingMode, TrainConfig};
use super::context::JobContext;
use super::evaluate::evaluate;
use super::metrics::{self, Accumulator, Outcome, PredictionSummary, Task};
use super::optim::{Adam, ParameterGroup};
use super::processed::{pipeline_key, Frozen, ProcessedCache};
use crate::config::{PipelineSpec, StageSpec};
use crate::data::{self, Loader, LoaderOptions, Split};
use crate::pipeline::Pipeline;
use crate::plugins::{RemoteDataset, RemoteModule, SharedParameter};
use crate::tracking::{self, MetricsRow};
use anyhow::{anyhow, bail, Context, Result};
use indicatif::ProgressStyle;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// One fold's processing, task model and optimiser.
pub(super) struct Trainer<'a> {
    config: &'a TrainConfig,
    task: Task,
    device: Device,
    fold: usize,
    processing: Pipeline,
    reference: Option<Pipeline>,
    model: RemoteModule,
    optimizer: Adam,
    trains_processor: bool,
    /// The job's cache and this processing's key in it, when the processing does not train.
    frozen: Option<(&'a ProcessedCache, u64)>,
    /// The processing's trained parameters whose stage declares a range: put back inside it after
    /// every step.
    bounded: Vec<SharedParameter>,
    /// The latest epoch's per-sample validation outcomes (in the fold's validation order).
    pub(super) validation_outcomes: Vec<Outcome>,
    /// The latest validation pass's truths and predictions in counts.
    pub(super) validation_summary: PredictionSummary,
}

impl<'a> Trainer<'a> {
    /// A fresh trainer for `fold`: `processing` built as `config.mode` says, the task model, Adam.
    pub(super) fn build(
        context: &'a JobContext,
        processing: &PipelineSpec,
        config: &'a TrainConfig,
        fold: usize,
        split: &Split,
    ) -> Result<Self> {
        let specs = match config.mode {
            ProcessingMode::None => {
                let mut pack = toml::Table::new();
                pack.insert("cfa_from_metadata".into(), toml::Value::Boolean(true));
                vec![StageSpec {
                    name: "pack".into(),
                    kind: "pack".into(),
                    plugin: None,
                    config: pack,
                }]
            }
            // the mode's needs are checked before training (`check_config`)
            _ => processing.stages.clone(),
        };
        let processing = Pipeline::build(context.registry, &specs, context.device)?;
        let reference = match &config.reference_pipeline {
            Some(path) => {
                let reference = context.loaded.load_pipeline(path)?;
                Some(Pipeline::build(context.registry, &reference.stages, context.device)?)
            }
            None => None,
        };
        let model = context.build_model_seeded("config key `task_model`", split.seed.wrapping_sub(config.seed))?;
        let trains_processor = matches!(
            config.mode,
            ProcessingMode::Parametrized | ProcessingMode::NeuralNetwork
        ) && !config.freeze_processor;
        let mut groups = Vec::new();
        if !config.freeze_task_model {
            let parameters: Vec<Tensor> = model
                .parameters()?
                .into_iter()
                .filter(|p| p.trainable)
                .map(|p| p.tensor)
                .collect();
            groups.push(ParameterGroup {
                parameters,
                lr: config.lr,
            });
        }
        if trains_processor {
            let parameters: Vec<Tensor> = processing
                .parameters()?
                .into_iter()
                .filter(|p| p.trainable)
                .map(|p| p.tensor)
                .collect();
            if parameters.is_empty() {
                bail!(
                    "config key `job.mode`: `{:?}` processing, but no stage of the pipeline has a learnable parameter",
                    config.mode
                );
            }
            groups.push(ParameterGroup {
                parameters,
                lr: config.processor_lr.unwrap_or(config.lr),
            });
        }
        if groups.iter().all(|g| g.parameters.is_empty()) {
            bail!("nothing to train: no learnable parameter in the task model or the processing");
        }
        let optimizer = Adam::new(groups, config.weight_decay)?;
        let bounded = if trains_processor {
            processing
                .parameters()?
                .into_iter()
                .filter(|p| p.trainable && p.bounds.is_some())
                .collect()
        } else {
            Vec::new()
        };
        let frozen = (!trains_processor && config.cache_processing).then(|| (&context.processed, pipeline_key(&specs)));
        Ok(Self {
            config,
            task: context.task.clone(),
            device: context.device,
            fold,
            processing,
            reference,
            model,
            optimizer,
            trains_processor,
            frozen,
            bounded,
            validation_outcomes: Vec::new(),
            validation_summary: PredictionSummary::default(),
        })
    }

    pub(super) fn state(&self) -> Result<Vec<(String, Tensor)>> {
        let mut state: Vec<(String, Tensor)> = Vec::new();
        state.extend(
            self.processing
                .state()?
                .into_iter()
                .map(|(n, t)| (format!("processor.{n}"), t)),
        );
        state.extend(
            self.model
                .state()?
                .into_iter()
                .map(|(n, t)| (format!("task_model.{n}"), t)),
        );
        state.extend(
            self.optimizer
                .state()?
                .into_iter()
                .map(|(n, t)| (format!("optimizer.{n}"), t)),
        );
        Ok(state)
    }

    pub(super) fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        self.processing.load_state(&checkpoint::section(state, "processor"))?;
        self.model
            .load_state(checkpoint::section(state, "task_model"))
            .context("restoring the task model")?;
        self.optimizer.load_state(&checkpoint::section(state, "optimizer"))
    }

    fn set_train(&mut self, train: bool) -> Result<()> {
        self.processing.set_train(train && self.trains_processor)?;
        self.model.set_train(train && !self.config.freeze_task_model)
    }

    /// The processing of a batch: without gradient when it does not train.
    fn process(&mut self, raw: &Tensor, cameras: &[l2l_plugin_api::RawMetadata], indices: &[usize]) -> Result<Tensor> {
        match self.frozen() {
            Some(frozen) => frozen.forward(&mut self.processing, raw, cameras, indices, self.device),
            None => {
                self.processing.set_camera(cameras)?;
                self.processing.forward(raw)
            }
        }
    }

    /// The cache entry of a processing that does not train.
    fn frozen(&self) -> Option<Frozen<'a>> {
        self.frozen.map(|(cache, key)| Frozen { cache, key })
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
    pub(super) fn epoch(
        &mut self,
        dataset: &Arc<RemoteDataset>,
        split: &Split,
        epoch: usize,
        run_dir: &Path,
    ) -> Result<Vec<MetricsRow>> {
        let started = Instant::now();
        let workers = self.config.workers.unwrap_or_else(|| LoaderOptions::default().workers);
        // the replicate's training seed and fold (the job's seed and the fold index for the first seed)
        let seed = split.seed ^ (split.fold as u64) << 32 ^ epoch as u64;
        let options = LoaderOptions {
            batch_size: self.config.batch_size,
            workers,
            shuffle_seed: Some(seed),
            ..Default::default()
        };
        let loader = Loader::new(dataset.clone(), split.train.clone(), &options)?;
        let bar = crate::console::progress_bar(loader.len() as u64).with_style(
            ProgressStyle::with_template(
                "{spinner} fold {msg} [{bar:30}] {pos}/{len} batches {elapsed_precise} eta {eta}",
            )?
            .progress_chars("=> "),
        );
        bar.set_message(format!("{} epoch {epoch}/{}", self.fold, self.config.epochs));
        self.optimizer
            .set_lr_factor(self.config.lr_schedule.factor(epoch, self.config.epochs));
        self.set_train(true)?;
        let mut accumulator = Accumulator::new(&self.task);
        for (index, batch) in loader.enumerate() {
            let batch = batch?;
            let raw = batch.raw.f_to_device(self.device)?;
            let processed = self.process(&raw, &batch.cameras, &batch.indices)?;
            let target = self.targets(&batch)?;
            let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ index as u64);
            let masks = matches!(self.task, Task::Segmentation)
                .then(|| metrics::mask_like(&target, &processed))
                .transpose()?;
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
            for parameter in &self.bounded {
                parameter.project()?;
            }
            accumulator.add(&logits.f_detach()?, &target, loss.f_double_value(&[])?)?;
            bar.inc(1);
        }
        bar.finish_and_clear();
        let train_seconds = started.elapsed().as_secs_f64();
        let trained_at = tracking::now_millis();
        let started = Instant::now();
        let validation = self.validate(dataset, &split.validation, workers)?;
        let rows = vec![
            MetricsRow {
                fold: self.fold,
                epoch,
                split: "train".into(),
                seconds: train_seconds,
                values: accumulator.finish(),
                time_ms: trained_at,
            },
            MetricsRow {
                fold: self.fold,
                epoch,
                split: "validation".into(),
                seconds: started.elapsed().as_secs_f64(),
                values: validation.finish(),
                time_ms: tracking::now_millis(),
            },
        ];
        tracing::info!(
            "fold {} epoch {epoch}: train {:?}, validation {:?}",
            self.fold,
            rows[0]
                .values
                .iter()
                .filter(|(k, _)| ["loss", "accuracy", "iou"].contains(&k.as_str()))
                .collect::<Vec<_>>(),
            rows[1]
                .values
                .iter()
                .filter(|(k, _)| ["loss", "accuracy", "iou"].contains(&k.as_str()))
                .collect::<Vec<_>>()
        );
        if let Task::Classification { .. } = self.task {
            let path = run_dir.join(format!("confusion_fold{}.json", self.fold));
            crate::imageio::write_atomically(&path, |out| Ok(serde_json::to_writer(out, &validation.confusion)?))?;
        }
        // the latest epoch's per-sample validation outcomes, for the experiments' bootstrap intervals
        let path = run_dir.join(validation_outcomes_file(self.fold));
        crate::imageio::write_atomically(&path, |out| Ok(serde_json::to_writer(out, &validation.outcomes)?))?;
        self.validation_outcomes.clone_from(&validation.outcomes);
        self.validation_summary = validation.summary();
        let tracked: Vec<usize> = split
            .validation
            .iter()
            .copied()
            .take(self.config.tracked_samples)
            .collect();
        if !tracked.is_empty() {
            let dir = run_dir
                .join("tracked")
                .join(format!("fold{}", self.fold))
                .join(format!("epoch{epoch:03}"));
            self.draw_tracked(dataset, &tracked, &dir)?;
        }
        Ok(rows)
    }

    /// The processing and model, in evaluation mode, on the samples `indices`.
    pub(super) fn validate(
        &mut self,
        dataset: &Arc<RemoteDataset>,
        indices: &[usize],
        workers: usize,
    ) -> Result<Accumulator> {
        self.set_train(false)?;
        let options = LoaderOptions {
            batch_size: self.config.batch_size,
            workers,
            ..Default::default()
        };
        let frozen = self.frozen();
        evaluate(
            &mut self.processing,
            frozen,
            &mut self.model,
            dataset,
            indices,
            &self.task,
            &options,
            self.device,
            None,
        )
    }

    /// The finished model on the split's held-out test part, its per-sample outcomes written beside
    /// the validation ones (`test_outcomes_fold{N}.json`).
    pub(super) fn test(&mut self, dataset: &Arc<RemoteDataset>, split: &Split, run_dir: &Path) -> Result<Accumulator> {
        let workers = self.config.workers.unwrap_or_else(|| LoaderOptions::default().workers);
        let pass = self.validate(dataset, &split.test, workers)?;
        let path = run_dir.join(format!("test_outcomes_fold{}.json", self.fold));
        crate::imageio::write_atomically(&path, |out| Ok(serde_json::to_writer(out, &pass.outcomes)?))?;
        Ok(pass)
    }

    /// Grids for the tracked samples: every stage's output, the task loss's gradient at every stage,
    /// the predictions, and (with a reference pipeline) the difference to the reference processing.
    fn draw_tracked(&mut self, dataset: &Arc<RemoteDataset>, indices: &[usize], dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        self.set_train(false)?;
        let options = LoaderOptions {
            batch_size: indices.len(),
            workers: 1,
            prefetch: 1,
            ..Default::default()
        };
        let batch = Loader::new(dataset.clone(), indices.to_vec(), &options)?
            .next()
            .ok_or_else(|| anyhow!("no tracked samples"))??;
        let raw = batch.raw.f_to_device(self.device)?.f_set_requires_grad(true)?;
        let target = self.targets(&batch)?;
        self.processing.set_camera(&batch.cameras)?;
        let outputs = self.processing.forward_traced(&raw, |_| {})?;
        let processed = outputs
            .last()
            .map(|o| o.output.shallow_clone())
            .unwrap_or(raw.shallow_clone());
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
        let stage_titles: Vec<String> = std::iter::once("raw".to_string())
            .chain(outputs.iter().map(|o| o.name.clone()))
            .collect();
        tracking::write_grid(
            &dir.join("stages.png"),
            &stage_titles,
            &rows(&stage_outputs, &raw.f_detach()?)?,
            false,
        )?;
        tracking::write_grid(
            &dir.join("gradients.png"),
            &stage_titles,
            &rows(&gradients, &raw.f_detach()?)?,
            true,
        )?;
        let mut predictions = Vec::new();
        let mut labels = Vec::new();
        for i in 0..indices.len() as i64 {
            let image = processed.f_get(i)?.f_detach()?;
            match &self.task {
                Task::Segmentation => {
                    let truth = metrics::mask_like(&target, &logits)?
                        .f_get(i)?
                        .f_unsqueeze(0)?
                        .f_to_kind(Kind::Float)?;
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
        let prediction_titles: Vec<String> = match &self.task {
            Task::Segmentation => vec!["processed".into(), "true mask".into(), "predicted".into()],
            Task::Classification { .. } => vec!["processed (labels: predictions.json)".into()],
        };
        tracking::write_grid(&dir.join("predictions.png"), &prediction_titles, &predictions, false)?;
        if !labels.is_empty() {
            crate::imageio::write_atomically(&dir.join("predictions.json"), |out| {
                Ok(serde_json::to_writer_pretty(out, &labels)?)
            })?;
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
                    let theirs_resized = theirs
                        .f_unsqueeze(0)?
                        .f_upsample_bilinear2d([size[1], size[2]], false, None, None)?
                        .f_squeeze_dim(0)?;
                    let difference = if theirs_resized.size() == ours.size() {
                        ours.f_sub(&theirs_resized)?.f_abs()?
                    } else {
                        ours.f_zeros_like()?
                    };
                    Ok(vec![ours, theirs, difference])
                })
                .collect::<Result<Vec<_>>>()?;
            let titles = ["this processing", "reference", "|difference|"].map(String::from);
            tracking::write_grid(&dir.join("reference_difference.png"), &titles, &grid, false)?;
        }
        Ok(())
    }
}

/// The file in a run directory that holds fold `fold`'s latest per-sample validation outcomes
/// ([`metrics::Outcome`], in the fold's validation order).
pub fn validation_outcomes_file(fold: usize) -> String {
    format!("validation_outcomes_fold{fold}.json")
}
