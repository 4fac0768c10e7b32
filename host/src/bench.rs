//! `l2l-host bench`: throughput of every stage and of whole pipelines, in megapixels per second, on
//! random mosaics of a given size and batch — forward, and forward + backward (the gradient of
//! `mean(output²)` with respect to the input and every trainable parameter) where the stage is
//! differentiable.

use crate::config::PipelineSpec;
use crate::pipeline::Pipeline;
use crate::plugins::{Registry, RemoteModule};
use crate::train::metrics::{loss, Task};
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Image side in pixels (square images).
    pub size: i64,
    /// Images per batch.
    pub batch: i64,
    /// Timed iterations (the median is reported).
    pub iterations: usize,
    /// Where to run.
    pub device: Device,
}

/// One measured row.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchRow {
    /// `pipeline` or `pipeline/stage`.
    pub what: String,
    /// Median milliseconds per forward pass.
    pub forward_ms: f64,
    /// Megapixels per second, forward.
    pub forward_mpix_per_s: f64,
    /// Median milliseconds per forward + backward pass, when differentiable.
    pub backward_ms: Option<f64>,
    /// Megapixels per second, forward + backward.
    pub backward_mpix_per_s: Option<f64>,
}

fn synchronize(device: Device) {
    if let Device::Cuda(index) = device {
        tch::Cuda::synchronize(index as i64);
    }
}

/// Median wall time of `step` in milliseconds, after two warm-up runs.
fn median_ms(iterations: usize, device: Device, mut step: impl FnMut() -> Result<()>) -> Result<f64> {
    step()?;
    step()?;
    synchronize(device);
    let mut times = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let start = Instant::now();
        step()?;
        synchronize(device);
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Sum of squares' mean as the loss, backpropagated: the gradient step a learned pipeline takes.
fn backward_through(output: &Tensor) -> Result<()> {
    output.f_square()?.f_mean(output.kind())?.f_backward()?;
    Ok(())
}

/// Measures every stage of each pipeline (on the output of the stages before it) and each pipeline
/// as a whole.
pub fn bench(pipeline_configs: &[PathBuf], options: &BenchOptions) -> Result<Vec<BenchRow>> {
    let megapixels = (options.batch * options.size * options.size) as f64 / 1e6;
    let row = |what: String, forward_ms: f64, backward_ms: Option<f64>| BenchRow {
        what,
        forward_ms,
        forward_mpix_per_s: megapixels / (forward_ms / 1e3),
        backward_ms,
        backward_mpix_per_s: backward_ms.map(|ms| megapixels / (ms / 1e3)),
    };
    let mut rows = Vec::new();
    for path in pipeline_configs {
        let spec = PipelineSpec::load(path)?;
        let registry = Registry::discover(&spec.plugin_dirs);
        // timed as export and `process` run it
        let mut pipeline = Pipeline::build_for_inference(&registry, &spec.stages, options.device)?;
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("pipeline")
            .to_string();
        tch::manual_seed(0);
        let mosaic = Tensor::f_rand(
            [options.batch, 1, options.size, options.size],
            (Kind::Float, options.device),
        )?
        .f_mul_scalar(0.9)?
        .f_add_scalar(0.07)?;
        let mut input = mosaic.shallow_clone();
        let differentiable = pipeline.parameters()?.iter().any(|p| p.trainable);
        for (stage_name, stage) in pipeline.stages_mut() {
            let forward = median_ms(options.iterations, options.device, || {
                tch::no_grad(|| stage.forward(&input)).map(drop)
            })?;
            let x = input.f_detach()?.set_requires_grad(true);
            let backward = median_ms(options.iterations, options.device, || {
                backward_through(&stage.forward(&x)?)
            })
            .with_context(|| format!("backward through stage `{stage_name}`"))?;
            rows.push(row(format!("{name}/{stage_name}"), forward, Some(backward)));
            input = tch::no_grad(|| stage.forward(&input))?;
        }
        let forward = median_ms(options.iterations, options.device, || {
            tch::no_grad(|| pipeline.forward(&mosaic)).map(drop)
        })?;
        let backward = if differentiable {
            let x = mosaic.f_detach()?.set_requires_grad(true);
            Some(median_ms(options.iterations, options.device, || {
                backward_through(&pipeline.forward(&x)?)
            })?)
        } else {
            None
        };
        rows.push(row(name, forward, backward));
    }
    Ok(rows)
}

/// The rows as an aligned table.
pub fn format_table(rows: &[BenchRow]) -> String {
    let mut out = format!(
        "{:<60} {:>10} {:>10} {:>12} {:>12}\n",
        "stage / pipeline", "fwd ms", "fwd MP/s", "fwd+bwd ms", "fwd+bwd MP/s"
    );
    for r in rows {
        let (bms, bmp) = match (r.backward_ms, r.backward_mpix_per_s) {
            (Some(ms), Some(mp)) => (format!("{ms:.2}"), format!("{mp:.1}")),
            _ => ("–".into(), "–".into()),
        };
        out.push_str(&format!(
            "{:<60} {:>10.2} {:>10.1} {:>12} {:>12}\n",
            r.what, r.forward_ms, r.forward_mpix_per_s, bms, bmp
        ));
    }
    out
}

/// A task model's training step — forward, the task's loss against random targets, backward, Adam
/// (lr 1e-4) — on random `batch × 3 × size²` images, as `reference_torch.py resnet18` times it in
/// PyTorch-Python. A network whose output is an image (`[B, C, H, W]`) is a segmentation model: it is
/// built for one mask and trained with the Dice loss on random masks; any other gets `classes` outputs
/// and cross-entropy. Returns the median milliseconds per step.
pub fn bench_task_model(
    registry: &Registry,
    spec: &crate::config::ComponentSpec,
    classes: usize,
    options: &BenchOptions,
) -> Result<f64> {
    let build = |outputs: usize| -> Result<RemoteModule> {
        let mut model =
            registry.build_task_model(&spec.kind, spec.plugin.as_deref(), &spec.config, outputs, "task model")?;
        model.to(options.device, Kind::Float)?;
        model.set_train(true)?;
        Ok(model)
    };
    let x = Tensor::f_rand(
        [options.batch, 3, options.size, options.size],
        (Kind::Float, options.device),
    )?;
    let mut model = build(classes)?;
    let predicts_masks = tch::no_grad(|| model.forward(&x))?.dim() == 4;
    let (task, target) = if predicts_masks {
        model = build(1)?;
        let mask = Tensor::f_randint(
            2,
            [options.batch, options.size, options.size],
            (Kind::Int64, options.device),
        )?;
        (Task::Segmentation, mask)
    } else {
        let class_names = (0..classes).map(|c| c.to_string()).collect();
        (
            Task::Classification { class_names },
            Tensor::f_randint(classes as i64, [options.batch], (Kind::Int64, options.device))?,
        )
    };
    let parameters: Vec<Tensor> = model
        .parameters()?
        .into_iter()
        .filter(|p| p.trainable)
        .map(|p| p.tensor)
        .collect();
    let mut adam =
        crate::train::optim::Adam::new(vec![crate::train::optim::ParameterGroup { parameters, lr: 1e-4 }], 0.0)?;
    median_ms(options.iterations, options.device, || {
        adam.zero_grad();
        loss(&task, &model.forward(&x)?, &target)?.f_backward()?;
        adam.step()
    })
}
