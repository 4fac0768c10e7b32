//! Running a forensics search: the model trained behind the pipeline at its defaults, then one Adam
//! search per parameter group against the frozen model.

use super::config::{Distance, ForensicsConfig};
use super::report::{self, AttackedParameter, ForensicsResult, ParameterAttribution};
use crate::config::LoadedConfig;
use crate::data::{Loader, LoaderOptions};
use crate::pipeline::Pipeline;
use crate::plugins::{Registry, RemoteModule, SharedParameter};
use crate::tracking;
use crate::train::config::{ProcessingMode, TrainConfig};
use crate::train::context::JobContext;
use crate::train::metrics::Task;
use crate::train::{self, metrics, optim, PlannedTraining};
use crate::uncertainty::{weighted_metric, Bootstrap, Outcome};
use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use tch::Tensor;

/// Runs a drift-forensics experiment: trains a model behind the pipeline at its defaults, then for every
/// group searches the group's parameters (Adam) for values that raise the frozen model's task loss while
/// the output stays close to the default output; returns the experiment directory.
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
    let split = &context.splits(&train_config)?[0];
    let indices: Vec<usize> = split.validation.iter().copied().take(job.samples.max(1)).collect();
    let mut model = context.model_with_state(&trained.fold(0)?.task_model)?;
    let specs = &processing.stages;
    let options = LoaderOptions {
        batch_size: indices.len(),
        workers: 1,
        prefetch: 1,
        ..Default::default()
    };
    let batch = Loader::new(context.dataset.clone(), indices.clone(), &options)?
        .next()
        .ok_or_else(|| anyhow!("no samples to attack"))??;
    let raw = batch.raw.f_to_device(device)?;
    let target = batch.target.f_to_device(device)?;
    let evaluate = |pipeline: &mut Pipeline, model: &mut RemoteModule| -> Result<(Vec<Outcome>, Tensor)> {
        tch::no_grad(|| -> Result<(Vec<Outcome>, Tensor)> {
            pipeline.set_camera(&batch.cameras)?;
            let output = pipeline.forward(&raw)?;
            let logits = model.forward(&output)?;
            let mut accumulator = metrics::Accumulator::new(task);
            accumulator.add(&logits, &target, 0.0)?;
            Ok((accumulator.outcomes, output))
        })
    };
    // the attacked samples, resampled: the same draws for every group, so groups compare paired
    let bootstrap = Bootstrap::new(&[indices.len()], job.train.seed ^ 0xF0_4E);
    let mut default = Pipeline::build(context.registry, specs, device)?;
    default.set_train(false)?;
    let (default_outcomes, default_output) = evaluate(&mut default, &mut model)?;
    let default_metric = weighted_metric(&default_outcomes, &vec![1.0; default_outcomes.len()]);
    // the default output's range, so that SSIM compares images in [0, 1] whatever the pipeline ends with
    let (low, high) = (default_output.f_min()?, default_output.f_max()?);
    let span = high.f_sub(&low)?.f_clamp_min(1e-12)?;
    let unit = |t: &Tensor| -> Result<Tensor> { Ok(t.f_sub(&low)?.f_div(&span)?) };
    let reference = unit(&default_output)?;

    let (gradients, attribution) = sensitivities(&mut default, &mut model, &raw, &target, task, &batch.cameras)?;
    let mut results = Vec::new();
    for (group, weight) in job
        .groups
        .iter()
        .flat_map(|g| job.weights().into_iter().map(move |w| (g, w)))
    {
        let mut pipeline = Pipeline::build_for_inference(context.registry, specs, device)?;
        pipeline.set_camera(&batch.cameras)?;
        let attacked = attacked_parameters(&pipeline, group, &pipeline_path)?;
        let state_before = pipeline.state()?;
        let before: Vec<Vec<f64>> = attacked
            .iter()
            .map(|p| {
                Vec::<f64>::try_from(p.tensor.f_detach()?.f_to_kind(tch::Kind::Double)?.f_flatten(0, -1)?)
                    .map_err(Into::into)
            })
            .collect::<Result<_>>()?;
        let mut adam = optim::Adam::new(
            vec![optim::ParameterGroup {
                parameters: attacked.iter().map(|p| p.tensor.shallow_clone()).collect(),
                lr: job.lr,
            }],
            0.0,
        )?;
        for _ in 0..job.steps {
            let output = pipeline.forward(&raw)?;
            let logits = model.forward(&output)?;
            let task_loss = metrics::loss(task, &logits, &target)?;
            let distance = match job.distance {
                Distance::Ssim => l2l_ops::ssim(&unit(&output)?, &reference)?.f_neg()?.f_add_scalar(1.0)?,
                Distance::L2 => unit(&output)?.f_sub(&reference)?.f_square()?.f_mean(tch::Kind::Float)?,
            };
            let objective = task_loss.f_neg()?.f_add(&distance.f_mul_scalar(weight)?)?;
            adam.zero_grad();
            objective.f_backward()?;
            adam.step()?;
            for parameter in &attacked {
                parameter.project()?;
            }
        }
        let (adversarial_outcomes, output) = evaluate(&mut pipeline, &mut model)?;
        let adversarial_metric = weighted_metric(&adversarial_outcomes, &vec![1.0; adversarial_outcomes.len()]);
        let drop = bootstrap
            .estimate(|w| weighted_metric(&default_outcomes, &w[0]) - weighted_metric(&adversarial_outcomes, &w[0]));
        let ssim =
            tch::no_grad(|| -> Result<f64> { Ok(l2l_ops::ssim(&unit(&output)?, &reference)?.f_double_value(&[])?) })?;
        let parameters = attacked
            .iter()
            .zip(before)
            .map(|(p, before)| {
                let after = Vec::<f64>::try_from(p.tensor.f_detach()?.f_to_kind(tch::Kind::Double)?.f_flatten(0, -1)?)?;
                Ok(AttackedParameter {
                    name: p.name.clone(),
                    before,
                    after,
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
        tracing::info!("forensics `{group}` (similarity weight {weight}): {metric} {default_metric:.3} → {adversarial_metric:.3}, SSIM {ssim:.3}");
        results.push(ForensicsResult {
            group: group.clone(),
            similarity_weight: weight,
            default_metric,
            adversarial_metric,
            drop,
            ssim,
            samples: indices.len(),
            parameters,
            changed,
        });
    }
    report::write_report(&dir, metric, &results, &gradients, &attribution)?;
    Ok(dir)
}
/// The one training the experiment does: the model behind the pipeline at its defaults, one fold.
pub fn training(loaded: &LoadedConfig, job: &ForensicsConfig) -> Result<PlannedTraining> {
    let pipeline_path = loaded.resolve(&job.pipeline);
    let processing = loaded
        .load_pipeline(&job.pipeline)
        .with_context(|| format!("pipeline {}", pipeline_path.display()))?;
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
