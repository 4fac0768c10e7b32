//! The experiments users come for, each a `[job]` kind of `l2l-host run`:
//!
//! - **drift synthesis** (`drift_synthesis`): train behind each of several pipelines, test every trained
//!   model behind every pipeline; the matrix of the metric (mean ± std over folds) and the drop matrix
//!   (diagonal minus entry) show how much a change of processing costs the model.
//!
//! Results go to a new experiment directory: `results.json`, PNG plots and `report.md`.

use crate::config::{self, DriftSynthesisConfig, LoadedConfig, ProcessingMode};
use crate::data::LoaderOptions;
use crate::datasets;
use crate::pipeline::Pipeline;
use crate::plugins::Registry;
use crate::tracking;
use crate::train::{self, checkpoint};
use anyhow::{anyhow, bail, Context, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
/// static `train` job (what each training of the experiment runs).
fn with_pipeline(loaded: &LoadedConfig, pipeline: &Path, train: &config::TrainConfig) -> Result<LoadedConfig> {
    let mut table = loaded.resolved.clone();
    table.remove("pipeline");
    table.remove("stages");
    let processing = config::read_with_includes(pipeline, 0)?;
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
        config: config::from_table(&table).with_context(|| format!("pipeline {}", pipeline.display()))?,
        resolved: table,
    })
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
        train::metrics::Task::Segmentation => "iou".into(),
        train::metrics::Task::Classification { .. } => "accuracy".into(),
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
    for (i, path) in training.iter().enumerate() {
        let variant = with_pipeline(loaded, path, &config::TrainConfig { name: stem(path), ..train_config.clone() })?;
        tracing::info!("drift synthesis: training behind {}", stem(path));
        let run = train::train(&variant, registry, &config::TrainConfig { name: stem(path), ..train_config.clone() }, None)?;
        for (fold, split) in splits.iter().enumerate() {
            let state = checkpoint::load(&run.join("checkpoints").join(format!("fold{fold}.safetensors")))?;
            let classes = match &task {
                train::metrics::Task::Classification { class_names } => class_names.len(),
                train::metrics::Task::Segmentation => 1,
            };
            let mut model = registry.build_task_model(&model_spec.kind, model_spec.plugin.as_deref(), &model_spec.config_text, classes, "task model")?;
            model.to(device, tch::Kind::Float)?;
            model.load_state(checkpoint::section(&state, "task_model"))?;
            model.set_train(false)?;
            let options = LoaderOptions { batch_size: train_config.batch_size, ..Default::default() };
            for (j, test) in tests.iter_mut().enumerate() {
                let result = train::evaluate(test, &mut model, &dataset, &split.validation, &task, &options, device, None)?;
                let value = *result
                    .finish()
                    .get(&metric)
                    .ok_or_else(|| anyhow!("config key `job.metric`: the task has no metric `{metric}`"))?;
                values[i][j].push(value);
            }
        }
    }
    let stats = |v: &Vec<f64>| {
        let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
        let var = if v.len() > 1 { v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64 } else { 0.0 };
        (mean, var.sqrt())
    };
    let matrix = DriftMatrix {
        train: training.iter().map(|p| stem(p)).collect(),
        test: testing.iter().map(|p| stem(p)).collect(),
        metric,
        mean: values.iter().map(|row| row.iter().map(|v| stats(v).0).collect()).collect(),
        std: values.iter().map(|row| row.iter().map(|v| stats(v).1).collect()).collect(),
    };
    write_drift_report(&dir, &matrix)?;
    Ok(dir)
}

/// `results.json`, `drift_matrix.png`, `drop_matrix.png` and `report.md`.
fn write_drift_report(dir: &Path, matrix: &DriftMatrix) -> Result<()> {
    let drops = matrix.drops();
    let results = serde_json::json!({ "matrix": matrix, "drops": drops, "mean_drop": matrix.mean_drop() });
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
