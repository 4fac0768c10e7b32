//! Running a drift synthesis: one training per training pipeline on the job's context, every trained
//! model tested behind every test pipeline (and, with the baseline, behind its own with corruptions).

use super::config::DriftSynthesisConfig;
use super::report;
use super::statistics::{CorruptedOutcomes, DriftRaw, IntensityOutcomes};
use crate::config::{LoadedConfig, PipelineSpec};
use crate::data::LoaderOptions;
use crate::experiments::{matrix_from_values, stem};
use crate::pipeline::Pipeline;
use crate::plugins::Registry;
use crate::plugins::RemoteDataset;
use crate::tracking;
use crate::train::config::{ProcessingMode, TrainConfig};
use crate::train::context::JobContext;
use crate::train::processed::{pipeline_key, Frozen};
use crate::train::{self, evaluate, PlannedTraining};
use crate::uncertainty::Unit;
use anyhow::{anyhow, bail, Context, Result};
use std::path::PathBuf;
use std::sync::Arc;
use tch::{Device, Tensor};

/// A drift synthesis's pipelines: the files it trains and tests behind, the training processings and
/// the test pipelines built.
struct Pipelines {
    training: Vec<PathBuf>,
    testing: Vec<PathBuf>,
    processings: Vec<PipelineSpec>,
    tests: Vec<Pipeline>,
    /// The test pipelines' keys in the job's processed-image cache.
    test_keys: Vec<u64>,
}

/// Reads every pipeline the job names and builds the test pipelines on `device`, so that a bad one
/// costs no training; with a corruption baseline, every training pipeline must be tested too.
fn pipelines(
    loaded: &LoadedConfig,
    registry: &Registry,
    job: &DriftSynthesisConfig,
    device: Device,
) -> Result<Pipelines> {
    if job.pipelines.is_empty() {
        bail!("config key `job.pipelines`: list at least one pipeline config to train behind");
    }
    let training: Vec<PathBuf> = job.pipelines.iter().map(|p| loaded.resolve(p)).collect();
    let testing: Vec<PathBuf> = if job.test_pipelines.is_empty() {
        training.clone()
    } else {
        job.test_pipelines.iter().map(|p| loaded.resolve(p)).collect()
    };
    let processings: Vec<PipelineSpec> = job
        .pipelines
        .iter()
        .map(|path| {
            loaded
                .load_pipeline(path)
                .with_context(|| format!("config key `job.pipelines`: {}", path.display()))
        })
        .collect::<Result<_>>()?;
    for (path, processing) in training.iter().zip(&processings) {
        Pipeline::build(registry, &processing.stages, Device::Cpu)
            .with_context(|| format!("pipeline {}", path.display()))?;
    }
    let mut tests: Vec<Pipeline> = Vec::new();
    let mut test_keys = Vec::new();
    let named_tests = if job.test_pipelines.is_empty() {
        &job.pipelines
    } else {
        &job.test_pipelines
    };
    for (path, named) in testing.iter().zip(named_tests) {
        let spec = loaded
            .load_pipeline(named)
            .with_context(|| format!("config key `job.test_pipelines`: {}", path.display()))?;
        let pipeline = Pipeline::build_for_inference(registry, &spec.stages, device)
            .with_context(|| format!("test pipeline {}", path.display()))?;
        tests.push(pipeline);
        test_keys.push(pipeline_key(&spec.stages));
    }
    if job.corruptions.is_some() {
        if let Some(path) = training.iter().find(|t| !testing.contains(t)) {
            bail!(
                "config key `job.corruptions`: the baseline tests each model behind its own pipeline; list {} in `test_pipelines`",
                path.display()
            );
        }
    }
    Ok(Pipelines {
        training,
        testing,
        processings,
        tests,
        test_keys,
    })
}

/// How every model of the experiment trains: behind a fixed pipeline.
fn training_config(job: &DriftSynthesisConfig) -> TrainConfig {
    TrainConfig {
        mode: ProcessingMode::Static,
        ..job.train.clone()
    }
}

/// Every training the experiment will do: one per training pipeline.
pub fn trainings(loaded: &LoadedConfig, job: &DriftSynthesisConfig) -> Result<Vec<PlannedTraining>> {
    job.pipelines
        .iter()
        .map(|path| {
            let processing = loaded
                .load_pipeline(path)
                .with_context(|| format!("config key `job.pipelines`: {}", path.display()))?;
            Ok(PlannedTraining {
                label: format!("training pipeline {}", stem(path)),
                processing,
                config: training_config(job),
            })
        })
        .collect()
}

/// Checks a drift synthesis before anything trains: every pipeline it names reads and builds.
pub fn check(loaded: &LoadedConfig, registry: &Registry, job: &DriftSynthesisConfig) -> Result<()> {
    pipelines(loaded, registry, job, Device::Cpu).map(drop)
}

/// Runs a drift-synthesis experiment on `context`; returns its directory.
pub fn run(context: &JobContext, job: &DriftSynthesisConfig) -> Result<PathBuf> {
    let Pipelines {
        training,
        testing,
        processings,
        mut tests,
        test_keys,
    } = pipelines(context.loaded, context.registry, job, context.device)?;
    let dir = tracking::create_run_dir(&job.output_dir, &job.name)?;
    let train_config = TrainConfig {
        output_dir: dir.join("training"),
        ..training_config(job)
    };
    let metric = job.metric.clone().unwrap_or_else(|| context.metric().into());
    let splits = context.splits(&train_config)?;
    // per training pipeline, per test pipeline, the metric and the per-sample outcomes of every fold
    let mut values = vec![vec![Vec::new(); testing.len()]; training.len()];
    let mut outcomes = vec![vec![Vec::new(); testing.len()]; training.len()];
    let mut summaries = vec![vec![Vec::new(); testing.len()]; training.len()];
    // per corruption and severity, every model's outcomes behind its own pipeline
    let corruptions = job.corruptions.clone();
    let mut corrupted: Vec<CorruptedOutcomes> = corruptions
        .iter()
        .flat_map(|c| {
            c.tables.iter().flat_map(move |table| {
                c.types
                    .iter()
                    .flat_map(move |t| c.severities.iter().map(move |s| (*table, *t, *s)))
            })
        })
        .map(|(table, t, severity)| {
            let several = corruptions.as_ref().is_some_and(|c| c.tables.len() > 1);
            let corruption = if several {
                format!("{} ({})", corruption_name(t), table_name(table))
            } else {
                corruption_name(t)
            };
            CorruptedOutcomes {
                corruption,
                severity,
                outcomes: vec![Vec::new(); training.len()],
            }
        })
        .collect();
    // the same samples at every test intensity: the data set opened once per intensity
    let at_intensity = intensity_datasets(context, &job.test_intensities)?;
    let mut intensities: Vec<IntensityOutcomes> = job
        .test_intensities
        .iter()
        .map(|&intensity| IntensityOutcomes {
            intensity,
            outcomes: vec![Vec::new(); training.len()],
            summaries: vec![Vec::new(); training.len()],
        })
        .collect();
    for (i, path) in training.iter().enumerate() {
        let named = TrainConfig {
            name: stem(path),
            ..train_config.clone()
        };
        tracing::info!("drift synthesis: training behind {}", stem(path));
        let trained = train::train(context, &processings[i], &named, None)?;
        for (fold, split) in splits
            .iter()
            .enumerate()
            .filter(|(fold, _)| train_config.trains_fold(*fold))
        {
            let mut model = context.model_with_state(&trained.fold(fold)?.task_model)?;
            let options = LoaderOptions {
                batch_size: train_config.batch_size,
                ..Default::default()
            };
            for (j, test) in tests.iter_mut().enumerate() {
                let frozen = train_config.cache_processing.then_some(Frozen {
                    cache: &context.processed,
                    key: test_keys[j],
                });
                let result = evaluate(
                    test,
                    frozen,
                    &mut model,
                    &context.dataset,
                    split.scored(),
                    &context.task,
                    &options,
                    context.device,
                    None,
                )?;
                let value = *result
                    .finish()
                    .get(&metric)
                    .ok_or_else(|| anyhow!("config key `job.metric`: the task has no metric `{metric}`"))?;
                values[i][j].push(value);
                summaries[i][j].push(result.summary());
                outcomes[i][j].push(result.outcomes);
            }
            if let Some(baseline) = &corruptions {
                let own = testing
                    .iter()
                    .position(|t| t == path)
                    .ok_or_else(|| anyhow!("checked by `pipelines`"))?;
                for (t, &table) in baseline.tables.iter().enumerate() {
                    for (k, &corruption) in baseline.types.iter().enumerate() {
                        for (s, &severity) in baseline.severities.iter().enumerate() {
                            tch::manual_seed(
                                (job.train.seed as i64) ^ ((t as i64) << 16) ^ ((k as i64) << 8) ^ severity as i64,
                            );
                            let transform = |x: &Tensor| -> Result<Tensor> {
                                super::corruptions::corrupt(x, corruption, severity, table)
                            };
                            let frozen = train_config.cache_processing.then_some(Frozen {
                                cache: &context.processed,
                                key: test_keys[own],
                            });
                            let result = evaluate(
                                &mut tests[own],
                                frozen,
                                &mut model,
                                &context.dataset,
                                split.scored(),
                                &context.task,
                                &options,
                                context.device,
                                Some(&transform),
                            )?;
                            corrupted[(t * baseline.types.len() + k) * baseline.severities.len() + s].outcomes[i]
                                .push(result.outcomes);
                        }
                    }
                }
            }
            if let Some(own) = testing
                .iter()
                .position(|t| t == path)
                .filter(|_| !at_intensity.is_empty())
            {
                for (k, dataset) in at_intensity.iter().enumerate() {
                    // the cache keeps this pipeline's images of this intensity apart from the others'
                    let key = test_keys[own] ^ job.test_intensities[k].to_bits().wrapping_mul(0x9E37_79B9_7F4A_7C15);
                    let frozen = train_config.cache_processing.then_some(Frozen {
                        cache: &context.processed,
                        key,
                    });
                    let result = evaluate(
                        &mut tests[own],
                        frozen,
                        &mut model,
                        dataset,
                        split.scored(),
                        &context.task,
                        &options,
                        context.device,
                        None,
                    )?;
                    intensities[k].summaries[i].push(result.summary());
                    intensities[k].outcomes[i].push(result.outcomes);
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
    let folds: Vec<usize> = (0..splits.len()).filter(|f| train_config.trains_fold(*f)).collect();
    let units = folds
        .iter()
        .map(|&f| Unit {
            seed: splits[f].seed_index,
            samples: splits[f].scored().to_vec(),
        })
        .collect();
    report::write_report(
        &dir,
        &matrix,
        &DriftRaw {
            units,
            summaries,
            scored_on_test: splits.first().is_some_and(|s| !s.test.is_empty()),
            folds,
            values,
            outcomes,
            corrupted,
            intensities,
            augmentation: train_config.augmentation,
        },
    )?;
    Ok(dir)
}

/// A severity table's name as configs spell it.
fn table_name(table: super::corruptions::Table) -> String {
    serde_json::to_value(table)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// A corruption's name as configs spell it.
fn corruption_name(corruption: super::corruptions::Corruption) -> String {
    serde_json::to_value(corruption)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// The job's data set opened at each of `intensities`, checked to hold the same samples (count and
/// labels) as at the job's own intensity.
fn intensity_datasets(context: &JobContext, intensities: &[f64]) -> Result<Vec<Arc<RemoteDataset>>> {
    let spec = crate::data::datasets::spec(context.loaded)?;
    let labels = context.dataset.labels()?;
    intensities
        .iter()
        .map(|&intensity| {
            let at = |e: anyhow::Error| e.context(format!("config key `job.test_intensities`: the data set at intensity {intensity}"));
            let dataset = crate::data::datasets::open(context.registry, &spec, &[("intensity", toml::Value::Float(intensity))]).map_err(at)?;
            if dataset.len() != context.dataset.len() || dataset.labels()? != labels {
                bail!("config key `job.test_intensities`: at intensity {intensity} the data set holds other samples ({} instead of {})", dataset.len(), context.dataset.len());
            }
            Ok(Arc::new(dataset))
        })
        .collect()
}
