//! Configs: a TOML file, command-line overrides, and validation with the key path in every error.
//!
//! Shape of a config (every key is checked; unknown keys are errors):
//! ```toml
//! plugin_dirs = ["my-plugins"]      # searched before L2L_PLUGIN_PATH and the default directory
//! device = "auto"                   # auto | cpu | cuda | cuda:N
//! threads = 2                       # CPU threads for libtorch (default: libtorch's choice)
//! pipeline = ["black_level", "demosaic", "gamma"]   # stage names, in order
//!
//! [stages.demosaic]                 # one table per stage name
//! kind = "demosaic_bilinear"        # the component; `plugin = "..."` picks a plugin if several offer it
//! cfa_pattern = "RGGB"              # everything else is the component's own config
//!
//! [dataset]                         # the data (see `l2l-host plugins inspect synthetic`)
//! kind = "synthetic"                # a dataset component; `root`/`cache_dir` paths are relative to this file
//!
//! [input]                           # what `run` processes (see `InputConfig`)
//! [job]                             # what `run` does (see `JobConfig`)
//! ```
//! `include = ["cameras/raw-drone.toml"]` (paths relative to the including file) merges other files
//! in first, table by table, so camera presets and pipelines can be combined; the including file's
//! own keys win. Paths inside configs are relative to the top-level file.
//!
//! Overrides: `--set KEY.PATH=VALUE`, VALUE in TOML syntax (`2.4`, `[1, 2]`, `"text"`); a bare word
//! that is not TOML is taken as a string (`--set stages.demosaic.kind=demosaic_bilinear`).

use anyhow::{anyhow, bail, Context, Result};
use l2l_plugin_api::CfaPattern;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use tch::Device;

/// The whole config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Extra plugin directories or files, relative to the config file.
    #[serde(default)]
    pub plugin_dirs: Vec<PathBuf>,
    /// Where tensors live: auto (CUDA when present), cpu, cuda or cuda:N.
    #[serde(default = "default_device")]
    pub device: String,
    /// CPU threads for libtorch.
    #[serde(default)]
    pub threads: Option<i32>,
    /// The stage names of the processing pipeline, in order.
    #[serde(default)]
    pub pipeline: Vec<String>,
    /// One table per stage: `kind`, optional `plugin`, and the component's own keys.
    #[serde(default)]
    pub stages: toml::Table,
    /// The dataset: `kind`, optional `plugin`, and the dataset's own keys (paths in `root` and
    /// `cache_dir` are relative to the config file).
    pub dataset: Option<toml::Table>,
    /// The task model: `kind`, optional `plugin`, and the model's own keys.
    pub task_model: Option<toml::Table>,
    /// The raw input of a `pipeline` job.
    pub input: Option<InputConfig>,
    /// What `run` does.
    pub job: Option<JobConfig>,
    /// How `l2l-host sweep` splits the job into a grid of jobs and where it runs them.
    pub sweep: Option<crate::sweep::SweepConfig>,
}

fn default_device() -> String {
    "auto".into()
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

/// What `run` does.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum JobConfig {
    /// Process `input` through `pipeline`, writing every stage's output and a report.
    Pipeline {
        /// Parent of the run directories, relative to the working directory.
        #[serde(default = "default_output_dir")]
        output_dir: PathBuf,
        /// Run directories are named `NAME-N`.
        #[serde(default = "default_run_name")]
        name: String,
    },
    /// Train the task model (and the processing, by `mode`) on the dataset; see [`TrainConfig`].
    Train(TrainConfig),
    /// Train behind each of several pipelines and test every model behind every pipeline.
    DriftSynthesis(DriftSynthesisConfig),
    /// Search a parametrized processor's parameters for settings that break a frozen model.
    Forensics(ForensicsConfig),
    /// Train the task model with each processing mode and compare their learning curves.
    Optimisation(OptimisationConfig),
    /// Several experiments on the same data and task model, with one report.
    Experiments(ExperimentSuiteConfig),
}

/// `[job] kind = "experiments"`: any of `[job.drift_synthesis]`, `[job.forensics]`,
/// `[job.optimisation]` (their `output_dir` and `name` are set by the suite).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentSuiteConfig {
    /// A drift-synthesis experiment.
    #[serde(default)]
    pub drift_synthesis: Option<DriftSynthesisConfig>,
    /// A forensics experiment.
    #[serde(default)]
    pub forensics: Option<ForensicsConfig>,
    /// An optimisation experiment.
    #[serde(default)]
    pub optimisation: Option<OptimisationConfig>,
    /// Parent of the run directory.
    #[serde(default = "default_output_dir")]
    pub output_dir: PathBuf,
    /// The run directory is named `NAME-N`.
    #[serde(default = "default_suite_name")]
    pub name: String,
}

fn default_suite_name() -> String {
    "experiments".into()
}

/// A drift-optimisation experiment: `[job] kind = "optimisation"`, the modes, and `[job.train]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimisationConfig {
    /// The processing modes to compare (default: parametrized, static, neural_network, none).
    #[serde(default = "default_modes")]
    pub modes: Vec<ProcessingMode>,
    /// The fixed pipeline of `static`.
    pub static_pipeline: PathBuf,
    /// The learnable pipeline of `parametrized`.
    pub parametrized_pipeline: PathBuf,
    /// Keys of the `processor_nn` stage of `neural_network` (default: its defaults, CFA from metadata).
    #[serde(default)]
    pub neural_processor: Option<toml::Table>,
    /// How each mode trains (its `mode` is set per run).
    pub train: TrainConfig,
    /// Parent of the experiment directory.
    #[serde(default = "default_output_dir")]
    pub output_dir: PathBuf,
    /// The experiment directory is named `NAME-N`.
    #[serde(default = "default_optimisation_name")]
    pub name: String,
}

fn default_modes() -> Vec<ProcessingMode> {
    vec![ProcessingMode::Parametrized, ProcessingMode::Static, ProcessingMode::NeuralNetwork, ProcessingMode::None]
}
fn default_optimisation_name() -> String {
    "optimisation".into()
}

/// How far the adversarial processing's output may move from the default's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Distance {
    /// 1 − SSIM.
    Ssim,
    /// Mean squared difference.
    L2,
}

/// A drift-forensics experiment: `[job] kind = "forensics"`, and `[job.train]` for the model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForensicsConfig {
    /// The processing under attack: a pipeline config with learnable parameters, at its default values
    /// also the processing the model is trained behind.
    pub pipeline: PathBuf,
    /// Parameter groups to attack, one search each: `all`, or stage names of the pipeline.
    #[serde(default = "default_groups")]
    pub groups: Vec<String>,
    /// Adam steps per search.
    #[serde(default = "default_forensics_steps")]
    pub steps: usize,
    /// Adam learning rate of the search.
    #[serde(default = "default_forensics_lr")]
    pub lr: f64,
    /// w in −task_loss + w · distance(adversarial output, default output).
    #[serde(default = "default_similarity_weight")]
    pub similarity_weight: f64,
    /// ssim (1 − SSIM) or l2.
    #[serde(default = "default_distance")]
    pub distance: Distance,
    /// Validation samples attacked and evaluated.
    #[serde(default = "default_forensics_samples")]
    pub samples: usize,
    /// How the model is trained (behind the pipeline at its defaults; `mode` taken as `static`).
    pub train: TrainConfig,
    /// Parent of the experiment directory.
    #[serde(default = "default_output_dir")]
    pub output_dir: PathBuf,
    /// The experiment directory is named `NAME-N`.
    #[serde(default = "default_forensics_name")]
    pub name: String,
}

fn default_groups() -> Vec<String> {
    vec!["all".into()]
}
fn default_forensics_steps() -> usize {
    30
}
fn default_forensics_lr() -> f64 {
    1e-2
}
fn default_similarity_weight() -> f64 {
    1.0
}
fn default_distance() -> Distance {
    Distance::Ssim
}
fn default_forensics_samples() -> usize {
    32
}
fn default_forensics_name() -> String {
    "forensics".into()
}

/// A drift-synthesis experiment: `[job] kind = "drift_synthesis"`, the pipelines, and `[job.train]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftSynthesisConfig {
    /// Pipeline configs to train behind (relative to this config).
    pub pipelines: Vec<PathBuf>,
    /// Pipeline configs to test behind (default: the training pipelines).
    #[serde(default)]
    pub test_pipelines: Vec<PathBuf>,
    /// The metric of the matrices (default: accuracy, or iou for segmentation).
    #[serde(default)]
    pub metric: Option<String>,
    /// How each model trains (its `mode` is taken as `static`).
    pub train: TrainConfig,
    /// The common-corruption baseline: each model also tested behind its own pipeline with corruptions.
    #[serde(default)]
    pub corruptions: Option<CorruptionBaseline>,
    /// Parent of the experiment directory.
    #[serde(default = "default_output_dir")]
    pub output_dir: PathBuf,
    /// The experiment directory is named `NAME-N`.
    #[serde(default = "default_drift_name")]
    pub name: String,
}

/// Which corruptions, severities and parameter table the baseline uses.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorruptionBaseline {
    /// cifar10 or imagenet.
    #[serde(default = "default_table")]
    pub table: crate::corruptions::Table,
    /// The corruptions (default: all ten).
    #[serde(default = "default_corruptions")]
    pub types: Vec<crate::corruptions::Corruption>,
    /// Severities 1..5 (default: all).
    #[serde(default = "default_severities")]
    pub severities: Vec<usize>,
}

fn default_table() -> crate::corruptions::Table {
    crate::corruptions::Table::Cifar10
}
fn default_corruptions() -> Vec<crate::corruptions::Corruption> {
    crate::corruptions::ALL.to_vec()
}
fn default_severities() -> Vec<usize> {
    vec![1, 2, 3, 4, 5]
}

fn default_drift_name() -> String {
    "drift-synthesis".into()
}

/// How the processing takes part in training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessingMode {
    /// The config's pipeline, fixed: no gradient into it.
    Static,
    /// The config's pipeline; its learnable parameters train with the task model.
    Parametrized,
    /// The pipeline holds a `processor_nn` stage, trained with the task model.
    NeuralNetwork,
    /// No processing: the 2×2-packed raw goes to the task model.
    None,
}

impl ProcessingMode {
    /// The mode's name in configs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Static => "static",
            Self::Parametrized => "parametrized",
            Self::NeuralNetwork => "neural_network",
            Self::None => "none",
        }
    }
}

/// Geometric augmentation after processing, applied to masks identically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Augmentation {
    /// None.
    None,
    /// Random flips and 90° rotations.
    Weak,
    /// Weak, plus a random rotation by any angle and a random scale in [0.8, 1.25].
    Strong,
}

/// A `train` job: `[job] kind = "train"` and these keys.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// static, parametrized, neural_network or none.
    pub mode: ProcessingMode,
    /// Passes over the training split.
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    /// Samples per batch.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Adam learning rate of the task model.
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Adam learning rate of the processing (default: `lr`).
    #[serde(default)]
    pub processor_lr: Option<f64>,
    /// Adam weight decay (L2, as `torch.optim.Adam`).
    #[serde(default)]
    pub weight_decay: f64,
    /// How many train/validation splits (folds) to train on, one after another.
    #[serde(default = "default_splits")]
    pub n_splits: usize,
    /// Fraction of the samples that train in each split.
    #[serde(default = "default_train_size")]
    pub train_size: f64,
    /// Seed of the splits, shuffles and augmentation.
    #[serde(default)]
    pub seed: u64,
    /// none, weak or strong.
    #[serde(default = "default_augmentation")]
    pub augmentation: Augmentation,
    /// Keep the processing's parameters fixed.
    #[serde(default)]
    pub freeze_processor: bool,
    /// Keep the task model's parameters fixed.
    #[serde(default)]
    pub freeze_task_model: bool,
    /// Validation samples whose stage outputs, gradients and predictions are drawn every epoch.
    #[serde(default = "default_tracked")]
    pub tracked_samples: usize,
    /// A pipeline config to compare the processing's output with in the tracked grids.
    #[serde(default)]
    pub reference_pipeline: Option<PathBuf>,
    /// Decoding threads of the loader (default: every core).
    #[serde(default)]
    pub workers: Option<usize>,
    /// Parent of the run directories.
    #[serde(default = "default_output_dir")]
    pub output_dir: PathBuf,
    /// Run directories are named `NAME-N`.
    #[serde(default = "default_train_name")]
    pub name: String,
    /// The MLflow experiment the run is filed under (in `output_dir/mlruns`).
    #[serde(default = "default_experiment")]
    pub experiment: String,
    /// Train only these folds (default: all `n_splits`); a sweep gives each job one.
    #[serde(default)]
    pub folds: Option<Vec<usize>>,
}

impl TrainConfig {
    /// Whether `fold` is trained.
    pub fn trains_fold(&self, fold: usize) -> bool {
        self.folds.as_ref().is_none_or(|folds| folds.contains(&fold))
    }
}

fn default_epochs() -> usize {
    10
}
fn default_batch_size() -> usize {
    8
}
fn default_lr() -> f64 {
    1e-3
}
fn default_splits() -> usize {
    1
}
fn default_train_size() -> f64 {
    0.8
}
fn default_augmentation() -> Augmentation {
    Augmentation::None
}
fn default_tracked() -> usize {
    2
}
fn default_train_name() -> String {
    "train".into()
}
fn default_experiment() -> String {
    "l2l".into()
}

fn default_output_dir() -> PathBuf {
    PathBuf::from("runs")
}
fn default_run_name() -> String {
    "run".into()
}

/// One stage of the pipeline, as the plugin will receive it.
#[derive(Debug, Clone)]
pub struct StageSpec {
    /// The stage's name in `pipeline`.
    pub name: String,
    /// The component (`kind`).
    pub kind: String,
    /// The plugin to take it from, when given.
    pub plugin: Option<String>,
    /// The component's own keys, as TOML text.
    pub config_text: String,
}

/// A dataset or task model: which component, and its config as its plugin will receive it.
#[derive(Debug, Clone)]
pub struct ComponentSpec {
    /// The component (`kind`).
    pub kind: String,
    /// The plugin to take it from, when given.
    pub plugin: Option<String>,
    /// The component's own keys, as TOML text.
    pub config_text: String,
}

/// A parsed config and where it came from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The file.
    pub path: PathBuf,
    /// The validated config.
    pub config: Config,
    /// The config after overrides, as the run directory records it.
    pub resolved: toml::Table,
}

/// Applies one `KEY.PATH=VALUE` override to the table.
pub fn apply_override(table: &mut toml::Table, assignment: &str) -> Result<()> {
    let (path, value_text) = assignment
        .split_once('=')
        .ok_or_else(|| anyhow!("override `{assignment}`: expected KEY.PATH=VALUE"))?;
    let keys: Vec<&str> = path.trim().split('.').collect();
    if keys.iter().any(|k| k.is_empty()) {
        bail!("override `{assignment}`: empty key in `{path}`");
    }
    let value = parse_override_value(value_text.trim());
    let (last, parents) = keys.split_last().expect("split of a non-empty path");
    let mut current = table;
    for (depth, key) in parents.iter().enumerate() {
        let entry = current
            .entry(key.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry
            .as_table_mut()
            .ok_or_else(|| anyhow!("override `{assignment}`: `{}` is not a table", keys[..=depth].join(".")))?;
    }
    current.insert(last.to_string(), value);
    Ok(())
}

fn parse_override_value(text: &str) -> toml::Value {
    let wrapped = format!("value = {text}");
    match wrapped.parse::<toml::Table>() {
        Ok(mut table) => table
            .remove("value")
            .unwrap_or_else(|| toml::Value::String(text.into())),
        Err(_) => toml::Value::String(text.into()),
    }
}

/// Merges `over` into `base`: tables key by key, anything else replaced.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base_table)), toml::Value::Table(over_table)) => merge(base_table, over_table),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// A config is a short TOML file; anything larger is not one (and an `include` of a device such as
/// `/dev/zero` would otherwise be read until memory runs out).
const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// The text of one config file: a regular file of at most [`MAX_CONFIG_BYTES`], UTF-8.
fn read_config_text(path: &Path) -> Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path).with_context(|| format!("reading config {}", path.display()))?;
    if !file.metadata().with_context(|| format!("reading config {}", path.display()))?.is_file() {
        bail!("config {}: not a regular file", path.display());
    }
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("reading config {}", path.display()))?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        bail!("config {}: larger than {} MiB; expected a short TOML file", path.display(), MAX_CONFIG_BYTES >> 20);
    }
    Ok(text)
}

/// Reads one config file with its `include`s merged in (at most 8 levels deep).
pub fn read_with_includes(path: &Path, depth: usize) -> Result<toml::Table> {
    if depth > 8 {
        bail!("config {}: includes nest more than 8 levels (a cycle?)", path.display());
    }
    let text = read_config_text(path)?;
    let mut table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| anyhow!("config {}: {}", path.display(), e.to_string().trim_end()))?;
    let Some(include) = table.remove("include") else {
        return Ok(table);
    };
    let files = include
        .as_array()
        .and_then(|items| items.iter().map(|i| i.as_str()).collect::<Option<Vec<_>>>())
        .ok_or_else(|| {
            anyhow!(
                "config {}: key `include`: expected a list of file names",
                path.display()
            )
        })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut merged = toml::Table::new();
    for file in files {
        merge(
            &mut merged,
            read_with_includes(&dir.join(file), depth + 1)
                .with_context(|| format!("included from {}", path.display()))?,
        );
    }
    merge(&mut merged, table);
    Ok(merged)
}

/// Reads `path` (with its includes), applies `overrides` and validates everything the host owns.
pub fn load(path: &Path, overrides: &[String]) -> Result<LoadedConfig> {
    let mut table = read_with_includes(path, 0)?;
    for assignment in overrides {
        apply_override(&mut table, assignment)?;
    }
    let config = from_table(&table).with_context(|| format!("config {}", path.display()))?;
    let loaded = LoadedConfig {
        path: path.to_path_buf(),
        config,
        resolved: table,
    };
    loaded.stage_specs()?;
    loaded.dataset_spec()?;
    loaded.task_model_spec()?;
    // only the spelling: a config for GPU nodes is loaded on a machine without one (a sweep's start)
    parse_device(&loaded.config.device).map_err(|e| anyhow!("config key `device`: {e}"))?;
    Ok(loaded)
}

/// The config of a training run directory: its `config.toml` (as resolved when it started), with
/// relative paths taken against the config file it was started from (`run.json`).
pub fn load_run(run_dir: &Path) -> Result<LoadedConfig> {
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(run_dir.join("run.json")).with_context(|| format!("{}: not a training run directory", run_dir.display()))?,
    )?;
    let path = record["config_path"]
        .as_str()
        .map(PathBuf::from)
        .ok_or_else(|| anyhow!("{}: run.json has no config_path", run_dir.display()))?;
    let text = std::fs::read_to_string(run_dir.join("config.toml"))
        .with_context(|| format!("reading {}", run_dir.join("config.toml").display()))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| anyhow!("{}: {e}", run_dir.join("config.toml").display()))?;
    let config = from_table(&table).with_context(|| format!("config {}", run_dir.join("config.toml").display()))?;
    Ok(LoadedConfig {
        path,
        config,
        resolved: table,
    })
}

/// Deserializes a config table, naming the key path of the first problem.
pub fn from_table(table: &toml::Table) -> Result<Config> {
    serde_path_to_error::deserialize(toml::Value::Table(table.clone())).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.message().trim().to_string();
        if path == "." {
            anyhow!("{message}")
        } else {
            anyhow!("config key `{path}`: {message}")
        }
    })
}

impl LoadedConfig {
    /// A path from the config, taken relative to the config file's directory.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.path.parent().unwrap_or(Path::new(".")).join(path)
        }
    }

    /// The plugin directories named by the config, resolved.
    pub fn plugin_dirs(&self) -> Vec<PathBuf> {
        self.config.plugin_dirs.iter().map(|p| self.resolve(p)).collect()
    }

    /// The pipeline's stages, in order, each checked for a `kind` and listed in `pipeline`.
    pub fn stage_specs(&self) -> Result<Vec<StageSpec>> {
        let stages = &self.config.stages;
        if let Some(unused) = stages.keys().find(|k| !self.config.pipeline.contains(k)) {
            bail!(
                "config key `stages.{unused}`: stage is not listed in `pipeline` (pipeline: [{}])",
                self.config.pipeline.join(", ")
            );
        }
        self.config
            .pipeline
            .iter()
            .map(|name| {
                let table = stages
                    .get(name)
                    .and_then(toml::Value::as_table)
                    .ok_or_else(|| anyhow!("config key `pipeline`: stage `{name}` has no table `[stages.{name}]`"))?;
                let (kind, plugin, config_text) = component_parts(&format!("stages.{name}"), table, "gamma")?;
                Ok(StageSpec {
                    name: name.clone(),
                    kind,
                    plugin,
                    config_text,
                })
            })
            .collect()
    }

    /// The `[dataset]` table as its plugin will receive it, with `root` and `cache_dir` resolved
    /// against the config file's directory; `None` when the config has none.
    pub fn dataset_spec(&self) -> Result<Option<ComponentSpec>> {
        let Some(table) = &self.config.dataset else {
            return Ok(None);
        };
        let mut table = table.clone();
        for key in DATASET_PATH_KEYS {
            match table.get(*key) {
                Some(toml::Value::String(path)) => {
                    let resolved = self.resolve(Path::new(path)).to_string_lossy().into_owned();
                    table.insert(key.to_string(), toml::Value::String(resolved));
                }
                Some(other) => bail!("config key `dataset.{key}`: expected a path (string), found {other}"),
                None => {}
            }
        }
        let (kind, plugin, config_text) = component_parts("dataset", &table, "synthetic")?;
        Ok(Some(ComponentSpec {
            kind,
            plugin,
            config_text,
        }))
    }

    /// The `[task_model]` table as its plugin will receive it; `None` when the config has none.
    pub fn task_model_spec(&self) -> Result<Option<ComponentSpec>> {
        let Some(table) = &self.config.task_model else {
            return Ok(None);
        };
        let (kind, plugin, config_text) = component_parts("task_model", table, "resnet")?;
        Ok(Some(ComponentSpec {
            kind,
            plugin,
            config_text,
        }))
    }

    /// The device the config asks for, refused when this process cannot compute on it.
    pub fn device(&self) -> Result<Device> {
        compute_device(&self.config.device).map_err(|e| anyhow!("config key `device`: {e}"))
    }
}

/// Keys of a `[dataset]` table that hold paths, resolved against the config file's directory.
pub const DATASET_PATH_KEYS: &[&str] = &["root", "cache_dir"];

/// Splits a component table (`[stages.NAME]`, `[dataset]`) into its `kind`, optional `plugin`, and the
/// component's own keys as TOML text; `example` is a kind to show when `kind` is missing.
fn component_parts(path: &str, table: &toml::Table, example: &str) -> Result<(String, Option<String>, String)> {
    let mut own = table.clone();
    let kind = match own.remove("kind") {
        Some(toml::Value::String(kind)) => kind,
        Some(other) => bail!("config key `{path}.kind`: expected a component name (string), found {other}"),
        None => bail!("config key `{path}.kind`: missing; expected the component, e.g. kind = \"{example}\""),
    };
    let plugin = match own.remove("plugin") {
        Some(toml::Value::String(plugin)) => Some(plugin),
        Some(other) => bail!("config key `{path}.plugin`: expected a plugin name (string), found {other}"),
        None => None,
    };
    Ok((kind, plugin, toml::to_string(&own)?))
}

/// `auto` (CUDA when present), `cpu`, `cuda` or `cuda:N`; whether this machine has that device is
/// [`compute_device`]'s question.
pub fn parse_device(text: &str) -> Result<Device> {
    let text = text.trim();
    match text {
        "auto" => {
            crate::cuda::ensure_loaded();
            Ok(Device::cuda_if_available())
        }
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda(0)),
        _ => text
            .strip_prefix("cuda:")
            .and_then(|i| i.parse::<usize>().ok())
            .map(Device::Cuda)
            .ok_or_else(|| anyhow!("expected auto, cpu, cuda or cuda:N, found `{text}`")),
    }
}

/// The device `text` names ([`parse_device`]), if this process can compute on it.
pub fn compute_device(text: &str) -> Result<Device> {
    crate::cuda::usable(parse_device(text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    #[test]
    fn overrides_parse_toml_values_and_fall_back_to_strings() {
        let mut t = table("[stages.gamma]\nkind = \"gamma\"\n");
        apply_override(&mut t, "stages.gamma.gamma=2.4").unwrap();
        apply_override(&mut t, "stages.wb.gains=[2.0, 1.0, 1.5]").unwrap();
        apply_override(&mut t, "stages.demosaic.kind=demosaic_bilinear").unwrap();
        assert_eq!(t["stages"]["gamma"]["gamma"].as_float(), Some(2.4));
        assert_eq!(t["stages"]["wb"]["gains"].as_array().unwrap().len(), 3);
        assert_eq!(t["stages"]["demosaic"]["kind"].as_str(), Some("demosaic_bilinear"));
    }

    #[test]
    fn an_include_of_a_device_or_a_huge_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("c.toml");
        std::fs::write(&config, "include = [\"/dev/zero\"]\n").unwrap();
        let err = format!("{:#}", read_with_includes(&config, 0).unwrap_err());
        assert!(err.contains("/dev/zero: not a regular file"), "{err}");
        let huge = dir.path().join("huge.toml");
        std::fs::write(&huge, vec![b'#'; (MAX_CONFIG_BYTES + 1) as usize]).unwrap();
        let err = format!("{:#}", read_with_includes(&huge, 0).unwrap_err());
        assert!(err.contains("larger than 16 MiB"), "{err}");
    }

    #[test]
    fn an_override_through_a_value_names_the_key() {
        let mut t = table("device = \"cpu\"\n");
        let err = apply_override(&mut t, "device.x=1").unwrap_err().to_string();
        assert!(err.contains("`device` is not a table"), "{err}");
        assert!(apply_override(&mut t, "no-equals-sign").is_err());
    }

    #[test]
    fn unknown_keys_are_named_with_their_path() {
        let err = from_table(&table("[job]\nkind = \"pipeline\"\noutput_dri = \"x\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config key `job`") && err.contains("unknown field `output_dri`"),
            "{err}"
        );
        let err = from_table(&table("devise = \"cpu\"\n")).unwrap_err().to_string();
        assert!(
            err.contains("unknown field `devise`") && err.contains("expected one of"),
            "{err}"
        );
    }

    #[test]
    fn wrong_types_are_named_with_their_path() {
        let err = from_table(&table("[input]\nkind = \"test_chart\"\nheight = \"tall\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config key `input") && err.contains("invalid type"),
            "{err}"
        );
    }

    fn loaded(text: &str) -> LoadedConfig {
        let t = table(text);
        LoadedConfig {
            path: PathBuf::from("c.toml"),
            config: from_table(&t).unwrap(),
            resolved: t,
        }
    }

    #[test]
    fn stages_must_be_listed_and_have_a_kind() {
        let err = loaded("pipeline = [\"a\"]\n[stages.a]\nkind = \"gamma\"\n[stages.b]\nkind = \"clip\"\n")
            .stage_specs()
            .unwrap_err()
            .to_string();
        assert!(err.contains("`stages.b`") && err.contains("not listed"), "{err}");
        let err = loaded("pipeline = [\"a\"]\n[stages.a]\ngamma = 2.0\n")
            .stage_specs()
            .unwrap_err()
            .to_string();
        assert!(err.contains("`stages.a.kind`: missing"), "{err}");
        let specs = loaded("pipeline = [\"a\"]\n[stages.a]\nkind = \"gamma\"\ngamma = 2.0\n")
            .stage_specs()
            .unwrap();
        assert_eq!(specs[0].kind, "gamma");
        assert_eq!(specs[0].config_text.trim(), "gamma = 2.0");
    }

    #[test]
    fn includes_merge_table_by_table_and_the_includer_wins() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("camera.toml"),
            "[stages.wb]\ngains = [2.0, 1.0, 1.5]\nkind = \"x\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("main.toml"),
            "include = [\"camera.toml\"]\npipeline = [\"wb\"]\n[stages.wb]\nkind = \"white_balance\"\n",
        )
        .unwrap();
        let loaded = load(&dir.path().join("main.toml"), &[]).unwrap();
        let specs = loaded.stage_specs().unwrap();
        assert_eq!(specs[0].kind, "white_balance");
        assert!(
            specs[0].config_text.contains("gains = [2.0, 1.0, 1.5]"),
            "{}",
            specs[0].config_text
        );
        std::fs::write(dir.path().join("loop.toml"), "include = [\"loop.toml\"]\n").unwrap();
        let err = format!("{:#}", load(&dir.path().join("loop.toml"), &[]).unwrap_err());
        assert!(err.contains("more than 8 levels"), "{err}");
    }

    #[test]
    fn devices_are_parsed_or_refused() {
        assert_eq!(loaded("device = \"cpu\"").device().unwrap(), Device::Cpu);
        assert_eq!(parse_device("cuda:1").unwrap(), Device::Cuda(1));
        assert!(loaded("device = \"tpu\"")
            .device()
            .unwrap_err()
            .to_string()
            .contains("expected auto, cpu"));
    }
}
