//! `predict`: what a task model says about raw files or about a data set's samples, through a
//! config's processing — per sample the logits and probabilities of every class (classification), or
//! a mask PNG and the image's IoU (segmentation), as CSV or JSON.
//!
//! The model is a training run's (`--checkpoint RUN_DIR`, fold `--fold`; the run's `[task_model]`, and
//! its data set where the config names none) or, without one, the config's `[task_model]` as it is
//! built (its `weights`: a pretrained network). When the config's pipeline is
//! the one the run trained behind, the run's learned processing state is applied too; any other
//! pipeline runs as configured (a drift test) and the output says so.

use crate::config::{self, LoadedConfig, PipelineSpec};
use crate::data::{Loader, LoaderOptions};
use crate::imageio;
use crate::pipeline::Pipeline;
use crate::plugins::Registry;
use crate::run::Job;
use crate::train::checkpoint;
use crate::train::context::JobContext;
use crate::train::metrics::{Accumulator, Task};
use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// Which samples of the data set to predict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SplitChoice {
    /// The samples the fold trained on.
    Train,
    /// The samples the fold validated on.
    Validation,
    /// The run's held-out test part (`test_fraction`).
    Test,
    /// Every sample.
    All,
}

/// What to predict on.
#[derive(Debug, Clone)]
pub enum Inputs {
    /// Raw files (everything `process` reads), each with the camera its file carries.
    Files(Vec<PathBuf>),
    /// Samples of the config's data set, with their truth.
    Split(SplitChoice),
}

/// A `predict` call.
#[derive(Debug, Clone)]
pub struct PredictOptions {
    /// A training run directory whose fold's task model (and learned processing) to use.
    pub checkpoint: Option<PathBuf>,
    /// The fold of the run.
    pub fold: usize,
    /// Files or a split.
    pub inputs: Inputs,
    /// `.csv` or `.json`; segmentation masks go to `STEM_masks/` beside it.
    pub output: PathBuf,
    /// Replace an existing output.
    pub force: bool,
}

/// One sample's prediction.
#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    /// The file, or the sample's index in the data set.
    pub sample: String,
    /// The true class (classification on a data set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truth: Option<String>,
    /// The most probable class (classification).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicted: Option<String>,
    /// One logit per class (classification).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logits: Vec<f64>,
    /// Softmax of the logits (classification).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub probabilities: Vec<f64>,
    /// The mask PNG written (segmentation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask: Option<PathBuf>,
    /// Fraction of the image predicted as foreground (segmentation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub foreground: Option<f64>,
    /// IoU of the mask with the truth; 1 when both are empty (segmentation on a data set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iou: Option<f64>,
}

/// The file `predict` writes as JSON (the CSV holds the samples only).
#[derive(Debug, Clone, Serialize)]
pub struct PredictionFile {
    /// The run directory and fold, or the config's task model.
    pub model: String,
    /// Whose processing ran: the trained state, or the config's pipeline as configured.
    pub processing: String,
    /// The classes, in logit order (empty for segmentation).
    pub class_names: Vec<String>,
    /// Accuracy over the samples with truth (classification), or their mean IoU (segmentation).
    pub score: Option<f64>,
    /// Per sample.
    pub samples: Vec<Prediction>,
}

/// Runs `predict` and writes its output; returns what was written.
pub fn predict(loaded: &LoadedConfig, registry: &Registry, options: &PredictOptions) -> Result<PredictionFile> {
    let format = OutputFormat::of(&options.output)?;
    let masks_dir = masks_dir(&options.output);
    refuse_overwriting(&options.output, &masks_dir, options.force)?;
    let run = options.checkpoint.as_deref().map(config::load_run).transpose()?;
    let merged = with_run_components(loaded, run.as_ref())?;
    let context = JobContext::new(&merged, registry, "predict")?;
    let spec = loaded.pipeline()?;
    let mut processing = Pipeline::build(registry, &spec.stages, context.device)?;
    let (mut model, processing_note, model_note, splits_config) = match (&options.checkpoint, &run) {
        (Some(run_dir), Some(run)) => {
            let file = run_dir
                .join("checkpoints")
                .join(format!("fold{}.safetensors", options.fold));
            if !file.exists() {
                bail!(
                    "--fold {}: {} has no model for that fold ({} missing)",
                    options.fold,
                    run_dir.display(),
                    file.display()
                );
            }
            let model = context.trained_model(run_dir, options.fold)?;
            let note = if same_processing(&run.pipeline()?, &spec) {
                processing.load_state(&checkpoint::section(&checkpoint::load(&file)?, "processor"))?;
                "the pipeline the model trained behind, with its learned state".to_string()
            } else {
                format!(
                    "{}'s pipeline as configured (not the one the model trained behind)",
                    loaded.path.display()
                )
            };
            let Job::Train(train) = Job::of(run)? else {
                bail!("{}: not a training run", run_dir.display())
            };
            (
                model,
                note,
                format!("{} fold {}", run_dir.display(), options.fold),
                Some(train),
            )
        }
        _ => {
            let mut model = context.build_model("task model")?;
            model.set_train(false)?;
            (
                model,
                format!("{}'s pipeline as configured", loaded.path.display()),
                format!("{}'s [task_model]", loaded.path.display()),
                None,
            )
        }
    };
    processing.set_train(false)?;
    let class_names: Vec<String> = match &context.task {
        Task::Classification { class_names } => class_names.clone(),
        Task::Segmentation => Vec::new(),
    };
    let mut samples = Vec::new();
    // masks are written beside the output's final folder and moved there once all are written, so
    // an old prediction's masks (`--force`) never mix with the new ones
    let staging = masks_dir.with_file_name(format!(
        ".{}.partial",
        masks_dir.file_name().unwrap_or_default().to_string_lossy()
    ));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).with_context(|| format!("removing {}", staging.display()))?;
    }
    let mut mask_names = std::collections::BTreeSet::new();
    let mut predict_batch = |raw: &Tensor,
                             cameras: &[l2l_plugin_api::RawMetadata],
                             names: Vec<String>,
                             truth: Option<&Tensor>|
     -> Result<()> {
        let logits = tch::no_grad(|| -> Result<Tensor> {
            processing.set_camera(cameras)?;
            model.forward(&processing.forward(&raw.f_to_device(context.device)?)?)
        })?
        .f_to_device(tch::Device::Cpu)?;
        for (row, name) in names.into_iter().enumerate() {
            let truth = truth.map(|t| t.f_get(row as i64)).transpose()?;
            let mask = MaskFile::new(&name, &mut mask_names, &staging, &masks_dir);
            samples.push(describe(
                &context.task,
                &logits.f_get(row as i64)?,
                truth.as_ref(),
                name,
                &mask,
            )?);
        }
        Ok(())
    };
    match &options.inputs {
        Inputs::Files(files) => {
            for file in files {
                let raw = imageio::read_raw_input(file, None)?;
                let size = raw.mosaic.size();
                predict_batch(
                    &raw.mosaic.f_view([1, 1, size[0], size[1]])?,
                    raw.metadata.as_slice(),
                    vec![file.display().to_string()],
                    None,
                )?;
            }
        }
        Inputs::Split(choice) => {
            let indices = split_indices(&context, *choice, splits_config.as_ref(), options.fold)?;
            let loader_options = LoaderOptions {
                batch_size: 8,
                ..LoaderOptions::default()
            };
            for batch in Loader::new(context.dataset.clone(), indices, &loader_options)? {
                let batch = batch?;
                let names = batch.indices.iter().map(|i| i.to_string()).collect();
                predict_batch(&batch.raw, &batch.cameras, names, Some(&batch.target))?;
            }
        }
    }
    let scored: Vec<f64> = samples
        .iter()
        .filter_map(|s| match (&s.truth, &s.predicted, s.iou) {
            (Some(truth), Some(predicted), _) => Some(f64::from(u8::from(truth == predicted))),
            (_, _, iou) => iou,
        })
        .collect();
    let score = (!scored.is_empty()).then(|| scored.iter().sum::<f64>() / scored.len() as f64);
    if staging.exists() {
        if masks_dir.exists() {
            std::fs::remove_dir_all(&masks_dir)
                .with_context(|| format!("removing the earlier masks {} (--force)", masks_dir.display()))?;
        }
        std::fs::rename(&staging, &masks_dir)
            .with_context(|| format!("renaming {} to {}", staging.display(), masks_dir.display()))?;
    }
    let file = PredictionFile {
        model: model_note,
        processing: processing_note,
        class_names,
        score,
        samples,
    };
    match format {
        OutputFormat::Json => imageio::write_json(&options.output, &file)?,
        OutputFormat::Csv => {
            imageio::write_atomically(&options.output, |out| Ok(out.write_all(to_csv(&file).as_bytes())?))?
        }
    }
    Ok(file)
}

/// The config with the run's task model (its checkpoint fits no other) and, where the config has
/// none, the run's data set — their paths already resolved against the run's own config.
fn with_run_components(loaded: &LoadedConfig, run: Option<&LoadedConfig>) -> Result<LoadedConfig> {
    let mut merged = loaded.clone();
    let Some(run) = run else { return Ok(merged) };
    merged.config.task_model = Some(
        run.task_model_spec()?
            .ok_or_else(|| anyhow!("the run's config has no [task_model]"))?
            .to_table(),
    );
    if merged.config.dataset.is_none() {
        merged.config.dataset = run.dataset_spec()?.map(|spec| spec.to_table());
    }
    Ok(merged)
}

/// Whether two pipelines are the same stages with the same settings.
fn same_processing(trained: &PipelineSpec, configured: &PipelineSpec) -> bool {
    trained.stages == configured.stages
}

/// The samples of `choice`: a replicate's train or validation part or the test part, drawn as the run
/// drew them.
fn split_indices(
    context: &JobContext,
    choice: SplitChoice,
    run: Option<&crate::train::config::TrainConfig>,
    fold: usize,
) -> Result<Vec<usize>> {
    if choice == SplitChoice::All {
        return Ok((0..context.dataset.len()).collect());
    }
    let run = run.ok_or_else(|| anyhow!("--split {choice:?}: which samples a fold held out is a training run's; give --checkpoint RUN_DIR (or --split all)"))?;
    let splits = context.splits(run)?;
    let split = splits.get(fold).ok_or_else(|| {
        anyhow!(
            "--fold {fold}: the run has {} models (folds × training seeds)",
            splits.len()
        )
    })?;
    Ok(match choice {
        SplitChoice::Train => split.train.clone(),
        SplitChoice::Test if split.test.is_empty() => {
            bail!("--split test: the run held out no test part (its `test_fraction` is 0)")
        }
        SplitChoice::Test => split.test.clone(),
        _ => split.validation.clone(),
    })
}

/// Where one sample's mask is written first, and where it ends up.
struct MaskFile {
    staged: PathBuf,
    kept: PathBuf,
}

impl MaskFile {
    /// The mask of `sample`, named after its file stem (letters, digits, `-`, `_`); a stem already
    /// taken (two inputs of one name in different folders) gets `-2`, `-3`, … so no mask replaces
    /// another.
    fn new(sample: &str, taken: &mut std::collections::BTreeSet<String>, staging: &Path, masks_dir: &Path) -> MaskFile {
        let file = sample.rsplit(['/', '\\']).next().unwrap_or("sample");
        let stem = Path::new(file).file_stem().map_or(file.into(), |s| s.to_string_lossy());
        let stem: String = stem
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let name = (1..)
            .map(|n| if n == 1 { stem.clone() } else { format!("{stem}-{n}") })
            .find(|n| !taken.contains(n))
            .unwrap_or(stem);
        taken.insert(name.clone());
        MaskFile {
            staged: staging.join(format!("{name}.png")),
            kept: masks_dir.join(format!("{name}.png")),
        }
    }
}

/// One sample's row from its logits (`[classes]` or `[1, H, W]`) and truth.
fn describe(
    task: &Task,
    logits: &Tensor,
    truth: Option<&Tensor>,
    sample: String,
    mask: &MaskFile,
) -> Result<Prediction> {
    let mut prediction = Prediction {
        sample,
        truth: None,
        predicted: None,
        logits: Vec::new(),
        probabilities: Vec::new(),
        mask: None,
        foreground: None,
        iou: None,
    };
    match task {
        Task::Classification { class_names } => {
            let logits = logits.f_to_kind(Kind::Double)?;
            prediction.probabilities = Vec::<f64>::try_from(logits.f_softmax(0, Kind::Double)?)?;
            prediction.logits = Vec::<f64>::try_from(&logits)?;
            let best = logits.f_argmax(0, false)?.f_int64_value(&[])? as usize;
            prediction.predicted = Some(class_names[best].clone());
            prediction.truth = truth
                .map(|t| t.f_int64_value(&[]).map(|c| class_names[c as usize].clone()))
                .transpose()?;
        }
        Task::Segmentation => {
            let predicted = logits.f_gt(0.0)?; // [1, H, W]
            let folder = mask.staged.parent().unwrap_or(Path::new("."));
            std::fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
            imageio::write_image(&mask.staged, &predicted.f_to_kind(Kind::Float)?, 8)?;
            prediction.foreground = Some(
                predicted
                    .f_to_kind(Kind::Double)?
                    .f_mean(Kind::Double)?
                    .f_double_value(&[])?,
            );
            prediction.mask = Some(mask.kept.clone());
            if let Some(truth) = truth {
                // the image's intersection and union, as the metrics count them
                let mut accumulator = Accumulator::new(task);
                accumulator.add(&logits.f_unsqueeze(0)?, &truth.f_unsqueeze(0)?, 0.0)?;
                let [intersection, union] = accumulator.outcomes[0];
                prediction.iou = Some(if union > 0.0 { intersection / union } else { 1.0 });
            }
        }
    }
    Ok(prediction)
}

/// The samples as CSV: `sample,truth,predicted,logit_C…,probability_C…` or `sample,mask,foreground,iou`.
fn to_csv(file: &PredictionFile) -> String {
    let optional = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    let mut csv = if file.class_names.is_empty() {
        "sample,mask,foreground,iou\n".to_string()
    } else {
        let logits = file.class_names.iter().map(|c| format!("logit_{c}"));
        let probabilities = file.class_names.iter().map(|c| format!("probability_{c}"));
        format!(
            "sample,truth,predicted,{}\n",
            logits.chain(probabilities).collect::<Vec<_>>().join(",")
        )
    };
    for s in &file.samples {
        let line = if file.class_names.is_empty() {
            let mask = s.mask.as_ref().map(|m| m.display().to_string()).unwrap_or_default();
            format!(
                "{},{mask},{},{}",
                quote(&s.sample),
                optional(s.foreground),
                optional(s.iou)
            )
        } else {
            let numbers = s
                .logits
                .iter()
                .chain(&s.probabilities)
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(",");
            format!(
                "{},{},{},{numbers}",
                quote(&s.sample),
                s.truth.as_deref().unwrap_or(""),
                s.predicted.as_deref().unwrap_or("")
            )
        };
        csv.push_str(&line);
        csv.push('\n');
    }
    csv
}

/// A CSV field, quoted when it holds a comma or a quote.
fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// The output's format, from its extension.
#[derive(Debug, Clone, Copy)]
enum OutputFormat {
    Csv,
    Json,
}

impl OutputFormat {
    fn of(path: &Path) -> Result<OutputFormat> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("csv") => Ok(OutputFormat::Csv),
            Some("json") => Ok(OutputFormat::Json),
            _ => bail!("--output {}: expected a .csv or .json file", path.display()),
        }
    }
}

/// Where a segmentation's mask PNGs go: `STEM_masks/` beside the output.
fn masks_dir(output: &Path) -> PathBuf {
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    output.with_file_name(format!("{stem}_masks"))
}

/// An earlier prediction is the user's: replaced only with `--force`.
fn refuse_overwriting(output: &Path, masks_dir: &Path, force: bool) -> Result<()> {
    if force {
        return Ok(());
    }
    if let Some(existing) = [output, masks_dir].into_iter().find(|p| p.exists()) {
        bail!(
            "--output {}: {} exists; pass --force to replace it",
            output.display(),
            existing.display()
        );
    }
    Ok(())
}
