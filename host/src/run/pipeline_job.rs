//! `l2l-host run`: the jobs a config describes. For now one kind, `pipeline`: process the input
//! through the pipeline and leave every stage's output, the result and a report in a new run
//! directory (never an existing one).

use crate::chart::{self, ChartCamera};
use crate::config::{InputConfig, JobConfig, LoadedConfig};
use crate::imageio;
use crate::pipeline::Pipeline;
use crate::plugins::Registry;
use anyhow::{anyhow, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use l2l_plugin_api::RawMetadata;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

/// A raw mosaic `[1, 1, H, W]` and, where known, the image the processing should produce.
pub struct PreparedInput {
    /// The mosaic batch.
    pub mosaic: Tensor,
    /// Ground truth `[3, H, W]`, for a synthetic input.
    pub truth: Option<Tensor>,
    /// The camera's parameters, where the input has them (the chart's camera, a raw file's tags).
    pub metadata: Option<RawMetadata>,
}

/// Reads or synthesises the config's `input` onto `device`.
pub fn prepare_input(loaded: &LoadedConfig, device: Device) -> Result<PreparedInput> {
    let input = loaded
        .config
        .input
        .as_ref()
        .ok_or_else(|| anyhow!("config: missing table `[input]`"))?;
    let (mosaic, truth, metadata) = match input {
        InputConfig::TestChart {
            height,
            width,
            cfa_pattern,
            black_level,
            white_balance,
            colour_matrix,
            gamma,
            bit_depth,
        } => {
            let camera = ChartCamera {
                cfa_pattern: *cfa_pattern,
                black_level: *black_level,
                white_balance: *white_balance,
                colour_matrix: *colour_matrix,
                gamma: *gamma,
                bit_depth: *bit_depth,
            };
            let (raw, truth) =
                chart::photograph(&chart::scene(*height, *width)?, &camera).context("config key `input`")?;
            (raw, Some(truth), Some(camera.metadata()))
        }
        InputConfig::File { path, white_level } => {
            let raw = imageio::read_raw_input(&loaded.resolve(path), *white_level)?;
            (raw.mosaic, None, raw.metadata)
        }
    };
    Ok(PreparedInput {
        mosaic: mosaic.f_view([1, 1, -1, mosaic.size()[1]])?.f_to_device(device)?,
        truth,
        metadata,
    })
}

/// Runs the config's job; returns the run directory.
pub fn run(loaded: &LoadedConfig, registry: &Registry) -> Result<PathBuf> {
    let job = loaded
        .config
        .job
        .as_ref()
        .ok_or_else(|| anyhow!("config: missing table `[job]`"))?;
    match job {
        JobConfig::Pipeline { output_dir, name } => run_pipeline(loaded, registry, output_dir, name),
        JobConfig::Train(train) => crate::train::train(loaded, registry, train, None),
        JobConfig::DriftSynthesis(job) => crate::experiments::drift_synthesis(loaded, registry, job),
        JobConfig::Forensics(job) => crate::experiments::forensics(loaded, registry, job),
        JobConfig::Optimisation(job) => crate::experiments::optimisation(loaded, registry, job),
        JobConfig::Experiments(suite) => crate::experiments::suite(loaded, registry, suite),
    }
}

fn run_pipeline(loaded: &LoadedConfig, registry: &Registry, output_dir: &Path, name: &str) -> Result<PathBuf> {
    let device = loaded.device()?;
    let mut pipeline = Pipeline::build(registry, &loaded.stage_specs()?, device)?;
    let input = prepare_input(loaded, device)?;
    pipeline.set_camera(input.metadata.as_slice())?;
    let run_dir = crate::tracking::create_run_dir(output_dir, name)?;
    tracing::info!(run_dir = %run_dir.display(), ?device, "pipeline job");
    imageio::write_atomically(&run_dir.join("config.toml"), |out| {
        Ok(out.write_all(toml::to_string(&loaded.resolved)?.as_bytes())?)
    })?;

    let progress = ProgressBar::new(pipeline.stages().len() as u64)
        .with_style(ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} stages")?.progress_chars("=> "));
    let outputs = tch::no_grad(|| {
        pipeline.forward_traced(&input.mosaic, |stage| {
            progress.set_message(stage.to_string());
            progress.inc(1);
        })
    })?;
    progress.finish_and_clear();

    let stage_dir = run_dir.join("stages");
    std::fs::create_dir(&stage_dir)?;
    imageio::write_image(&stage_dir.join("00-input.png"), &input.mosaic.f_get(0)?, 8)?;
    let mut report = String::from(
        "# Pipeline run\n\n| # | stage | output shape | min | max | mean | ms |\n|---|---|---|---|---|---|---|\n",
    );
    for (index, stage) in outputs.iter().enumerate() {
        let image = stage.output.f_get(0)?;
        let file = format!("{:02}-{}.png", index + 1, stage.name);
        imageio::write_image(&stage_dir.join(&file), &image, 8)?;
        writeln!(
            report,
            "| {} | [{}](stages/{file}) | {:?} | {:.4} | {:.4} | {:.4} | {:.2} |",
            index + 1,
            stage.name,
            stage.output.size(),
            image.f_min()?.f_double_value(&[])?,
            image.f_max()?.f_double_value(&[])?,
            image.f_mean(tch::Kind::Float)?.f_double_value(&[])?,
            stage.millis
        )?;
    }
    let result = outputs
        .last()
        .map(|o| o.output.f_get(0))
        .transpose()?
        .unwrap_or(input.mosaic.f_get(0)?);
    imageio::write_image(&run_dir.join("output.png"), &result, 16)?;
    let mut summary = serde_json::json!({
        "stages": outputs.iter().map(|o| serde_json::json!({"name": o.name, "ms": o.millis})).collect::<Vec<_>>(),
    });
    if let Some(truth) = &input.truth {
        imageio::write_image(&run_dir.join("ground_truth.png"), truth, 16)?;
        let psnr = chart::psnr(&result.f_to_device(Device::Cpu)?, truth, 8)?;
        summary["psnr_db"] = serde_json::json!(psnr);
        writeln!(
            report,
            "\nPSNR against the chart's ground truth (8-pixel border excluded): **{psnr:.2} dB**\n"
        )?;
        writeln!(
            report,
            "| output | ground truth |\n|---|---|\n| ![output](output.png) | ![truth](ground_truth.png) |"
        )?;
    } else {
        writeln!(report, "\n![output](output.png)")?;
    }
    imageio::write_atomically(&run_dir.join("summary.json"), |out| {
        Ok(serde_json::to_writer_pretty(out, &summary)?)
    })?;
    imageio::write_atomically(&run_dir.join("report.md"), |out| Ok(out.write_all(report.as_bytes())?))?;
    Ok(run_dir)
}
