//! Running a forensics search: the model trained behind the pipeline at its defaults, then one Adam
//! search per parameter group against the frozen model.

use super::config::{Distance, ForensicsConfig};
use super::images::{attack_sets, strongest_attack_figures, AttackSet, Normaliser, EXAMPLES};
use super::report::{self, AttackedParameter, ForensicsResult, ParameterAttribution};
use super::search::{range_unit, search, SearchEnd};
use crate::config::LoadedConfig;
use crate::data::{Loader, LoaderOptions};
use crate::pipeline::Pipeline;
use crate::plugins::{Registry, RemoteModule, SharedParameter};
use crate::tracking;
use crate::train::config::{ProcessingMode, TrainConfig};
use crate::train::context::JobContext;
use crate::train::metrics::Task;
use crate::train::{self, metrics, optim, PlannedTraining};
use crate::uncertainty::{mean_over_replicates, weighted_metric, Bootstrap, Outcome, Unit};
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use tch::Tensor;

/// Runs a drift-forensics experiment: trains the model behind the pipeline at its defaults (once per
/// training seed), then for every model, group and similarity weight searches the group's parameters
/// (Adam, in units of each parameter's declared range, until the objective stops improving) for values
/// that raise the frozen model's task loss on the fitted images while the output stays close to the
/// default output, and scores the values found on held-out images the search never saw; returns the
/// experiment directory.
pub fn run(context: &JobContext, job: &ForensicsConfig) -> Result<PathBuf> {
    let pipeline_path = context.loaded.resolve(&job.pipeline);
    let PlannedTraining { processing, config, .. } = training(context.loaded, job)?;
    let dir = tracking::create_run_dir(&job.output_dir, &job.name)?;
    let train_config = TrainConfig {
        output_dir: dir.join("training"),
        ..config
    };
    let trained = train::train(context, &processing, &train_config, None)?;
    let (device, task, metric) = (context.device, &context.task, context.metric());
    let splits = context.splits(&train_config)?;
    let (fit, held) = attack_sets(splits[0].scored(), job.samples, job.held_out_samples())?;
    let load = |indices: &[usize]| -> Result<crate::data::Batch> {
        let options = LoaderOptions {
            batch_size: indices.len(),
            workers: 1,
            prefetch: 1,
            ..Default::default()
        };
        Loader::new(context.dataset.clone(), indices.to_vec(), &options)?
            .next()
            .ok_or_else(|| anyhow!("no samples to attack"))?
    };
    let (fit_batch, held_batch) = (load(&fit)?, load(&held)?);
    let specs = &processing.stages;
    let models: Vec<usize> = (0..splits.len()).filter(|r| train_config.trains_fold(*r)).collect();
    let units: Vec<Unit> = models
        .iter()
        .map(|&r| Unit {
            seed: splits[r].seed_index,
            samples: held.clone(),
        })
        .collect();
    // the held-out images resampled, models by seed: the same draws for every group and weight
    let bootstrap = Bootstrap::new(&units, job.train.seed ^ 0xF0_4E);
    let per_group = job.searches()?;
    let searches: Vec<(&String, f64, Option<f64>)> = job
        .groups
        .iter()
        .flat_map(|g| per_group.iter().map(move |&(w, budget)| (g, w, budget)))
        .collect();
    let mut found: Vec<Vec<Found>> = vec![Vec::new(); searches.len()];
    let mut sensitivity = None;
    // the first model's held-out images behind the default processing and each search's, for the figures
    let mut examples: Option<(Tensor, Vec<Tensor>)> = None;
    let fit_set = AttackSet::new(&fit_batch, device)?;
    let held_set = AttackSet::new(&held_batch, device)?;
    for &r in &models {
        let mut model = context.model_with_state(&trained.fold(r)?.task_model)?;
        let mut default = Pipeline::build_for_inference(context.registry, specs, device)?;
        let (fit_default, fit_reference) = fit_set.evaluate(&mut default, &mut model, task)?;
        let (held_default, held_reference) = held_set.evaluate(&mut default, &mut model, task)?;
        if sensitivity.is_none() {
            sensitivity = Some(sensitivities(
                &mut default,
                &mut model,
                &fit_set.raw,
                &fit_set.target,
                task,
                &fit_batch.cameras,
            )?);
        }
        let fit_unit = Normaliser::of(&fit_reference)?;
        let held_unit = Normaliser::of(&held_reference)?;
        let fit_target = fit_unit.apply(&fit_reference)?;
        let held_target = held_unit.apply(&held_reference)?;
        let shown = |t: &Tensor| -> Result<Tensor> {
            Ok(held_unit
                .apply(&t.f_narrow(0, 0, t.size()[0].min(EXAMPLES))?)?
                .f_clamp(0.0, 1.0)?
                .f_to_device(tch::Device::Cpu)?)
        };
        let first_model = examples.is_none();
        if first_model {
            examples = Some((shown(&held_reference)?, Vec::new()));
        }
        for (k, &(group, weight, budget)) in searches.iter().enumerate() {
            let mut pipeline = Pipeline::build_for_inference(context.registry, specs, device)?;
            pipeline.set_camera(fit_set.cameras)?;
            let attacked = attacked_parameters(&pipeline, group, &pipeline_path)?;
            let state_before = pipeline.state()?;
            let before = values(&attacked)?;
            let groups = attacked
                .iter()
                .map(|p| {
                    Ok(optim::ParameterGroup {
                        parameters: vec![p.tensor.shallow_clone()],
                        lr: job.lr * range_unit(p)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            // the objective and the budget both run the pipeline and the model: one borrow at a time
            let running = std::cell::RefCell::new((&mut pipeline, &mut model));
            let end = search(
                groups,
                job.steps,
                job.tolerance,
                job.patience,
                || {
                    let (pipeline, model) = &mut *running.borrow_mut();
                    let output = pipeline.forward(&fit_set.raw)?;
                    let task_loss = metrics::loss(task, &model.forward(&output)?, &fit_set.target)?;
                    let distance = match (job.distance, budget) {
                        // under a budget the constraint keeps the image close: the loss alone counts
                        (_, Some(_)) => return Ok(task_loss.f_neg()?),
                        (Distance::Ssim, None) => l2l_ops::ssim(&fit_unit.apply(&output)?, &fit_target)?
                            .f_neg()?
                            .f_add_scalar(1.0)?,
                        (Distance::L2, None) => fit_unit
                            .apply(&output)?
                            .f_sub(&fit_target)?
                            .f_square()?
                            .f_mean(tch::Kind::Float)?,
                    };
                    Ok(task_loss.f_neg()?.f_add(&distance.f_mul_scalar(weight)?)?)
                },
                || attacked.iter().try_for_each(|p| p.project()),
                || match budget {
                    Some(budget) => {
                        let (pipeline, _) = &mut *running.borrow_mut();
                        let output = tch::no_grad(|| pipeline.forward(&fit_set.raw))?;
                        let kept = tch::no_grad(|| -> Result<Tensor> {
                            Ok(l2l_ops::ssim(&fit_unit.apply(&output)?, &fit_target)?)
                        })?;
                        Ok(kept.f_double_value(&[])? >= budget)
                    }
                    None => Ok(true),
                },
            )?;
            let (fit_adversarial, fit_output) = fit_set.evaluate(&mut pipeline, &mut model, task)?;
            let (held_adversarial, held_output) = held_set.evaluate(&mut pipeline, &mut model, task)?;
            if first_model {
                if let Some((_, attacked_images)) = examples.as_mut() {
                    attacked_images.push(shown(&held_output)?);
                }
            }
            let ssim = |unit: &Normaliser, output: &Tensor, target: &Tensor| -> Result<f64> {
                tch::no_grad(|| Ok(l2l_ops::ssim(&unit.apply(output)?, target)?.f_double_value(&[])?))
            };
            let parameters = attacked
                .iter()
                .zip(before)
                .map(|(p, before)| {
                    Ok(AttackedParameter {
                        name: p.name.clone(),
                        before,
                        after: values(std::slice::from_ref(p))?.remove(0),
                        bounds: p.bounds,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let changed = pipeline
                .state()?
                .iter()
                .zip(&state_before)
                .filter(|((_, after), (_, before))| !after.allclose(before, 0.0, 0.0, false))
                .map(|((name, _), _)| name.clone())
                .collect();
            let found_here = Found {
                fit_drop: metric_of(&fit_default) - metric_of(&fit_adversarial),
                fit_ssim: ssim(&fit_unit, &fit_output, &fit_target)?,
                held_default: held_default.clone(),
                held_adversarial,
                held_ssim: ssim(&held_unit, &held_output, &held_target)?,
                end,
                parameters,
                changed,
            };
            tracing::info!(
                "forensics model {r} `{group}` (similarity weight {weight}): held-out {metric} {:.3} → {:.3}, SSIM {:.3}, {} steps{}",
                metric_of(&found_here.held_default),
                metric_of(&found_here.held_adversarial),
                found_here.held_ssim,
                end.steps,
                if end.converged { ", converged" } else { ", step limit" }
            );
            found[k].push(found_here);
        }
    }
    let results = searches
        .iter()
        .zip(found)
        .map(|(&(group, weight, budget), per_model)| {
            summarise(group, weight, budget, per_model, &bootstrap, fit.len(), held.len())
        })
        .collect::<Result<Vec<_>>>()?;
    let (gradients, attribution) = sensitivity.ok_or_else(|| anyhow!("no model to attack"))?;
    let figures = match &examples {
        Some((default, attacked)) => strongest_attack_figures(&dir, &searches, &results, default, attacked)?,
        None => Vec::new(),
    };
    report::write_report(&dir, metric, &results, &gradients, &attribution, &figures)?;
    Ok(dir)
}

/// What one search found against one model.
#[derive(Clone)]
struct Found {
    fit_drop: f64,
    fit_ssim: f64,
    held_default: Vec<Outcome>,
    held_adversarial: Vec<Outcome>,
    held_ssim: f64,
    end: SearchEnd,
    parameters: Vec<AttackedParameter>,
    changed: Vec<String>,
}

/// One group's and weight's searches against every model, as the report states them: the held-out
/// drop's interval over models (by seed) and held-out images, paired.
fn summarise(
    group: &str,
    weight: f64,
    budget: Option<f64>,
    per_model: Vec<Found>,
    bootstrap: &Bootstrap,
    fit_samples: usize,
    held_samples: usize,
) -> Result<ForensicsResult> {
    let defaults: Vec<Vec<Outcome>> = per_model.iter().map(|f| f.held_default.clone()).collect();
    let adversarial: Vec<Vec<Outcome>> = per_model.iter().map(|f| f.held_adversarial.clone()).collect();
    let mean = |values: Vec<f64>| values.iter().sum::<f64>() / values.len().max(1) as f64;
    let first = per_model.first().ok_or_else(|| anyhow!("no model was attacked"))?;
    Ok(ForensicsResult {
        group: group.to_string(),
        similarity_weight: weight,
        ssim_budget: budget,
        default_metric: mean(defaults.iter().map(|o| metric_of(o)).collect()),
        adversarial_metric: mean(adversarial.iter().map(|o| metric_of(o)).collect()),
        drop: bootstrap.estimate(|w| mean_over_replicates(&defaults, w) - mean_over_replicates(&adversarial, w)),
        ssim: mean(per_model.iter().map(|f| f.held_ssim).collect()),
        fit_drop: mean(per_model.iter().map(|f| f.fit_drop).collect()),
        fit_ssim: mean(per_model.iter().map(|f| f.fit_ssim).collect()),
        samples: held_samples,
        fit_samples,
        models: per_model.len(),
        steps: per_model.iter().map(|f| f.end.steps).collect(),
        converged: per_model.iter().filter(|f| f.end.converged).count(),
        parameters: first.parameters.clone(),
        changed: first.changed.clone(),
    })
}

/// The metric of `outcomes`, every sample counted once.
fn metric_of(outcomes: &[Outcome]) -> f64 {
    weighted_metric(outcomes, &vec![1.0; outcomes.len()])
}

/// Each parameter's values, in float64.
fn values(parameters: &[SharedParameter]) -> Result<Vec<Vec<f64>>> {
    parameters
        .iter()
        .map(|p| {
            Ok(Vec::<f64>::try_from(
                p.tensor.f_detach()?.f_to_kind(tch::Kind::Double)?.f_flatten(0, -1)?,
            )?)
        })
        .collect()
}

/// The one training the experiment does: the model behind the pipeline at its defaults, one fold.
pub fn training(loaded: &LoadedConfig, job: &ForensicsConfig) -> Result<PlannedTraining> {
    let pipeline_path = loaded.resolve(&job.pipeline);
    let processing = loaded
        .load_pipeline(&job.pipeline)
        .with_context(|| format!("pipeline {}", pipeline_path.display()))?;
    // one fold: every model (one per training seed) is attacked on the same images
    let config = TrainConfig {
        mode: ProcessingMode::Static,
        n_splits: 1,
        ..job.train.clone()
    };
    Ok(PlannedTraining {
        label: format!("the model behind {}", pipeline_path.display()),
        processing,
        config,
    })
}

/// Checks a forensics search before anything trains: the pipeline builds and every group names
/// learnable parameters.
pub fn check(loaded: &LoadedConfig, registry: &Registry, job: &ForensicsConfig) -> Result<()> {
    let pipeline_path = loaded.resolve(&job.pipeline);
    let processing = loaded
        .load_pipeline(&job.pipeline)
        .with_context(|| format!("config key `job.pipeline`: {}", pipeline_path.display()))?;
    let pipeline = Pipeline::build(registry, &processing.stages, tch::Device::Cpu)?;
    if job.groups.is_empty() {
        bail!("config key `job.groups`: list at least one group (`all` or a stage name)");
    }
    for group in &job.groups {
        attacked_parameters(&pipeline, group, &pipeline_path)?;
    }
    Ok(())
}

/// The learnable parameters `group` (`all` or a stage name) names in `pipeline`; an error naming the
/// stages when it names none.
fn attacked_parameters(pipeline: &Pipeline, group: &str, path: &Path) -> Result<Vec<SharedParameter>> {
    let attacked: Vec<_> = pipeline
        .parameters()?
        .into_iter()
        .filter(|p| p.trainable && (group == "all" || p.name.starts_with(&format!("{group}."))))
        .collect();
    if attacked.is_empty() {
        let stages: Vec<&str> = pipeline.stages().iter().map(|(name, _)| name.as_str()).collect();
        bail!(
            "config key `job.groups`: `{group}` names no learnable parameter of {} (stages: {})",
            path.display(),
            stages.join(", ")
        );
    }
    Ok(attacked)
}

/// Where the model is most sensitive, behind the default processing: mean |∂ task loss / ∂ stage
/// output| for every stage, and for every learnable parameter θ the mean of |∂ task loss / ∂θ| · |θ|.
/// Each stage's sensitivity (name, size), and each parameter's attribution.
type Sensitivities = (Vec<(String, f64)>, Vec<ParameterAttribution>);

fn sensitivities(
    pipeline: &mut Pipeline,
    model: &mut RemoteModule,
    raw: &Tensor,
    target: &Tensor,
    task: &Task,
    cameras: &[l2l_plugin_api::RawMetadata],
) -> Result<Sensitivities> {
    pipeline.set_camera(cameras)?;
    let input = raw.f_detach()?.f_set_requires_grad(true)?;
    let outputs = pipeline.forward_traced(&input, |_| {})?;
    let last = outputs
        .last()
        .map(|o| o.output.shallow_clone())
        .unwrap_or(input.shallow_clone());
    let loss = metrics::loss(task, &model.forward(&last)?, target)?;
    let parameters: Vec<_> = pipeline.parameters()?.into_iter().filter(|p| p.trainable).collect();
    let mut tensors: Vec<Tensor> = outputs.iter().map(|o| o.output.shallow_clone()).collect();
    tensors.extend(parameters.iter().map(|p| p.tensor.shallow_clone()));
    let mut grads = Tensor::run_backward(&[&loss], &tensors, false, false);
    let parameter_grads = grads.split_off(outputs.len());
    let mean_abs = |t: &Tensor| -> Result<f64> { Ok(t.f_abs()?.f_mean(tch::Kind::Double)?.f_double_value(&[])?) };
    let stages = outputs
        .iter()
        .zip(&grads)
        .map(|(o, g)| Ok((o.name.clone(), mean_abs(g)?)))
        .collect::<Result<_>>()?;
    let attribution = parameters
        .iter()
        .zip(&parameter_grads)
        .map(|(p, g)| {
            Ok(ParameterAttribution {
                name: p.name.clone(),
                attribution: mean_abs(&g.f_mul(&p.tensor.f_detach()?)?)?,
            })
        })
        .collect::<Result<_>>()?;
    Ok((stages, attribution))
}
