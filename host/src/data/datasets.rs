//! Dataset commands: open the config's dataset and describe it, measure the loader, or lay the
//! dataset out on disk as Raw-Microscopy (16-bit TIFF mosaics + label file) or Raw-Drone (DNG + PNG
//! masks) — so that the loaders of the published sets can be exercised on generated data.

use crate::config::{ComponentSpec, LoadedConfig};
use crate::data::{Loader, LoaderOptions};
use crate::plugins::{Registry, RemoteDataset};
use anyhow::{anyhow, bail, Context, Result};
use indicatif::ProgressStyle;
use l2l_rawio::{write_dng, write_mask_png, write_tiff16, DngImage, Mask};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The config's dataset spec, or an error saying the config needs one.
pub fn spec(loaded: &LoadedConfig) -> Result<ComponentSpec> {
    loaded.dataset_spec()?.ok_or_else(|| {
        anyhow!(
            "config {}: no [dataset] table (expected e.g. kind = \"synthetic\")",
            loaded.path.display()
        )
    })
}

/// How often this process has opened a dataset: a job opens its dataset once, however many trainings
/// it runs (checked by the tests through the log line below).
static OPENED: AtomicUsize = AtomicUsize::new(0);

/// How many datasets this process has opened so far.
pub fn opened_count() -> usize {
    OPENED.load(Ordering::Relaxed)
}

/// Opens the dataset of `spec`, with extra keys set over its own (`intensity` for a layout).
pub fn open(registry: &Registry, spec: &ComponentSpec, extra: &[(&str, toml::Value)]) -> Result<RemoteDataset> {
    let mut table = spec.config.clone();
    for (key, value) in extra {
        table.insert(key.to_string(), value.clone());
    }
    let dataset = registry.build_dataset(&spec.kind, spec.plugin.as_deref(), &table, "dataset")?;
    let opened = OPENED.fetch_add(1, Ordering::Relaxed) + 1;
    tracing::info!(
        "opened the dataset ({} samples; datasets opened by this process: {opened})",
        dataset.len()
    );
    for warning in dataset.warnings() {
        tracing::warn!("{}: {warning}", dataset.label());
    }
    Ok(dataset)
}

/// A few lines about the dataset: size, classes and their counts, the first sample's shape and camera.
pub fn describe(dataset: &RemoteDataset) -> Result<String> {
    let mut text = format!("{}\n  samples: {}\n", dataset.label(), dataset.len());
    match (dataset.class_names(), dataset.labels()?) {
        (Some(names), Some(labels)) => {
            text += "  task: classification\n";
            for (index, name) in names.iter().enumerate() {
                let count = labels.iter().filter(|&&l| l == index).count();
                text += &format!("    {index:>3} {name:<12} {count} samples\n");
            }
        }
        _ => text += "  task: segmentation\n",
    }
    if !dataset.is_empty() {
        let first = dataset.sample(0)?;
        text += &format!(
            "  sample 0: raw {:?}, target {:?}, camera {:?}\n",
            first.raw.size(),
            first.target.size(),
            first.metadata
        );
    }
    if !dataset.warnings().is_empty() {
        text += &format!("  warnings: {}\n", dataset.warnings().len());
    }
    Ok(text)
}

/// Loader throughput: every sample once per epoch, in batches.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LoaderBench {
    /// Samples read.
    pub samples: usize,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Samples per second.
    pub samples_per_second: f64,
    /// Decoding threads.
    pub workers: usize,
    /// Samples per batch.
    pub batch_size: usize,
}

/// Reads every sample of `dataset` `epochs` times through a [`Loader`].
pub fn bench_loader(dataset: Arc<RemoteDataset>, options: &LoaderOptions, epochs: usize) -> Result<LoaderBench> {
    let started = Instant::now();
    let mut samples = 0;
    for epoch in 0..epochs {
        let options = LoaderOptions {
            shuffle_seed: Some(epoch as u64),
            ..options.clone()
        };
        for batch in Loader::new(dataset.clone(), (0..dataset.len()).collect(), &options)? {
            samples += batch?.indices.len();
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(LoaderBench {
        samples,
        seconds,
        samples_per_second: samples as f64 / seconds,
        workers: options.workers,
        batch_size: options.batch_size,
    })
}

/// How many files lie below `dir` (0 when it does not exist).
fn files_below(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| if e.path().is_dir() { files_below(&e.path()) } else { 1 })
                .sum()
        })
        .unwrap_or(0)
}

/// The on-disk layouts of the published sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Layout {
    /// `images/raw_scale{NNN}/*.tiff` + `labels/Ma190c_annotations.dat` (classification).
    Microscopy,
    /// `images_full/raw_scale{NNN}/*.dng` + `masks_full/*.png` (segmentation).
    Drone,
}

/// Writes the dataset of `spec` at every intensity in `intensities` (percent; the dataset must take an
/// `intensity` key) into `output` in `layout`; sample i is `sample_{i:05}`. Returns the files written.
pub fn write_layout(
    registry: &Registry,
    spec: &ComponentSpec,
    layout: Layout,
    output: &Path,
    intensities: &[u32],
    replace: bool,
) -> Result<usize> {
    if intensities.is_empty() {
        bail!("no intensities to write");
    }
    let folders = match layout {
        Layout::Microscopy => ["images", "labels"].as_slice(),
        Layout::Drone => ["images_full", "masks_full"].as_slice(),
    };
    let existing: usize = folders.iter().map(|f| files_below(&output.join(f))).sum();
    if existing > 0 && !replace {
        bail!(
            "{}: already holds {existing} file(s) of a {layout:?} layout ({}); nothing is replaced without --force",
            output.display(),
            folders.join(", ")
        );
    }
    let mut written = 0;
    for &intensity in intensities {
        let dataset = open(
            registry,
            spec,
            &[("intensity", toml::Value::Float(f64::from(intensity)))],
        )?;
        let task_fits = match layout {
            Layout::Microscopy => dataset.class_names().is_some(),
            Layout::Drone => dataset.class_names().is_none(),
        };
        if !task_fits {
            bail!(
                "{}: the {layout:?} layout holds {} data, the dataset is for {}",
                dataset.label(),
                if layout == Layout::Microscopy {
                    "classification"
                } else {
                    "segmentation"
                },
                if dataset.class_names().is_some() {
                    "classification"
                } else {
                    "segmentation"
                }
            );
        }
        let folder = match layout {
            Layout::Microscopy => output.join("images").join(l2l_rawio::intensity_folder(intensity)),
            Layout::Drone => output.join("images_full").join(l2l_rawio::intensity_folder(intensity)),
        };
        std::fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
        let masks = output.join("masks_full");
        if layout == Layout::Drone {
            std::fs::create_dir_all(&masks).with_context(|| format!("creating {}", masks.display()))?;
        }
        let progress = crate::console::progress_bar(dataset.len() as u64).with_style(
            ProgressStyle::with_template("{spinner} intensity {msg}% {pos}/{len} [{bar:30}] {elapsed_precise}")?
                .progress_chars("=> "),
        );
        progress.set_message(intensity.to_string());
        let indices: Vec<usize> = (0..dataset.len()).collect();
        let results = l2l_rawio::decode_in_parallel(&indices, |&i| -> Result<()> {
            let sample = dataset.sample(i)?;
            let size = sample.raw.size();
            let (height, width) = (size[0] as usize, size[1] as usize);
            let values = Vec::<f32>::try_from(sample.raw.f_flatten(0, -1)?)?;
            let samples: Vec<u16> = values
                .iter()
                .map(|v| (v.clamp(0.0, 1.0) * 65535.0).round() as u16)
                .collect();
            let stem = format!("sample_{i:05}");
            match layout {
                Layout::Microscopy => write_tiff16(&folder.join(format!("{stem}.tiff")), &samples, height, width)?,
                Layout::Drone => {
                    let image = DngImage {
                        samples: &samples,
                        height,
                        width,
                        white_level: 65535,
                        camera: sample.metadata,
                        make_model: ("l2l", "synthetic"),
                    };
                    write_dng(&folder.join(format!("{stem}.dng")), &image)?;
                    let mask = Vec::<i64>::try_from(sample.target.f_flatten(0, -1)?)?;
                    let mask = Mask {
                        values: mask.iter().map(|&m| u8::from(m != 0)).collect(),
                        height,
                        width,
                    };
                    write_mask_png(&masks.join(format!("{stem}.png")), &mask)?;
                }
            }
            progress.inc(1);
            Ok(())
        });
        progress.finish_and_clear();
        results.into_iter().collect::<Result<Vec<()>>>()?;
        written += dataset.len() * if layout == Layout::Drone { 2 } else { 1 };
        if layout == Layout::Microscopy {
            let names = dataset.class_names().unwrap_or_default();
            let labels = dataset.labels()?.unwrap_or_default();
            let text: String = labels
                .iter()
                .enumerate()
                .map(|(i, &l)| format!("sample_{i:05} {}\n", names[l]))
                .collect();
            std::fs::create_dir_all(output.join("labels"))?;
            crate::imageio::write_atomically(&output.join("labels").join("Ma190c_annotations.dat"), |out| {
                Ok(out.write_all(text.as_bytes())?)
            })?;
        }
    }
    Ok(written)
}
