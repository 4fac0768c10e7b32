//! Running the optimisation comparison: one training per processing mode on the job's context.

use super::config::OptimisationConfig;
use super::report::{self, ModeCurve};
use crate::config::{ComponentSpec, LoadedConfig, PipelineSpec, StageSpec};
use crate::pipeline::Pipeline;
use crate::plugins::Registry;
use crate::tracking;
use crate::train::config::{ProcessingMode, TrainConfig};
use crate::train::context::JobContext;
use crate::train::{self, PlannedTraining};
use crate::uncertainty::{mean_and_std, Unit};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

/// Runs a drift-optimisation experiment: one training per processing mode, the same data, folds and
/// task model; returns the experiment directory.
pub fn run(context: &JobContext, job: &OptimisationConfig) -> Result<PathBuf> {
    let planned = trainings(context.loaded, job)?;
    let dir = tracking::create_run_dir(&job.output_dir, &job.name)?;
    let metric = context.metric();
    let mut curves = Vec::new();
    for PlannedTraining { processing, config, .. } in planned {
        let (mode, name) = (config.mode, config.name.clone());
        let train_config = TrainConfig {
            output_dir: dir.join("training"),
            ..config
        };
        tracing::info!("optimisation: training with processing mode {name}");
        let trained = train::train(context, &processing, &train_config, None)?;
        let rows = &trained.history;
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
        let splits = context.splits(&train_config)?;
        let replicates: Vec<usize> = (0..splits.len()).filter(|r| train_config.trains_fold(*r)).collect();
        let (mut outcomes, mut summaries, mut units) = (Vec::new(), Vec::new(), Vec::new());
        for &r in &replicates {
            let fold = trained.fold(r)?;
            outcomes.push(fold.scored_outcomes.clone());
            summaries.push(fold.scored_summary.clone());
            units.push(Unit {
                seed: splits[r].seed_index,
                samples: splits[r].scored().to_vec(),
            });
        }
        curves.push(ModeCurve {
            mode,
            mean,
            std,
            run: trained.run_dir.clone(),
            final_outcomes: outcomes,
            units,
            summaries,
            scored_on_test: splits.first().is_some_and(|s| !s.test.is_empty()),
        });
    }
    report::write_report(&dir, metric, &curves)?;
    Ok(dir)
}

/// Every training the comparison will do: one per mode, named after it.
pub fn trainings(loaded: &LoadedConfig, job: &OptimisationConfig) -> Result<Vec<PlannedTraining>> {
    if job.modes.is_empty() {
        bail!("config key `job.modes`: list at least one processing mode");
    }
    job.modes
        .iter()
        .map(|&mode| {
            let processing = processing(loaded, job, mode).with_context(|| format!("mode {}", mode.name()))?;
            let config = TrainConfig {
                mode,
                name: mode.name().to_string(),
                ..job.train.clone()
            };
            Ok(PlannedTraining {
                label: format!("processing mode {}", mode.name()),
                processing,
                config,
            })
        })
        .collect()
}

/// Checks an optimisation comparison before anything trains: every mode's processing reads and builds,
/// and the parametrized one has something to learn.
pub fn check(loaded: &LoadedConfig, registry: &Registry, job: &OptimisationConfig) -> Result<()> {
    if job.modes.is_empty() {
        bail!("config key `job.modes`: list at least one processing mode");
    }
    for &mode in &job.modes {
        let spec = processing(loaded, job, mode).with_context(|| format!("mode {}", mode.name()))?;
        let pipeline = Pipeline::build(registry, &spec.stages, tch::Device::Cpu)
            .with_context(|| format!("mode {}", mode.name()))?;
        if mode == ProcessingMode::Parametrized && !pipeline.parameters()?.iter().any(|p| p.trainable) {
            bail!(
                "config key `job.parametrized_pipeline`: no stage of {} has a learnable parameter",
                job.parametrized_pipeline.display()
            );
        }
    }
    Ok(())
}

/// The processing `mode` trains behind: the static or parametrized pipeline file, a `processor_nn`
/// stage, or none (the trainer packs the raw).
fn processing(loaded: &LoadedConfig, job: &OptimisationConfig, mode: ProcessingMode) -> Result<PipelineSpec> {
    Ok(match mode {
        ProcessingMode::Static => loaded.load_pipeline(&job.static_pipeline)?,
        ProcessingMode::Parametrized => loaded.load_pipeline(&job.parametrized_pipeline)?,
        ProcessingMode::NeuralNetwork => {
            let mut table = job.neural_processor.clone().unwrap_or_default();
            table.insert("kind".into(), toml::Value::String("processor_nn".into()));
            table.entry("cfa_from_metadata").or_insert(toml::Value::Boolean(true));
            let ComponentSpec { kind, plugin, config } =
                ComponentSpec::from_table("job.neural_processor", &table, "processor_nn")?;
            PipelineSpec {
                stages: vec![StageSpec {
                    name: "processor".into(),
                    kind,
                    plugin,
                    config,
                }],
                plugin_dirs: Vec::new(),
            }
        }
        ProcessingMode::None => PipelineSpec::default(),
    })
}
