//! The subcommands that compute: `run` (and `--resume`), `validate`, `process`, `export`, `bench`.

use super::args::{ConfigArgs, RunArgs};
use super::setup::{load_config, load_plan, registry_for};
use anyhow::{anyhow, bail, Context, Result};
use l2l_host::config::{self, PipelineSpec};
use l2l_host::data::datasets;
use l2l_host::device::compute_device;
use l2l_host::export::ExportFormat;
use l2l_host::pipeline::Pipeline;
use l2l_host::predict::PredictOptions;
use l2l_host::run::{Job, JobPlan};
use l2l_host::train::checkpoint;
use l2l_host::train::context::JobContext;
use l2l_host::{bench, imageio, run};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `run CONFIG` or `run --resume RUN_DIR`.
pub fn run(args: RunArgs) -> Result<()> {
    if let Some(run_dir) = args.resume {
        let plan = JobPlan::new(config::load_run(&run_dir)?)?;
        let registry = registry_for(&plan);
        let run_dir = run::resume(&run_dir, &plan, &registry, args.allow_config_change)?;
        println!("run finished: {}", run_dir.display());
        return Ok(());
    }
    let config = args
        .config
        .ok_or_else(|| anyhow!("a config is needed (or --resume RUN_DIR)"))?;
    let (plan, registry) = load_plan(&ConfigArgs {
        config,
        overrides: args.overrides,
    })?;
    let run_dir = run::run(&plan, &registry)?;
    println!("run finished: {}", run_dir.display());
    let report = run_dir.join("report.md");
    if report.exists() {
        println!("report: {}", report.display());
    }
    Ok(())
}

/// `validate CONFIG`: every key, the job's table, the pipeline built (stages that fit together), the
/// dataset opened and the task model built.
pub fn validate(args: &ConfigArgs) -> Result<()> {
    let (plan, registry) = load_plan(args)?;
    let (loaded, job) = (&plan.loaded, &plan.job);
    // what a run would refuse: a device this machine cannot compute on
    loaded.device()?;
    let pipeline = loaded.pipeline()?;
    Pipeline::build(&registry, &pipeline.stages, tch::Device::Cpu)?;
    if let Some(job) = job {
        job.check(loaded, &registry)?;
    }
    println!(
        "{}: valid ({} stages: {})",
        args.config.display(),
        pipeline.stages.len(),
        pipeline.names().join(" → ")
    );
    if let Some(job) = job {
        println!("  job: {} (every pipeline it names builds)", job.kind());
    }
    let mut outputs = None;
    if let Some(spec) = loaded.dataset_spec()? {
        let dataset = match job
            .as_ref()
            .filter(|j| !matches!(j, Job::Pipeline(_)) && loaded.config.task_model.is_some())
        {
            // a training job: its trainings are tried against the data set, opened as the run opens it
            Some(job) => {
                let context = JobContext::new(loaded, &registry, job.kind())?;
                let tried = job.check_with_data(&context)?;
                println!("  trainings: {tried}, each tried on two samples (processing → untrained task model)");
                context.dataset
            }
            None => Arc::new(datasets::open(&registry, &spec, &[])?),
        };
        println!("  dataset: {}, {} samples", dataset.label(), dataset.len());
        outputs = Some(dataset.class_names().map_or(1, |names| names.len()));
    }
    if let Some(model) = loaded.task_model_spec()? {
        // without a data set, a two-class head: what is checked is the network and its weights
        let outputs = outputs.unwrap_or(2);
        registry.build_task_model(
            &model.kind,
            model.plugin.as_deref(),
            &model.config,
            outputs,
            "config key `task_model`",
        )?;
        println!("  task model: `{}` for {outputs} output(s)", model.kind);
    }
    Ok(())
}

/// `process CONFIG --input RAW --output OUT [--until STAGE] [--state CHECKPOINT]`.
pub fn process(
    args: &ConfigArgs,
    input: &Path,
    output: &Path,
    png_bits: u8,
    white_level: Option<f64>,
    until: Option<&str>,
    state: Option<&Path>,
) -> Result<()> {
    let (loaded, registry) = load_config(args)?;
    let device = loaded.device()?;
    let full = loaded.pipeline()?;
    let spec = match until {
        Some(last) => full.until(last)?,
        None => full.clone(),
    };
    let mut pipeline = Pipeline::build_for_inference(&registry, &spec.stages, device)?;
    if let Some(file) = state {
        let state = learned_state(file, &full, &spec).with_context(|| format!("--state {}", file.display()))?;
        pipeline
            .load_state(&state)
            .with_context(|| format!("--state {}", file.display()))?;
    }
    let raw = imageio::read_raw_input(input, white_level)?;
    pipeline.set_camera(raw.metadata.as_slice())?;
    let size = raw.mosaic.size();
    let mosaic = raw.mosaic.f_view([1, 1, size[0], size[1]])?.f_to_device(device)?;
    let result = tch::no_grad(|| pipeline.forward(&mosaic))?;
    imageio::write_image(output, &result.f_get(0)?, png_bits)?;
    println!("wrote {}", output.display());
    Ok(())
}

/// The entries of checkpoint `file` for the stages of `run` (a prefix of `full` with `--until`); an
/// entry naming no stage of `full` means the checkpoint belongs to another pipeline.
fn learned_state(file: &Path, full: &PipelineSpec, run: &PipelineSpec) -> Result<Vec<(String, tch::Tensor)>> {
    let state = checkpoint::pipeline_state(file)?;
    let stage_of = |entry: &str| entry.split_once('.').map(|(stage, _)| stage.to_string());
    if let Some((entry, _)) = state
        .iter()
        .find(|(entry, _)| !stage_of(entry).is_some_and(|s| full.names().contains(&s.as_str())))
    {
        bail!(
            "tensor `{entry}` names no stage of this pipeline (stages: {})",
            full.names().join(", ")
        );
    }
    Ok(state
        .into_iter()
        .filter(|(entry, _)| stage_of(entry).is_some_and(|s| run.names().contains(&s.as_str())))
        .collect())
}

/// `process` writing over its own raw input would destroy it before the user notices; any other
/// existing file is the user's too, replaced only with `--force`.
pub fn refuse_overwriting(input: &Path, output: &Path, force: bool) -> Result<()> {
    let canonical = |path: &Path| -> Option<PathBuf> {
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Some(parent.canonicalize().ok()?.join(path.file_name()?))
    };
    let same = match (input.canonicalize().ok(), canonical(output)) {
        (Some(input), Some(output)) => input == output || output.canonicalize().is_ok_and(|o| o == input),
        _ => false,
    };
    if same {
        anyhow::bail!(
            "--output {}: that is the raw input; choose another output file",
            output.display()
        );
    }
    if !force && output.exists() {
        anyhow::bail!(
            "--output {}: the file exists; pass --force to replace it",
            output.display()
        );
    }
    Ok(())
}

/// `predict CONFIG [--checkpoint RUN_DIR] (--input … | --split …) --output FILE`.
pub fn predict(args: &ConfigArgs, options: &PredictOptions) -> Result<()> {
    let (loaded, registry) = load_config(args)?;
    let written = l2l_host::predict::predict(&loaded, &registry, options)?;
    let score = match (written.score, written.class_names.is_empty()) {
        (Some(score), false) => format!(" (accuracy {score:.4} where the truth is known)"),
        (Some(score), true) => format!(" (mean IoU per image {score:.4})"),
        (None, _) => String::new(),
    };
    println!(
        "predicted {} samples with {}{score}: {}",
        written.samples.len(),
        written.model,
        options.output.display()
    );
    println!("  processing: {}", written.processing);
    Ok(())
}

/// `export --pipelines … --input … --output DIR`.
pub fn export(
    pipelines: &[PathBuf],
    input: &[PathBuf],
    output: &Path,
    format: ExportFormat,
    white_level: Option<f64>,
    device: &str,
) -> Result<()> {
    let device = compute_device(device)?;
    let started = std::time::Instant::now();
    let summary = l2l_host::export::export(pipelines, input, output, format, white_level, device)?;
    println!(
        "exported {} files ({} already there, {} stage runs shared) into {} in {:.1} s",
        summary.written,
        summary.skipped,
        summary.shared_stage_runs,
        output.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `bench --pipelines …` or `bench --task-model CONFIG`.
#[allow(clippy::too_many_arguments)]
pub fn bench(
    pipelines: &[PathBuf],
    task_model: Option<&Path>,
    classes: usize,
    size: i64,
    batch: i64,
    iterations: usize,
    device: &str,
    json: Option<&Path>,
) -> Result<()> {
    let options = bench::BenchOptions {
        size,
        batch,
        iterations,
        device: compute_device(device)?,
    };
    println!(
        "{batch} × {size}² on {:?}, {} libtorch threads, median of {iterations}",
        options.device,
        tch::get_num_threads()
    );
    if let Some(config) = task_model {
        let loaded = config::load(config, &[])?;
        let registry = l2l_host::plugins::Registry::discover(&loaded.plugin_dirs());
        let spec = loaded
            .task_model_spec()?
            .ok_or_else(|| anyhow!("{}: no [task_model] table", config.display()))?;
        let ms = bench::bench_task_model(&registry, &spec, classes, &options)?;
        println!(
            "task model `{}` training step: {ms:.1} ms ({:.1} images/s)",
            spec.kind,
            batch as f64 / ms * 1e3
        );
        return Ok(());
    }
    let rows = bench::bench(pipelines, &options)?;
    print!("{}", bench::format_table(&rows));
    if let Some(path) = json {
        imageio::write_atomically(path, |out| Ok(serde_json::to_writer_pretty(out, &rows)?))?;
    }
    Ok(())
}
