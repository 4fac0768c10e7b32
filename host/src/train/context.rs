//! What every training of a job shares, built once per job: the plugins, the device, the opened
//! dataset and the task it poses, and the task model's spec. A drift synthesis over twelve pipelines
//! trains twelve times on one context, so its dataset is opened (and, with `verify`, decoded) once.

use super::checkpoint;
use super::config::TrainConfig;
use super::metrics::Task;
use super::processed::ProcessedCache;
use crate::config::{ComponentSpec, LoadedConfig};
use crate::data::datasets;
use crate::data::{self, Split};
use crate::plugins::{Registry, RemoteDataset, RemoteModule};
use anyhow::{anyhow, Result};
use l2l_plugin_api::ComponentKind;
use std::path::Path;
use std::sync::Arc;
use tch::Device;
use tch::Tensor;

/// A job's shared pieces; see the module docs.
pub struct JobContext<'a> {
    /// The config the job was started from (for paths relative to it and for records).
    pub loaded: &'a LoadedConfig,
    /// The plugins.
    pub registry: &'a Registry,
    /// Where tensors live.
    pub device: Device,
    /// The dataset, opened once.
    pub dataset: Arc<RemoteDataset>,
    /// Classification (with its class names) or segmentation.
    pub task: Task,
    /// The `[task_model]` table.
    pub model: ComponentSpec,
    /// Frozen pipelines' processed images, shared by every training and evaluation of the job.
    pub processed: ProcessedCache,
}

impl<'a> JobContext<'a> {
    /// Opens the config's dataset and checks that it has a task model; `job` names the job kind in
    /// the error when `[task_model]` is missing.
    pub fn new(loaded: &'a LoadedConfig, registry: &'a Registry, job: &str) -> Result<JobContext<'a>> {
        let device = loaded.device()?;
        let model = loaded.task_model_spec()?.ok_or_else(|| {
            anyhow!(
                "config {}: a {job} job needs a [task_model] table (e.g. kind = \"resnet\")",
                loaded.path.display()
            )
        })?;
        let dataset = Arc::new(datasets::open(registry, &datasets::spec(loaded)?, &[])?);
        let task = match dataset.class_names() {
            Some(names) => Task::Classification {
                class_names: names.to_vec(),
            },
            None => Task::Segmentation,
        };
        Ok(JobContext {
            loaded,
            registry,
            device,
            dataset,
            task,
            model,
            processed: ProcessedCache::default(),
        })
    }

    /// The replicates a training with `config` runs (every fold once per training seed; stratified
    /// for classification, plain for segmentation), with the test part where `test_fraction` asks.
    pub fn splits(&self, config: &TrainConfig) -> Result<Vec<Split>> {
        if config.n_splits > self.dataset.len() {
            anyhow::bail!(
                "config key `job.n_splits`: {} folds of a data set of {} samples; expected at most one fold per sample",
                config.n_splits,
                self.dataset.len()
            );
        }
        let labels = self.dataset.labels()?;
        data::splits::plan_splits(self.dataset.len(), labels.as_deref(), &config.split_plan())
    }

    /// The task's main metric: accuracy, or IoU for segmentation.
    pub fn metric(&self) -> &'static str {
        match self.task {
            Task::Segmentation => "iou",
            Task::Classification { .. } => "accuracy",
        }
    }

    /// The task model, freshly built for the task's outputs and moved to the device.
    pub fn build_model(&self, label: &str) -> Result<RemoteModule> {
        self.build_model_seeded(label, 0)
    }

    /// The task model for a replicate whose training seed is `offset` past the job's first: a model
    /// that declares a `seed` key initialises from its configured seed plus `offset` (any other is
    /// built after seeding libtorch's generator, which it shares with the host, with `offset`).
    /// Offset 0 is the configured model, as it always was.
    pub fn build_model_seeded(&self, label: &str, offset: u64) -> Result<RemoteModule> {
        let mut config = self.model.config.clone();
        if offset != 0 {
            let (_, info) =
                self.registry
                    .find(ComponentKind::TaskModel, &self.model.kind, self.model.plugin.as_deref())?;
            match info.config_keys.iter().find(|key| key.name.as_str() == "seed") {
                Some(key) => {
                    let configured = match config.get("seed") {
                        Some(value) => value.as_integer(),
                        None => key.default.parse::<i64>().ok(),
                    }
                    .unwrap_or(0);
                    config.insert(
                        "seed".into(),
                        toml::Value::Integer(configured.wrapping_add(offset as i64)),
                    );
                }
                None => tch::manual_seed(offset as i64),
            }
        }
        let mut model = self.registry.build_task_model(
            &self.model.kind,
            self.model.plugin.as_deref(),
            &config,
            self.task.outputs(),
            label,
        )?;
        model.to(self.device, tch::Kind::Float)?;
        Ok(model)
    }

    /// The task model a training run directory holds for `fold` (its checkpoint), in evaluation mode:
    /// for a run trained by another process (`predict`, `serve --checkpoint`).
    pub fn trained_model(&self, run: &Path, fold: usize) -> Result<RemoteModule> {
        let state = checkpoint::load(&run.join("checkpoints").join(format!("fold{fold}.safetensors")))?;
        self.model_with_state(&checkpoint::section(&state, "task_model"))
    }

    /// The task model with `state` (a training's `task_model` tensors), in evaluation mode.
    pub fn model_with_state(&self, state: &[(String, Tensor)]) -> Result<RemoteModule> {
        let mut model = self.build_model("task model")?;
        let state = state
            .iter()
            .map(|(name, tensor)| (name.clone(), tensor.shallow_clone()))
            .collect();
        model.load_state(state)?;
        model.set_train(false)?;
        Ok(model)
    }
}
