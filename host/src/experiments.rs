//! The experiments users come for, each a `[job]` kind of `l2l-host run`:
//!
//! - **drift synthesis** (`drift_synthesis`): train behind each of several pipelines, test every trained
//!   model behind every pipeline; the matrix of the metric (mean ± std over folds) and the drop matrix
//!   (diagonal minus entry) show how much a change of processing costs the model.
//!
//! - **drift forensics** (`forensics`): a model trained behind a parametrized pipeline at its defaults is
//!   frozen; the pipeline's parameters (all, or one stage's) are searched for values that raise the
//!   task loss while the output stays close to the default output: −task_loss + w · (1 − SSIM).
//!
//! - **drift optimisation** (`optimisation`): the same task model trained with each processing mode
//!   (parametrized, static, neural_network, none); validation curves, mean ± std over folds.
//!
//! Results go to a new experiment directory: `results.json`, PNG plots and `report.md`.

use crate::config::{
    self, Distance, DriftSynthesisConfig, ExperimentSuiteConfig, ForensicsConfig, LoadedConfig, OptimisationConfig, ProcessingMode,
};
use crate::data::{Loader, LoaderOptions};
use crate::datasets;
use crate::pipeline::Pipeline;
use crate::plugins::{Registry, RemoteModule};
use crate::tracking;
use crate::train::metrics::Task;
use crate::train::{self, checkpoint};
use anyhow::{anyhow, bail, Context, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tch::Tensor;

/// A matrix of a metric over folds: rows = training pipeline, columns = test pipeline.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DriftMatrix {
    /// Row and column names (pipeline file stems).
    pub train: Vec<String>,
    /// Column names.
    pub test: Vec<String>,
    /// The metric.
    pub metric: String,
    /// Mean over folds.
    pub mean: Vec<Vec<f64>>,
    /// Standard deviation over folds (0 with one fold).
    pub std: Vec<Vec<f64>>,
}

impl DriftMatrix {
    /// Drop of row i's model when tested behind column j instead of its own pipeline: mean[i][i] −
    /// mean[i][j] (only where the test pipeline of the diagonal exists).
    pub fn drops(&self) -> Vec<Vec<Option<f64>>> {
        self.mean
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let own = self.test.iter().position(|t| *t == self.train[i]).map(|j| row[j]);
                row.iter().map(|v| own.map(|own| own - v)).collect()
            })
            .collect()
    }

    /// The mean of the off-diagonal drops.
    pub fn mean_drop(&self) -> Option<f64> {
        let drops: Vec<f64> = self
            .drops()
            .iter()
            .enumerate()
            .flat_map(|(i, row)| {
                let own = self.train[i].clone();
                row.iter().zip(&self.test).filter(move |(_, t)| **t != own).filter_map(|(d, _)| *d).collect::<Vec<_>>()
            })
            .collect();
        (!drops.is_empty()).then(|| drops.iter().sum::<f64>() / drops.len() as f64)
    }
}

fn stem(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The config with its processing replaced by the pipeline config at `pipeline` and its job by a
/// `train` job (what each training of the experiment runs).
fn with_pipeline(loaded: &LoadedConfig, pipeline: &Path, train: &config::TrainConfig) -> Result<LoadedConfig> {
    let processing = config::read_with_includes(pipeline, 0)?;
    with_processing(loaded, &processing, train).with_context(|| format!("pipeline {}", pipeline.display()))
}

/// The config with `pipeline` and `stages` taken from `processing` (none when it has none) and its job
/// replaced by a `train` job.
fn with_processing(loaded: &LoadedConfig, processing: &toml::Table, train: &config::TrainConfig) -> Result<LoadedConfig> {
    let mut table = loaded.resolved.clone();
    table.remove("pipeline");
    table.remove("stages");
    for key in ["pipeline", "stages"] {
        if let Some(value) = processing.get(key) {
            table.insert(key.to_string(), value.clone());
        }
    }
    let mut job = toml::Table::try_from(train)?;
    job.insert("kind".into(), toml::Value::String("train".into()));
    table.insert("job".into(), toml::Value::Table(job));
    Ok(LoadedConfig {
        path: loaded.path.clone(),
        config: config::from_table(&table)?,
        resolved: table,
    })
}

/// One mode's validation metric per epoch: mean and standard deviation over folds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModeCurve {
    /// The processing mode.
    pub mode: ProcessingMode,
    /// The metric per epoch (index 0 = epoch 1), mean over folds.
    pub mean: Vec<f64>,
    /// Standard deviation over folds.
    pub std: Vec<f64>,
    /// The training run.
    pub run: PathBuf,
}

/// Runs a drift-optimisation experiment: one training per processing mode, the same data, folds and
/// task model; returns the experiment directory.
pub fn optimisation(loaded: &LoadedConfig, registry: &Registry, job: &OptimisationConfig) -> Result<PathBuf> {
    if job.modes.is_empty() {
        bail!("config key `job.modes`: list at least one processing mode");
    }
    let dir = tracking::create_run_dir(&job.output_dir, &job.name)?;
    let dataset = datasets::open(registry, &datasets::spec(loaded)?, &[])?;
    let metric = match train::task_of(&dataset) {
        Task::Segmentation => "iou",
        Task::Classification { .. } => "accuracy",
    };
    let mut curves = Vec::new();
    for &mode in &job.modes {
        let name = mode.name().to_string();
        let train_config = config::TrainConfig { mode, output_dir: dir.join("training"), name: name.clone(), ..job.train.clone() };
        let processing = match mode {
            ProcessingMode::Static => config::read_with_includes(&loaded.resolve(&job.static_pipeline), 0)?,
            ProcessingMode::Parametrized => config::read_with_includes(&loaded.resolve(&job.parametrized_pipeline), 0)?,
            ProcessingMode::NeuralNetwork => {
                let mut stage = job.neural_processor.clone().unwrap_or_default();
                stage.insert("kind".into(), toml::Value::String("processor_nn".into()));
                stage.entry("cfa_from_metadata").or_insert(toml::Value::Boolean(true));
                let mut table = toml::Table::new();
                table.insert("pipeline".into(), toml::Value::Array(vec![toml::Value::String("processor".into())]));
                let mut stages = toml::Table::new();
                stages.insert("processor".into(), toml::Value::Table(stage));
                table.insert("stages".into(), toml::Value::Table(stages));
                table
            }
            ProcessingMode::None => toml::Table::new(),
        };
        let variant = with_processing(loaded, &processing, &train_config).with_context(|| format!("mode {name}"))?;
        tracing::info!("optimisation: training with processing mode {name}");
        let run = train::train(&variant, registry, &train_config, None)?;
        let rows: Vec<tracking::MetricsRow> = std::fs::read_to_string(run.join("metrics.jsonl"))?
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()?;
        let (mut mean, mut std) = (Vec::new(), Vec::new());
        for epoch in 1..=train_config.epochs {
            let values: Vec<f64> = rows
                .iter()
                .filter(|r| r.split == "validation" && r.epoch == epoch)
                .filter_map(|r| r.values.get(metric).copied())
                .collect();
            let (m, s) = mean_and_std(&values);
            mean.push(m);
            std.push(s);
        }
        curves.push(ModeCurve { mode, mean, std, run });
    }
    write_optimisation_report(&dir, metric, &curves)?;
    Ok(dir)
}

/// `results.json`, `learning_curves.png` and `report.md`.
fn write_optimisation_report(dir: &Path, metric: &str, curves: &[ModeCurve]) -> Result<()> {
    let json = serde_json::json!({ "metric": metric, "curves": curves });
    crate::imageio::write_atomically(&dir.join("results.json"), |out| Ok(serde_json::to_writer_pretty(out, &json)?))?;
    let series: Vec<(String, Vec<f64>, Vec<f64>)> = curves.iter().map(|c| (c.mode.name().to_string(), c.mean.clone(), c.std.clone())).collect();
    tracking::plot_mean_curves(&dir.join("learning_curves.png"), &format!("validation {metric} per epoch (mean ± std over folds)"), &series)?;
    let mut md = String::from("# Drift optimisation\n\nThe same task model trained with each processing mode; validation metric per epoch, mean ± std over folds.\n\n![learning curves](learning_curves.png)\n\n");
    let _ = writeln!(md, "| mode | final {metric} | best {metric} | run |");
    let _ = writeln!(md, "|---|---|---|---|");
    for c in curves {
        let last = c.mean.len().saturating_sub(1);
        let best = c.mean.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let _ = writeln!(md, "| {} | {:.3} ± {:.3} | {best:.3} | {} |", c.mode.name(), c.mean[last], c.std[last], c.run.display());
    }
    crate::imageio::write_atomically(&dir.join("report.md"), |out| Ok(out.write_all(md.as_bytes())?))
}

/// Runs a drift-synthesis experiment; returns its directory.
pub fn drift_synthesis(loaded: &LoadedConfig, registry: &Registry, job: &DriftSynthesisConfig) -> Result<PathBuf> {
    if job.pipelines.is_empty() {
        bail!("config key `job.pipelines`: list at least one pipeline config to train behind");
    }
    let dir = tracking::create_run_dir(&job.output_dir, &job.name)?;
    let training: Vec<PathBuf> = job.pipelines.iter().map(|p| loaded.resolve(p)).collect();
    let testing: Vec<PathBuf> = if job.test_pipelines.is_empty() {
        training.clone()
    } else {
        job.test_pipelines.iter().map(|p| loaded.resolve(p)).collect()
    };
    let train_config = config::TrainConfig {
        mode: ProcessingMode::Static,
        output_dir: dir.join("training"),
        ..job.train.clone()
    };
    let device = loaded.device()?;
    let dataset = Arc::new(datasets::open(registry, &datasets::spec(loaded)?, &[])?);
    let task = train::task_of(&dataset);
    let metric = job.metric.clone().unwrap_or_else(|| match task {
        Task::Segmentation => "iou".into(),
        Task::Classification { .. } => "accuracy".into(),
    });
    let splits = train::splits_of(&dataset, &train_config)?;
    let model_spec = loaded
        .task_model_spec()?
        .ok_or_else(|| anyhow!("config {}: drift synthesis needs a [task_model] table", loaded.path.display()))?;
    let mut tests: Vec<Pipeline> = Vec::new();
    for path in &testing {
        let specs = config::load(path, &[])?.stage_specs()?;
        let mut pipeline = Pipeline::build(registry, &specs, device).with_context(|| format!("test pipeline {}", path.display()))?;
        pipeline.set_train(false)?;
        tests.push(pipeline);
    }
    // per training pipeline, per test pipeline, the metric of every fold
    let mut values = vec![vec![Vec::new(); testing.len()]; training.len()];
    // per corruption, the drops (own pipeline, clean − corrupted) over pipelines, folds and severities
    let corruptions = job.corruptions.clone();
    let mut corruption_drops: Vec<Vec<f64>> = vec![Vec::new(); corruptions.as_ref().map_or(0, |c| c.types.len())];
    for (i, path) in training.iter().enumerate() {
        let named = config::TrainConfig { name: stem(path), ..train_config.clone() };
        let variant = with_pipeline(loaded, path, &named)?;
        tracing::info!("drift synthesis: training behind {}", stem(path));
        let run = train::train(&variant, registry, &named, None)?;
        for (fold, split) in splits.iter().enumerate().filter(|(fold, _)| train_config.trains_fold(*fold)) {
            let mut model = trained_model(registry, &model_spec, &task, &run, fold, device)?;
            let options = LoaderOptions { batch_size: train_config.batch_size, ..Default::default() };
            for (j, test) in tests.iter_mut().enumerate() {
                let result = train::evaluate(test, &mut model, &dataset, &split.validation, &task, &options, device, None)?;
                let value = *result
                    .finish()
                    .get(&metric)
                    .ok_or_else(|| anyhow!("config key `job.metric`: the task has no metric `{metric}`"))?;
                values[i][j].push(value);
            }
            if let Some(baseline) = &corruptions {
                let own = testing.iter().position(|t| t == path).ok_or_else(|| {
                    anyhow!("config key `job.corruptions`: the baseline tests each model behind its own pipeline; list {} in `test_pipelines`", path.display())
                })?;
                let clean = *values[i][own].last().unwrap_or(&0.0);
                for (k, &corruption) in baseline.types.iter().enumerate() {
                    for &severity in &baseline.severities {
                        tch::manual_seed((job.train.seed as i64) ^ ((k as i64) << 8) ^ severity as i64);
                        let transform = |x: &Tensor| -> Result<Tensor> { crate::corruptions::corrupt(x, corruption, severity, baseline.table) };
                        let result = train::evaluate(&mut tests[own], &mut model, &dataset, &split.validation, &task, &options, device, Some(&transform))?;
                        corruption_drops[k].push(clean - result.finish()[&metric]);
                    }
                }
            }
        }
    }
    let matrix = matrix_from_values(
        training.iter().map(|p| stem(p)).collect(),
        testing.iter().map(|p| stem(p)).collect(),
        metric,
        &values,
    );
    let corruption_summary: Vec<(String, f64)> = corruptions
        .map(|c| {
            c.types
                .iter()
                .zip(&corruption_drops)
                .map(|(t, d)| (serde_json::to_value(t).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default(), d.iter().sum::<f64>() / d.len().max(1) as f64))
                .collect()
        })
        .unwrap_or_default();
    let folds: Vec<usize> = (0..splits.len()).filter(|f| train_config.trains_fold(*f)).collect();
    write_drift_report(&dir, &matrix, &corruption_summary, &DriftRaw { folds, values, augmentation: train_config.augmentation })?;
    Ok(dir)
}

/// Runs the suite's experiments one after another into one run directory, with a `report.md` that
/// gathers theirs; returns the run directory.
pub fn suite(loaded: &LoadedConfig, registry: &Registry, suite: &ExperimentSuiteConfig) -> Result<PathBuf> {
    let dir = tracking::create_run_dir(&suite.output_dir, &suite.name)?;
    let started = std::time::Instant::now();
    let mut parts: Vec<(&str, PathBuf)> = Vec::new();
    if let Some(job) = &suite.drift_synthesis {
        let job = DriftSynthesisConfig { output_dir: dir.clone(), name: "drift-synthesis".into(), ..job.clone() };
        parts.push(("drift-synthesis", drift_synthesis(loaded, registry, &job)?));
    }
    if let Some(job) = &suite.forensics {
        let job = ForensicsConfig { output_dir: dir.clone(), name: "forensics".into(), ..job.clone() };
        parts.push(("forensics", forensics(loaded, registry, &job)?));
    }
    if let Some(job) = &suite.optimisation {
        let job = OptimisationConfig { output_dir: dir.clone(), name: "optimisation".into(), ..job.clone() };
        parts.push(("optimisation", optimisation(loaded, registry, &job)?));
    }
    if parts.is_empty() {
        bail!("config key `job`: an experiments job needs at least one of [job.drift_synthesis], [job.forensics], [job.optimisation]");
    }
    let mut md = format!(
        "# l2l experiments\n\nRun `{}`, {:.0} s. Each section is the report of one experiment (its folder holds the data).\n",
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    for (_, part) in &parts {
        let folder = part.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        let text = std::fs::read_to_string(part.join("report.md"))?;
        md += "\n";
        for line in text.lines() {
            // one level deeper, and images found in the experiment's folder
            let line = if line.starts_with('#') { format!("#{line}") } else { line.replace("](", &format!("]({folder}/")) };
            md += &line;
            md += "\n";
        }
    }
    crate::imageio::write_atomically(&dir.join("report.md"), |out| Ok(out.write_all(md.as_bytes())?))?;
    Ok(dir)
}

/// The task model a training run left for `fold`, in evaluation mode on `device`.
fn trained_model(
    registry: &Registry,
    spec: &config::ComponentSpec,
    task: &Task,
    run: &Path,
    fold: usize,
    device: tch::Device,
) -> Result<RemoteModule> {
    let state = checkpoint::load(&run.join("checkpoints").join(format!("fold{fold}.safetensors")))?;
    let classes = match task {
        Task::Classification { class_names } => class_names.len(),
        Task::Segmentation => 1,
    };
    let mut model = registry.build_task_model(&spec.kind, spec.plugin.as_deref(), &spec.config_text, classes, "task model")?;
    model.to(device, tch::Kind::Float)?;
    model.load_state(checkpoint::section(&state, "task_model"))?;
    model.set_train(false)?;
    Ok(model)
}

/// What one forensics search found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ForensicsResult {
    /// The attacked group (`all` or a stage name).
    pub group: String,
    /// The metric behind the default processing.
    pub default_metric: f64,
    /// The metric behind the adversarial processing.
    pub adversarial_metric: f64,
    /// SSIM of the adversarial output to the default output.
    pub ssim: f64,
    /// The attacked parameters' values before and after.
    pub parameters: Vec<(String, Vec<f64>, Vec<f64>)>,
    /// Every tensor of the processing (parameters and buffers) whose value the search changed.
    pub changed: Vec<String>,
}

/// Runs a drift-forensics experiment: trains a model behind the pipeline at its defaults, then for every
/// group searches the group's parameters (Adam) for values that raise the frozen model's task loss while
/// the output stays close to the default output; returns the experiment directory.
pub fn forensics(loaded: &LoadedConfig, registry: &Registry, job: &ForensicsConfig) -> Result<PathBuf> {
    let dir = tracking::create_run_dir(&job.output_dir, &job.name)?;
    let pipeline_path = loaded.resolve(&job.pipeline);
    let train_config = config::TrainConfig {
        mode: ProcessingMode::Static,
        output_dir: dir.join("training"),
        n_splits: 1,
        ..job.train.clone()
    };
    let variant = with_pipeline(loaded, &pipeline_path, &train_config)?;
    let run = train::train(&variant, registry, &train_config, None)?;
    let device = loaded.device()?;
    let dataset = Arc::new(datasets::open(registry, &datasets::spec(loaded)?, &[])?);
    let task = train::task_of(&dataset);
    let metric = match task {
        Task::Segmentation => "iou",
        Task::Classification { .. } => "accuracy",
    };
    let split = &train::splits_of(&dataset, &train_config)?[0];
    let indices: Vec<usize> = split.validation.iter().copied().take(job.samples.max(1)).collect();
    let model_spec = loaded.task_model_spec()?.ok_or_else(|| anyhow!("forensics needs a [task_model] table"))?;
    let mut model = trained_model(registry, &model_spec, &task, &run, 0, device)?;
    let specs = variant.stage_specs()?;
    let options = LoaderOptions { batch_size: indices.len(), workers: 1, prefetch: 1, ..Default::default() };
    let batch = Loader::new(dataset.clone(), indices.clone(), &options)?
        .next()
        .ok_or_else(|| anyhow!("no samples to attack"))??;
    let raw = batch.raw.f_to_device(device)?;
    let target = batch.target.f_to_device(device)?;
    let evaluate = |pipeline: &mut Pipeline, model: &mut RemoteModule| -> Result<(f64, Tensor)> {
        tch::no_grad(|| -> Result<(f64, Tensor)> {
            pipeline.set_camera(&batch.cameras)?;
            let output = pipeline.forward(&raw)?;
            let logits = model.forward(&output)?;
            let mut accumulator = train::metrics::Accumulator::new(&task);
            accumulator.add(&logits, &target, 0.0)?;
            Ok((accumulator.finish()[metric], output))
        })
    };
    let mut default = Pipeline::build(registry, &specs, device)?;
    default.set_train(false)?;
    let (default_metric, default_output) = evaluate(&mut default, &mut model)?;
    // the default output's range, so that SSIM compares images in [0, 1] whatever the pipeline ends with
    let (low, high) = (default_output.f_min()?, default_output.f_max()?);
    let span = high.f_sub(&low)?.f_clamp_min(1e-12)?;
    let unit = |t: &Tensor| -> Result<Tensor> { Ok(t.f_sub(&low)?.f_div(&span)?) };
    let reference = unit(&default_output)?;

    let gradients = stage_gradients(&mut default, &mut model, &raw, &target, &task, &batch.cameras)?;
    let mut results = Vec::new();
    for group in &job.groups {
        let mut pipeline = Pipeline::build(registry, &specs, device)?;
        pipeline.set_train(false)?;
        pipeline.set_camera(&batch.cameras)?;
        let attacked: Vec<_> = pipeline
            .parameters()?
            .into_iter()
            .filter(|p| p.trainable && (group == "all" || p.name.starts_with(&format!("{group}."))))
            .collect();
        if attacked.is_empty() {
            bail!("config key `job.groups`: `{group}` names no learnable parameter of {} (stages: {})", pipeline_path.display(), specs.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", "));
        }
        let state_before = pipeline.state()?;
        let before: Vec<Vec<f64>> = attacked.iter().map(|p| Vec::<f64>::try_from(p.tensor.f_detach()?.f_to_kind(tch::Kind::Double)?.f_flatten(0, -1)?).map_err(Into::into)).collect::<Result<_>>()?;
        let mut adam = train::optim::Adam::new(vec![train::optim::ParameterGroup { parameters: attacked.iter().map(|p| p.tensor.shallow_clone()).collect(), lr: job.lr }], 0.0)?;
        for _ in 0..job.steps {
            let output = pipeline.forward(&raw)?;
            let logits = model.forward(&output)?;
            let task_loss = train::metrics::loss(&task, &logits, &target)?;
            let distance = match job.distance {
                Distance::Ssim => l2l_ops::ssim(&unit(&output)?, &reference)?.f_neg()?.f_add_scalar(1.0)?,
                Distance::L2 => unit(&output)?.f_sub(&reference)?.f_square()?.f_mean(tch::Kind::Float)?,
            };
            let objective = task_loss.f_neg()?.f_add(&distance.f_mul_scalar(job.similarity_weight)?)?;
            adam.zero_grad();
            objective.f_backward()?;
            adam.step()?;
        }
        let (adversarial_metric, output) = evaluate(&mut pipeline, &mut model)?;
        let ssim = tch::no_grad(|| -> Result<f64> { Ok(l2l_ops::ssim(&unit(&output)?, &reference)?.f_double_value(&[])?) })?;
        let parameters = attacked
            .iter()
            .zip(before)
            .map(|(p, before)| Ok((p.name.clone(), before, Vec::<f64>::try_from(p.tensor.f_detach()?.f_to_kind(tch::Kind::Double)?.f_flatten(0, -1)?)?)))
            .collect::<Result<Vec<_>>>()?;
        let changed = pipeline
            .state()?
            .iter()
            .zip(&state_before)
            .filter(|((_, after), (_, before))| !after.allclose(before, 0.0, 0.0, false))
            .map(|((name, _), _)| name.clone())
            .collect();
        tracing::info!("forensics `{group}`: {metric} {default_metric:.3} → {adversarial_metric:.3}, SSIM {ssim:.3}");
        results.push(ForensicsResult { group: group.clone(), default_metric, adversarial_metric, ssim, parameters, changed });
    }
    write_forensics_report(&dir, metric, &results, &gradients)?;
    Ok(dir)
}

/// Mean |∂ task loss / ∂ stage output| for every stage (where the model is most sensitive).
fn stage_gradients(
    pipeline: &mut Pipeline,
    model: &mut RemoteModule,
    raw: &Tensor,
    target: &Tensor,
    task: &Task,
    cameras: &[l2l_plugin_api::RawMetadata],
) -> Result<Vec<(String, f64)>> {
    pipeline.set_camera(cameras)?;
    let input = raw.f_detach()?.f_set_requires_grad(true)?;
    let outputs = pipeline.forward_traced(&input, |_| {})?;
    let last = outputs.last().map(|o| o.output.shallow_clone()).unwrap_or(input.shallow_clone());
    let loss = train::metrics::loss(task, &model.forward(&last)?, target)?;
    let tensors: Vec<Tensor> = outputs.iter().map(|o| o.output.shallow_clone()).collect();
    let grads = Tensor::run_backward(&[&loss], &tensors, false, false);
    outputs
        .iter()
        .zip(grads)
        .map(|(o, g)| Ok((o.name.clone(), g.f_abs()?.f_mean(tch::Kind::Double)?.f_double_value(&[])?)))
        .collect()
}

/// `results.json`, `forensics.png`, `stage_gradients.png` and `report.md`.
fn write_forensics_report(dir: &Path, metric: &str, results: &[ForensicsResult], gradients: &[(String, f64)]) -> Result<()> {
    let json = serde_json::json!({ "metric": metric, "groups": results, "stage_gradients": gradients });
    crate::imageio::write_atomically(&dir.join("results.json"), |out| Ok(serde_json::to_writer_pretty(out, &json)?))?;
    let labels: Vec<String> = results.iter().map(|r| r.group.clone()).collect();
    tracking::plot_bars(
        &dir.join("forensics.png"),
        &format!("{metric}: default vs adversarial processing, and SSIM reached"),
        &labels,
        &[
            ("default", results.iter().map(|r| r.default_metric).collect()),
            ("adversarial", results.iter().map(|r| r.adversarial_metric).collect()),
            ("SSIM", results.iter().map(|r| r.ssim).collect()),
        ],
    )?;
    tracking::plot_bars(
        &dir.join("stage_gradients.png"),
        "mean |∂ task loss / ∂ stage output|",
        &gradients.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        &[("gradient", gradients.iter().map(|(_, g)| *g).collect())],
    )?;
    let mut md = String::from("# Drift forensics\n\nThe task model is frozen; each group's parameters are searched (Adam) to raise its task loss while the processing's output stays close to the default output.\n\n![forensics](forensics.png)\n\n");
    let _ = writeln!(md, "| group | {metric} (default) | {metric} (adversarial) | drop | SSIM to default |");
    let _ = writeln!(md, "|---|---|---|---|---|");
    for r in results {
        let _ = writeln!(md, "| {} | {:.3} | {:.3} | {:.3} | {:.3} |", r.group, r.default_metric, r.adversarial_metric, r.default_metric - r.adversarial_metric, r.ssim);
    }
    let _ = writeln!(md, "\n## Adversarial parameter values\n");
    for r in results {
        for (name, before, after) in &r.parameters {
            let show = |v: &Vec<f64>| if v.len() <= 9 { format!("{:?}", v.iter().map(|x| (x * 1e4).round() / 1e4).collect::<Vec<_>>()) } else { format!("{} values", v.len()) };
            let _ = writeln!(md, "- `{}` / `{name}`: {} → {}", r.group, show(before), show(after));
        }
    }
    let _ = writeln!(md, "\n## Where the model is most sensitive\n\n![stage gradients](stage_gradients.png)\n");
    for (name, g) in gradients {
        let _ = writeln!(md, "- `{name}`: {g:.3e}");
    }
    crate::imageio::write_atomically(&dir.join("report.md"), |out| Ok(out.write_all(md.as_bytes())?))
}

/// The per-fold values behind a drift matrix, kept in `results.json` so that sweeps can merge cells.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DriftRaw {
    /// The folds trained.
    pub folds: Vec<usize>,
    /// Per training pipeline, per test pipeline, the metric of each fold (in `folds` order).
    pub values: Vec<Vec<Vec<f64>>>,
    /// The augmentation the models trained with.
    pub augmentation: config::Augmentation,
}

/// Mean and sample standard deviation (0 for fewer than two values) of values over folds.
fn mean_and_std(values: &[f64]) -> (f64, f64) {
    let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
    let var = if values.len() > 1 {
        values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (values.len() - 1) as f64
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// A drift matrix from per-fold values (mean and sample standard deviation over folds).
pub fn matrix_from_values(train: Vec<String>, test: Vec<String>, metric: String, values: &[Vec<Vec<f64>>]) -> DriftMatrix {
    DriftMatrix {
        train,
        test,
        metric,
        mean: values.iter().map(|row| row.iter().map(|v| mean_and_std(v).0).collect()).collect(),
        std: values.iter().map(|row| row.iter().map(|v| mean_and_std(v).1).collect()).collect(),
    }
}

/// `results.json`, `drift_matrix.png`, `drop_matrix.png`, `drift_vs_corruption.png` (with a corruption
/// baseline) and `report.md`.
pub fn write_drift_report(dir: &Path, matrix: &DriftMatrix, corruptions: &[(String, f64)], raw: &DriftRaw) -> Result<()> {
    let drops = matrix.drops();
    let corruption_mean = (!corruptions.is_empty()).then(|| corruptions.iter().map(|(_, d)| d).sum::<f64>() / corruptions.len() as f64);
    let results = serde_json::json!({
        "matrix": matrix, "drops": drops, "mean_drop": matrix.mean_drop(), "raw": raw,
        "corruption_drops": corruptions, "mean_corruption_drop": corruption_mean,
    });
    crate::imageio::write_atomically(&dir.join("results.json"), |out| Ok(serde_json::to_writer_pretty(out, &results)?))?;
    tracking::plot_heatmap(&dir.join("drift_matrix.png"), &format!("{} (train ↓, test →)", matrix.metric), &matrix.train, &matrix.test, &matrix.mean.iter().map(|r| r.iter().map(|v| Some(*v)).collect()).collect::<Vec<_>>())?;
    tracking::plot_heatmap(&dir.join("drop_matrix.png"), &format!("drop of {} (diagonal − entry)", matrix.metric), &matrix.train, &matrix.test, &drops)?;
    let mut md = String::from("# Drift synthesis\n\n");
    let _ = writeln!(md, "Every model trained behind one pipeline (rows) is tested behind every pipeline (columns) on its fold's validation samples; {} as mean ± std over folds.\n", matrix.metric);
    let _ = writeln!(md, "![drift matrix](drift_matrix.png)\n");
    let _ = writeln!(md, "| train \\ test | {} |", matrix.test.join(" | "));
    let _ = writeln!(md, "|---|{}", "---|".repeat(matrix.test.len()));
    for (i, name) in matrix.train.iter().enumerate() {
        let cells: Vec<String> = matrix.mean[i].iter().zip(&matrix.std[i]).map(|(m, s)| format!("{m:.3} ± {s:.3}")).collect();
        let _ = writeln!(md, "| {name} | {} |", cells.join(" | "));
    }
    let _ = writeln!(md, "\n![drop matrix](drop_matrix.png)\n");
    match matrix.mean_drop() {
        Some(drop) => {
            let _ = writeln!(md, "Mean drop under pipeline drift (off-diagonal): **{drop:.4}**.");
        }
        None => {
            let _ = writeln!(md, "No off-diagonal entries: train and test pipelines do not overlap.");
        }
    }
    if let Some(corruption_mean) = corruption_mean {
        let mut labels: Vec<String> = corruptions.iter().map(|(n, _)| n.clone()).collect();
        let mut values: Vec<f64> = corruptions.iter().map(|(_, d)| *d).collect();
        labels.push("mean corruption".into());
        values.push(corruption_mean);
        if let Some(drift) = matrix.mean_drop() {
            labels.push("pipeline drift".into());
            values.push(drift);
        }
        tracking::plot_bars(&dir.join("drift_vs_corruption.png"), &format!("mean drop of {}", matrix.metric), &labels, &[("drop", values)])?;
        let _ = writeln!(md, "\n## Pipeline drift against common corruptions\n\n![drift vs corruption](drift_vs_corruption.png)\n");
        let _ = writeln!(md, "| corruption | mean drop (severities, folds, pipelines) |\n|---|---|");
        for (name, drop) in corruptions {
            let _ = writeln!(md, "| {name} | {drop:.4} |");
        }
        let _ = writeln!(md, "\nMean corruption drop **{corruption_mean:.4}**.");
        if let Some(drift) = matrix.mean_drop().filter(|d| *d > 0.0) {
            let _ = writeln!(md, "The corruption drop is **{:.1}×** the pipeline-drift drop (the published finding: 4–10×).", corruption_mean / drift);
        }
    }
    crate::imageio::write_atomically(&dir.join("report.md"), |out| Ok(out.write_all(md.as_bytes())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_are_the_diagonal_minus_the_entry() {
        let matrix = DriftMatrix {
            train: vec!["a".into(), "b".into()],
            test: vec!["a".into(), "b".into(), "c".into()],
            metric: "accuracy".into(),
            mean: vec![vec![0.9, 0.7, 0.8], vec![0.6, 0.95, 0.5]],
            std: vec![vec![0.0; 3]; 2],
        };
        let drops = matrix.drops();
        assert_eq!(drops[0][0], Some(0.0));
        assert!((drops[0][1].unwrap() - 0.2).abs() < 1e-12);
        assert!((drops[1][2].unwrap() - 0.45).abs() < 1e-12);
        // off-diagonal: 0.2, 0.1, 0.35, 0.45
        assert!((matrix.mean_drop().unwrap() - 0.275).abs() < 1e-12);
    }
}
