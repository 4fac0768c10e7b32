//! The `pipeline` job: process the config's `[input]` through its pipeline and leave every stage's
//! output, the result and a report in a new run directory (never an existing one).

use crate::config::{parse_table, LoadedConfig};
use crate::imageio;
use crate::pipeline::Pipeline;
use crate::plugins::Registry;
use crate::run::chart::{self, ChartCamera};
use crate::train::config::default_output_dir;
use anyhow::{anyhow, Context, Result};
use indicatif::ProgressStyle;
use l2l_plugin_api::{CfaPattern, RawMetadata};
use serde::Deserialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

/// `[job] kind = "pipeline"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineJobConfig {
    /// Parent of the run directories, relative to the working directory.
    #[serde(default = "default_output_dir")]
    pub output_dir: PathBuf,
    /// Run directories are named `NAME-N`.
    #[serde(default = "default_run_name")]
    pub name: String,
}

fn default_run_name() -> String {
    "run".into()
}

/// Where a `pipeline` job's raw mosaic comes from.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum InputConfig {
    /// A synthetic colour chart with exact ground truth, taken back through a camera model.
    TestChart {
        /// Height in pixels.
        #[serde(default = "default_chart_height")]
        height: i64,
        /// Width in pixels.
        #[serde(default = "default_chart_width")]
        width: i64,
        /// The simulated sensor's CFA layout.
        #[serde(default = "default_cfa")]
        cfa_pattern: CfaPattern,
        /// The simulated camera's black level per CFA position.
        #[serde(default)]
        black_level: [f32; 4],
        /// The white-balance gains the camera's processing would apply.
        #[serde(default = "unit_gains")]
        white_balance: [f32; 3],
        /// Camera RGB → linear sRGB of the simulated camera.
        #[serde(default = "identity_matrix")]
        colour_matrix: [[f32; 3]; 3],
        /// The display gamma of the ground truth.
        #[serde(default = "default_gamma")]
        gamma: f32,
        /// The simulated sensor's bit depth (quantisation).
        #[serde(default = "default_bit_depth")]
        bit_depth: u32,
    },
    /// A raw file: `.npy`, 16-bit TIFF, or anything rawloader reads.
    File {
        /// The file, relative to the config file.
        path: PathBuf,
        /// Divide integer samples by this (default: the file's own, or the type's maximum).
        #[serde(default)]
        white_level: Option<f64>,
    },
}

fn default_chart_height() -> i64 {
    256
}
fn default_chart_width() -> i64 {
    384
}
fn default_cfa() -> CfaPattern {
    CfaPattern::Rggb
}
fn unit_gains() -> [f32; 3] {
    [1.0; 3]
}
fn identity_matrix() -> [[f32; 3]; 3] {
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
}
fn default_gamma() -> f32 {
    2.2
}
fn default_bit_depth() -> u32 {
    14
}

/// A raw mosaic `[1, 1, H, W]` and, where known, the image the processing should produce.
pub struct PreparedInput {
    /// The mosaic batch.
    pub mosaic: Tensor,
    /// Ground truth `[3, H, W]`, for a synthetic input.
    pub truth: Option<Tensor>,
    /// The camera's parameters, where the input has them (the chart's camera, a raw file's tags).
    pub metadata: Option<RawMetadata>,
}

/// Reads or synthesises the config's `[input]` onto `device`.
pub fn prepare_input(loaded: &LoadedConfig, device: Device) -> Result<PreparedInput> {
    let table = loaded
        .config
        .input
        .as_ref()
        .ok_or_else(|| anyhow!("config: missing table `[input]`"))?;
    synthesise(parse_table(table, "input")?, |path| loaded.resolve(path), device)
}

/// Reads or synthesises `input` onto `device`; `resolve` places a relative file path (the workbench
/// synthesises the default chart with it too).
pub fn synthesise(input: InputConfig, resolve: impl Fn(&Path) -> PathBuf, device: Device) -> Result<PreparedInput> {
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
                cfa_pattern,
                black_level,
                white_balance,
                colour_matrix,
                gamma,
                bit_depth,
            };
            let (raw, truth) =
                chart::photograph(&chart::scene(height, width)?, &camera).context("config key `input`")?;
            (raw, Some(truth), Some(camera.metadata()))
        }
        InputConfig::File { path, white_level } => {
            let raw = imageio::read_raw_input(&resolve(&path), white_level)?;
            (raw.mosaic, None, raw.metadata)
        }
    };
    Ok(PreparedInput {
        mosaic: mosaic.f_view([1, 1, -1, mosaic.size()[1]])?.f_to_device(device)?,
        truth,
        metadata,
    })
}

/// Runs a pipeline job; returns the run directory.
pub fn run(loaded: &LoadedConfig, registry: &Registry, job: &PipelineJobConfig) -> Result<PathBuf> {
    let device = loaded.device()?;
    let mut pipeline = Pipeline::build_for_inference(registry, &loaded.pipeline()?.stages, device)?;
    let input = prepare_input(loaded, device)?;
    pipeline.set_camera(input.metadata.as_slice())?;
    let run_dir = crate::tracking::create_run_dir(&job.output_dir, &job.name)?;
    tracing::info!(run_dir = %run_dir.display(), ?device, "pipeline job");
    imageio::write_atomically(&run_dir.join("config.toml"), |out| {
        Ok(out.write_all(toml::to_string(&loaded.resolved)?.as_bytes())?)
    })?;

    let progress = crate::console::progress_bar(pipeline.stages().len() as u64)
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
