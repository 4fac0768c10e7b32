//! What the workbench starts with: the plugins (the config's and `--plugin-dir`s), the inputs (the
//! chart, the config's `[input]`, generated cells and aerial scenes, the config's data set), the trained model of
//! `--checkpoint`, the starting pipeline and the camera presets.

use super::catalogue;
use super::workbench::{Input, Slot, TaskModel, Workbench};
use crate::config::{self, LoadedConfig};
use crate::imageio::RawInput;
use crate::plugins::Registry;
use crate::run::pipeline_job::synthesise;
use crate::train::context::JobContext;
use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// `l2l-host serve`'s options.
pub struct ServeOptions {
    /// A config whose pipeline the page starts with (and whose data set it offers).
    pub config: Option<PathBuf>,
    /// A training run whose model answers under both pipelines (its fold 0).
    pub checkpoint: Option<PathBuf>,
    pub bind: IpAddr,
    pub port: u16,
    /// More host names the page may be reached by (beside the loopback names and `bind`).
    pub allowed_hosts: Vec<String>,
    /// The most pixels one upload may decode to.
    pub max_upload_pixels: usize,
    /// More plugin directories (as `plugins list --plugin-dir`).
    pub plugin_dirs: Vec<PathBuf>,
    /// Camera presets (`configs/cameras/*.toml`).
    pub cameras: Option<PathBuf>,
}

/// How many samples of a data set the page offers.
const SAMPLES: usize = 4;

/// The published camera chain with bilinear demosaicing, each camera value from the input's metadata.
fn default_slots() -> Vec<Slot> {
    let table = |text: &str| -> toml::Table { text.parse().expect("a valid built-in table") };
    [
        ("black_level", "black_level", "from_metadata = true"),
        ("demosaic", "demosaic_bilinear", "cfa_from_metadata = true"),
        ("white_balance", "white_balance", "from_metadata = true"),
        ("colour_matrix", "colour_matrix", "from_metadata = true"),
        ("sharpen", "", ""),
        ("denoise", "", ""),
        ("clip", "clip", ""),
        ("gamma", "gamma", "gamma = 2.2"),
    ]
    .into_iter()
    .map(|(name, kind, config)| Slot {
        name: name.into(),
        kind: kind.into(),
        config: table(config),
    })
    .collect()
}

fn slots_of(loaded: &LoadedConfig) -> Result<Vec<Slot>> {
    Ok(loaded
        .pipeline()?
        .stages
        .into_iter()
        .map(|s| Slot {
            name: s.name,
            kind: s.kind,
            config: s.config,
        })
        .collect())
}

/// An `[input]` table of a pipeline job as a workbench input: the config's own, or the chart.
fn synthesised(label: &str, table: &toml::Table, resolve: impl Fn(&Path) -> PathBuf) -> Result<Input> {
    let prepared = synthesise(config::parse_table(table, "input")?, resolve, tch::Device::Cpu)?;
    let size = prepared.mosaic.size();
    let mosaic = prepared.mosaic.f_view([size[2], size[3]])?;
    Ok(Input {
        label: label.into(),
        raw: RawInput {
            mosaic,
            metadata: prepared.metadata,
        },
        uploaded: false,
    })
}

fn dataset_inputs(registry: &Registry, spec: &config::ComponentSpec, what: &str) -> Result<Vec<Input>> {
    let dataset = crate::data::datasets::open(registry, spec, &[])?;
    (0..SAMPLES.min(dataset.len()))
        .map(|i| {
            let sample = dataset.sample(i)?;
            Ok(Input {
                label: format!("{what} #{i}"),
                raw: RawInput {
                    mosaic: sample.raw,
                    metadata: Some(sample.metadata),
                },
                uploaded: false,
            })
        })
        .collect()
}

fn generated(task: &str, size: i64) -> config::ComponentSpec {
    let config: toml::Table = format!("task = \"{task}\"\ncount = {SAMPLES}\nsize = {size}")
        .parse()
        .expect("a valid table");
    config::ComponentSpec {
        kind: "synthetic".into(),
        plugin: None,
        config,
    }
}

fn camera_presets(dir: &std::path::Path) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut presets = serde_json::Map::new();
    for file in l2l_rawio::files_with_extensions(dir, &["toml"])? {
        let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        let table: toml::Table = toml::from_str(&text).with_context(|| format!("camera preset {}", file.display()))?;
        let stages = table
            .get("stages")
            .cloned()
            .unwrap_or(toml::Value::Table(toml::Table::new()));
        let name = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        presets.insert(name, serde_json::to_value(stages)?);
    }
    Ok(presets)
}

/// Adds every text under `key` in `value` (also inside lists and tables) to `words`.
fn collect_words(key: &str, value: &toml::Value, words: &mut BTreeMap<String, BTreeSet<String>>) {
    match value {
        toml::Value::String(word) => {
            words.entry(key.to_string()).or_default().insert(word.clone());
        }
        toml::Value::Array(items) => items.iter().for_each(|item| collect_words(key, item, words)),
        toml::Value::Table(table) => table.values().for_each(|item| collect_words(key, item, words)),
        _ => {}
    }
}

/// The text values the page may send, per key: each key's declared choices, and what the command
/// line's config (its pipeline) and the camera presets set.
fn allowed_words(
    stages: &[catalogue::StageEntry],
    slots: &[Slot],
    cameras: &serde_json::Map<String, serde_json::Value>,
) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let mut words: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for key in stages.iter().flat_map(|stage| &stage.keys) {
        words
            .entry(key.name.clone())
            .or_default()
            .extend(key.choices.iter().cloned());
    }
    for (key, value) in slots.iter().flat_map(|slot| &slot.config) {
        collect_words(key, value, &mut words);
    }
    for preset in cameras.values() {
        let stages: BTreeMap<String, toml::Table> = serde_json::from_value(preset.clone())?;
        for (key, value) in stages.values().flatten() {
            collect_words(key, value, &mut words);
        }
    }
    Ok(words)
}

/// The workbench and what the page is told at start.
pub fn prepare(options: &ServeOptions) -> Result<(Workbench, serde_json::Value)> {
    let config = options
        .config
        .as_deref()
        .map(|path| config::load(path, &[]))
        .transpose()?;
    let run = options.checkpoint.as_deref().map(config::load_run).transpose()?;
    let mut dirs = options.plugin_dirs.clone();
    for loaded in config.iter().chain(&run) {
        dirs.extend(crate::run::JobPlan::new(loaded.clone())?.plugin_dirs);
    }
    let registry = Registry::discover(&dirs);
    let device = match &config {
        Some(loaded) => loaded.device()?,
        None => crate::device::compute_device("auto")?,
    };
    // the chart as a pipeline job synthesises it, with its default (neutral) camera
    let chart: toml::Table = "kind = \"test_chart\"".parse()?;
    let mut inputs = vec![synthesised("chart (generated)", &chart, Path::to_path_buf)?];
    if let Some((loaded, table)) = config.as_ref().and_then(|l| l.config.input.as_ref().map(|t| (l, t))) {
        inputs.push(synthesised("the config's [input]", table, |p| loaded.resolve(p))?);
    }
    inputs.extend(dataset_inputs(
        &registry,
        &generated("cells", 256),
        "cells (generated)",
    )?);
    inputs.extend(dataset_inputs(
        &registry,
        &generated("aerial_cars", 512),
        "aerial (generated)",
    )?);
    if let Some(spec) = config.as_ref().map(LoadedConfig::dataset_spec).transpose()?.flatten() {
        inputs.extend(dataset_inputs(&registry, &spec, "data set")?);
    }
    let model = match (&options.checkpoint, &run) {
        (Some(dir), Some(loaded)) => {
            let context = JobContext::new(loaded, &registry, "serve")?;
            let classes = context.dataset.class_names().map(<[String]>::to_vec);
            Some(TaskModel {
                model: context.trained_model(dir, 0).context("--checkpoint")?,
                classes,
            })
        }
        _ => None,
    };
    let slots = match (&config, &run) {
        (Some(loaded), _) | (None, Some(loaded)) => slots_of(loaded)?,
        (None, None) => default_slots(),
    };
    let cameras = match &options.cameras {
        Some(dir) => camera_presets(dir)?,
        None => serde_json::Map::new(),
    };
    let stages = catalogue::stages(&registry);
    let words = allowed_words(&stages, &slots, &cameras)?;
    let setup = serde_json::json!({
        "stages": stages,
        "slots": slots,
        "cameras": cameras,
        "model": model.as_ref().map(|m| if m.classes.is_some() { "classification" } else { "segmentation" }),
    });
    Ok((
        Workbench::new(registry, device, inputs, model, words, options.max_upload_pixels),
        setup,
    ))
}
