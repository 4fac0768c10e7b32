//! `l2l-host export`: every raw file through every pipeline, one output folder per pipeline — how the
//! published processed data sets are made. Stages that several pipelines share at the same position
//! (same component, same config, same inputs) run once per image; on the CPU, the stages between the
//! outputs later pipelines reuse run band by band when they are row-local ([`crate::bands`]); outputs
//! are encoded on parallel threads and written atomically; files already written by the same pipeline
//! (its stages and configs, the format and white level: `.l2l-producer` in each folder) are skipped, so an
//! interrupted export resumes where it stopped.

pub mod sharing;

use crate::bands;
use crate::config::{PipelineSpec, StageSpec};
use crate::imageio;
use crate::pipeline::Pipeline;
use crate::plugins::Registry;
use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

/// The encodings an export can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// 16-bit RGB PNG.
    Png16,
    /// 8-bit RGB PNG.
    Png8,
    /// float32 RGB TIFF.
    Tiff,
    /// float32 H×W×3 `.npy`.
    Npy,
}

impl ExportFormat {
    fn extension(self) -> &'static str {
        match self {
            ExportFormat::Png16 | ExportFormat::Png8 => "png",
            ExportFormat::Tiff => "tiff",
            ExportFormat::Npy => "npy",
        }
    }
    fn png_bits(self) -> u8 {
        if self == ExportFormat::Png8 {
            8
        } else {
            16
        }
    }
}

/// One pipeline of the export: its name (the config's file stem), its stages, their specs and row
/// reaches ([`crate::plugins::RemoteModule::row_reach`]).
struct NamedPipeline {
    name: String,
    specs: Vec<StageSpec>,
    pipeline: Pipeline,
    row_reaches: Vec<Option<usize>>,
    /// What produces its outputs ([`producer`]), as its folder's record states it once complete.
    producer: String,
    /// Whether the folder's existing outputs were made by this producer (its record says so): only
    /// then does an existing output count as done.
    outputs_current: bool,
    /// Outputs this producer finished, with their sizes in bytes ([`OUTPUTS_RECORD`]).
    finished: HashMap<String, u64>,
}

/// The file in each pipeline's output folder that lists the outputs written whole, one `SIZE NAME`
/// line each, appended as each is renamed into place: an output counts as done only at the size it
/// was written with (a truncated or replaced file is made again).
const OUTPUTS_RECORD: &str = ".l2l-outputs";

/// The outputs a folder's [`OUTPUTS_RECORD`] lists (a line cut short by a kill is ignored).
fn finished_outputs(folder: &Path) -> HashMap<String, u64> {
    let text = std::fs::read_to_string(folder.join(OUTPUTS_RECORD)).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            line.split_once(' ')
                .and_then(|(size, name)| Some((name.to_string(), size.parse().ok()?)))
        })
        .collect()
}

/// Writes `image` to `target` (atomically) and then lists it in its folder's [`OUTPUTS_RECORD`].
fn write_output(target: &Path, image: &Tensor, png_bits: u8) -> Result<()> {
    imageio::write_image(target, image, png_bits)?;
    let size = std::fs::metadata(target)
        .with_context(|| format!("reading {}", target.display()))?
        .len();
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    let record = target.with_file_name(OUTPUTS_RECORD);
    use std::io::Write;
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&record)
        .with_context(|| format!("writing {}", record.display()))?;
    out.write_all(format!("{size} {name}\n").as_bytes())
        .with_context(|| format!("writing {}", record.display()))?;
    Ok(())
}

/// The file in each pipeline's output folder that records what produced its outputs.
const PRODUCER_RECORD: &str = ".l2l-producer";

/// What produced a pipeline's outputs: its stages with their configs, the format and the white level,
/// hashed — an edited pipeline makes its old outputs stale.
/// The record says in words that the stages ran in evaluation mode, as `process` runs them.
fn producer(specs: &[StageSpec], format: ExportFormat, white_level: Option<f64>) -> String {
    use sha2::{Digest, Sha256};
    let text = format!(
        "{}\n{}\n{white_level:?}\n{EXPORT_MODE}",
        prefix_key(specs),
        format.extension()
    );
    let hash: String = Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{hash}\n{EXPORT_MODE}")
}

/// How export runs the stages: a pipeline ending in `normalize` uses its learned (running) statistics,
/// not each image's own — the same output `process` gives for the same raw.
const EXPORT_MODE: &str = "stages in evaluation mode";

/// What an export did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// Files written now.
    pub written: usize,
    /// Files that existed already and were kept.
    pub skipped: usize,
    /// Stage runs saved by sharing prefixes between pipelines.
    pub shared_stage_runs: usize,
}

/// The raw files of `inputs`: files as given, directories searched (not recursively) for raw files.
pub fn collect_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let raw_extensions = [
        "npy", "tif", "tiff", "dng", "cr2", "nef", "arw", "orf", "rw2", "raf", "pef", "srw", "crw", "mrw", "nrw",
        "3fr", "erf", "kdc", "dcr", "mos", "iiq",
    ];
    let mut files = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let (mut found, skipped): (Vec<PathBuf>, Vec<PathBuf>) = std::fs::read_dir(input)
                .with_context(|| format!("reading {}", input.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .partition(|p| {
                    p.extension()
                        .and_then(|e| e.to_str())
                        .is_some_and(|e| raw_extensions.contains(&e.to_ascii_lowercase().as_str()))
                });
            if !skipped.is_empty() {
                let names: Vec<String> = skipped
                    .iter()
                    .filter_map(|p| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
                    .collect();
                tracing::warn!(
                    "{}: skipped {} file(s) that are not raw files ({}): {}",
                    input.display(),
                    names.len(),
                    raw_extensions.join(", "),
                    names.join(", ")
                );
            }
            found.sort();
            files.extend(found);
        } else if input.is_file() {
            files.push(input.clone());
        } else {
            bail!(
                "{}: no such file or directory (expected raw files or folders of them)",
                input.display()
            );
        }
    }
    // outputs are named after the input's stem: two inputs of one stem would overwrite each other
    let mut by_stem: HashMap<String, &PathBuf> = HashMap::new();
    for file in &files {
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(other) = by_stem.insert(stem.clone(), file) {
            bail!(
                "{} and {}: both would be exported as `{stem}` (outputs are named after the input's stem); export them separately or rename one",
                other.display(),
                file.display()
            );
        }
    }
    if files.is_empty() {
        bail!(
            "no raw files found in {}",
            inputs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(files)
}

/// A key naming the first `n` stages of a pipeline: equal keys compute equal outputs.
fn prefix_key(specs: &[StageSpec]) -> String {
    specs
        .iter()
        .map(|s| format!("{}|{}|{}", s.kind, s.plugin.as_deref().unwrap_or(""), s.config))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Outputs being written at once, each on its own thread; each holds its image in memory (144 MB at
/// 12 MP) until written.
const MAX_WRITERS: usize = 4;

/// Waits for `writer` (if any) and counts its output as done.
fn finish_writer(writer: Option<std::thread::ScopedJoinHandle<'_, Result<()>>>, progress: &ProgressBar) -> Result<()> {
    if let Some(writer) = writer {
        writer.join().map_err(|_| anyhow!("an encoder thread panicked"))??;
        progress.inc(1);
    }
    Ok(())
}

/// Runs `p`'s stages from index `from` on `x`, their output so far; puts the outputs of the stages in
/// `keep` into `cache` (under their prefix keys in `keys`) for later pipelines. The stages run in
/// segments ending at those outputs; on the CPU a segment of row-local stages runs band by band
/// ([`bands`]), its intermediate images in cache; a stage that must see the whole image runs alone.
fn run_pipeline_from(
    p: &mut NamedPipeline,
    keys: &[String],
    from: usize,
    mut x: Tensor,
    keep: &BTreeSet<usize>,
    device: Device,
    cache: &mut HashMap<String, Tensor>,
) -> Result<Tensor> {
    let stages = p.pipeline.stages_mut();
    let mut start = from;
    while start < stages.len() {
        let banded = device == Device::Cpu && p.row_reaches[start].is_some();
        let mut end = start + 1;
        while banded && end < stages.len() && p.row_reaches[end].is_some() && !keep.contains(&(end - 1)) {
            end += 1;
        }
        let segment = &mut stages[start..end];
        let started = std::time::Instant::now();
        x = if banded {
            let reach = p.row_reaches[start..end].iter().flatten().sum();
            // the bands are the parallelism: one libtorch thread per operation meanwhile
            let threads = tch::get_num_threads();
            tch::set_num_threads(1);
            let result = bands::run_in_bands(segment, reach, &x, threads.max(1) as usize);
            tch::set_num_threads(threads);
            result?
        } else {
            let (name, stage) = &mut segment[0];
            tch::no_grad(|| crate::pipeline::run_stage(name, stage, &x)).with_context(|| format!("stage `{name}`"))?
        };
        let ms = started.elapsed().as_secs_f64() * 1e3;
        let names: Vec<&str> = segment.iter().map(|(name, _)| name.as_str()).collect();
        tracing::debug!(pipeline = %p.name, stage = %names.join("+"), ms, banded, "stages");
        if keep.contains(&(end - 1)) {
            cache.insert(keys[end - 1].clone(), x.shallow_clone());
        }
        start = end;
    }
    Ok(x)
}

/// Exports `inputs` through the pipelines of `pipeline_configs` into `output/<pipeline>/<input>.<ext>`.
pub fn export(
    pipeline_configs: &[PathBuf],
    inputs: &[PathBuf],
    output: &Path,
    format: ExportFormat,
    white_level: Option<f64>,
    device: Device,
) -> Result<ExportSummary> {
    let files = collect_inputs(inputs)?;
    let loaded = pipeline_configs
        .iter()
        .map(|p| PipelineSpec::load(p))
        .collect::<Result<Vec<_>>>()?;
    let plugin_dirs: Vec<PathBuf> = loaded.iter().flat_map(|l| l.plugin_dirs.clone()).collect();
    let registry = Registry::discover(&plugin_dirs);
    let mut pipelines = Vec::new();
    for (path, l) in pipeline_configs.iter().zip(&loaded) {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| anyhow!("{}: no file name", path.display()))?
            .to_string();
        if pipelines.iter().any(|p: &NamedPipeline| p.name == name) {
            bail!("two pipelines are named `{name}`: output folders are named after the config files");
        }
        let specs = l.stages.clone();
        let mut pipeline = Pipeline::build_for_inference(&registry, &specs, device)
            .with_context(|| format!("pipeline {}", path.display()))?;
        let folder = output.join(&name);
        std::fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
        l2l_rawio::remove_stale_temporaries(&folder).with_context(|| format!("cleaning {}", folder.display()))?;
        // An empty folder is this producer's from the start, so an interrupted export resumes; a folder
        // of another producer's outputs (or of unknown ones) is redone, and its record written only once
        // it is complete, so that an interruption then redoes it again rather than keep stale outputs.
        let producer = producer(&specs, format, white_level);
        let record = folder.join(PRODUCER_RECORD);
        let mut outputs_current = std::fs::read_to_string(&record).is_ok_and(|r| r.trim() == producer);
        if !outputs_current {
            let has_outputs = std::fs::read_dir(&folder)?
                .flatten()
                .any(|e| e.file_name() != PRODUCER_RECORD);
            if has_outputs {
                tracing::warn!(
                    "{}: outputs made by another pipeline, format or white level than {}'s now: they are made again",
                    folder.display(),
                    path.display()
                );
                for stale in [record.clone(), folder.join(OUTPUTS_RECORD)]
                    .iter()
                    .filter(|p| p.exists())
                {
                    std::fs::remove_file(stale).with_context(|| format!("removing {}", stale.display()))?;
                }
            } else {
                imageio::write_atomically(&record, |out| Ok(out.write_all(producer.as_bytes())?))?;
                outputs_current = true;
            }
        }
        let row_reaches = pipeline
            .stages_mut()
            .iter()
            .map(|(_, stage)| stage.row_reach())
            .collect::<Result<_>>()?;
        let finished = if outputs_current {
            finished_outputs(&folder)
        } else {
            HashMap::new()
        };
        pipelines.push(NamedPipeline {
            name,
            specs,
            pipeline,
            row_reaches,
            producer,
            outputs_current,
            finished,
        });
    }

    let progress = crate::console::progress_bar((files.len() * pipelines.len()) as u64).with_style(
        ProgressStyle::with_template("{spinner} {pos}/{len} outputs [{bar:30}] {elapsed_precise} eta {eta} {msg}")?
            .progress_chars("=> "),
    );
    let mut summary = ExportSummary::default();
    for file in &files {
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| anyhow!("{}: no file name", file.display()))?;
        let targets: Vec<PathBuf> = pipelines
            .iter()
            .map(|p| output.join(&p.name).join(format!("{stem}.{}", format.extension())))
            .collect();
        // done: made by this producer, listed as finished, and still the size it was written with
        let done = |i: usize| {
            let name = targets[i].file_name().unwrap_or_default().to_string_lossy();
            let listed = pipelines[i].finished.get(name.as_ref());
            pipelines[i].outputs_current
                && listed.is_some_and(|&size| std::fs::metadata(&targets[i]).is_ok_and(|m| m.len() == size))
        };
        let todo: Vec<usize> = (0..pipelines.len()).filter(|&i| !done(i)).collect();
        summary.skipped += pipelines.len() - todo.len();
        progress.inc((pipelines.len() - todo.len()) as u64);
        if todo.is_empty() {
            continue;
        }
        progress.set_message(stem.to_string());
        let reading = std::time::Instant::now();
        let raw = imageio::read_raw_input(file, white_level)?;
        tracing::debug!(file = %file.display(), ms = reading.elapsed().as_secs_f64() * 1e3, "read");
        for p in &mut pipelines {
            p.pipeline.set_camera(raw.metadata.as_slice())?;
        }
        let size = raw.mosaic.size();
        let mosaic = raw.mosaic.f_view([1, 1, size[0], size[1]])?.f_to_device(device)?;
        // pipelines with a common prefix run one after the other, so what they share is computed once:
        // each starts from the longest prefix of it already computed, kept only while a pipeline still
        // to run starts with it
        let keys: Vec<Vec<String>> = pipelines
            .iter()
            .map(|p| (1..=p.specs.len()).map(|n| prefix_key(&p.specs[..n])).collect())
            .collect();
        let steps = sharing::plan(&keys, &todo);
        let mut cache: HashMap<String, Tensor> = HashMap::new();
        let written = std::thread::scope(|scope| -> Result<usize> {
            let mut writers = VecDeque::with_capacity(steps.len());
            for sharing::SharingStep {
                pipeline: i,
                retain,
                from,
                keep,
            } in &steps
            {
                let (i, from) = (*i, *from);
                cache.retain(|key, _| retain.contains(key));
                summary.shared_stage_runs += from;
                let x = match from {
                    0 => mosaic.shallow_clone(),
                    n => cache[&keys[i][n - 1]].shallow_clone(),
                };
                let p = &mut pipelines[i];
                let x = run_pipeline_from(p, &keys[i], from, x, keep, device, &mut cache)
                    .with_context(|| format!("{}: pipeline {}", file.display(), p.name))?;
                // encoding (PNG compression above all) is the slow part of writing: one thread per output,
                // started as soon as the output is ready
                let image = x.f_get(0)?.f_to_device(Device::Cpu)?;
                let target = &targets[i];
                // at most MAX_WRITERS images wait to be written: each is held in memory until then
                if writers.len() == MAX_WRITERS {
                    finish_writer(writers.pop_front(), &progress)?;
                }
                writers.push_back(scope.spawn(move || write_output(target, &image, format.png_bits())));
            }
            while let Some(writer) = writers.pop_front() {
                finish_writer(Some(writer), &progress)?;
            }
            Ok(steps.len())
        })?;
        summary.written += written;
    }
    progress.finish_and_clear();
    for p in &pipelines {
        let record = output.join(&p.name).join(PRODUCER_RECORD);
        imageio::write_atomically(&record, |out| Ok(out.write_all(p.producer.as_bytes())?))?;
    }
    Ok(summary)
}
