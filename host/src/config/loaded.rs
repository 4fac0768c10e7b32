//! A loaded config: the file read with its includes and overrides, the top-level keys checked, and
//! the tables this module owns (pipeline, dataset, task model) turned into specs.

use super::components::{CameraPreset, ComponentSpec, PipelineSpec};
use super::loader::{apply_override, read_with_includes, Quote};
use anyhow::{anyhow, bail, Context, Result};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use tch::Device;

/// The top-level keys of every config; the tables of `input`, `job` and `sweep` belong to the jobs.
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
    /// A camera preset file (`[stages.NAME]` tables of camera keys, relative to the config file) set
    /// over this config's pipeline and every pipeline its job names: one camera for twelve pipelines.
    #[serde(default)]
    pub camera_preset: Option<PathBuf>,
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
    /// The raw input of a `pipeline` job (parsed by that job).
    pub input: Option<toml::Table>,
    /// What `run` does (parsed by `run::Job`).
    pub job: Option<toml::Table>,
    /// How `l2l-host sweep` splits the job into a grid of jobs (parsed by `sweep`).
    pub sweep: Option<toml::Table>,
}

fn default_device() -> String {
    "auto".into()
}

/// A parsed config and where it came from.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The file.
    pub path: PathBuf,
    /// The validated config.
    pub config: Config,
    /// The camera preset named by `camera_preset`, read.
    pub camera: Option<CameraPreset>,
    /// The config after overrides, as the run directory records it.
    pub resolved: toml::Table,
    /// The pipeline files its job names, each read once when the job was planned (`run::JobPlan`):
    /// the resolved path → the pipeline with the camera preset, or why it did not read (reported
    /// where the job uses it).
    pub pipeline_files: BTreeMap<PathBuf, Result<PipelineSpec, String>>,
}

/// The most CPU threads a config may ask libtorch for: more than any node has, fewer than what
/// exhausts a machine's thread limit (`threads = 100000` did, taking other processes with it).
pub const MAX_THREADS: i32 = 1024;

/// Keys of a `[dataset]` table that hold paths, resolved against the config file's directory.
pub const DATASET_PATH_KEYS: &[&str] = &["root", "cache_dir"];

/// Keys of a `[task_model]` table that hold paths, resolved against the config file's directory.
pub const TASK_MODEL_PATH_KEYS: &[&str] = &["weights"];

/// Reads `path` (with its includes), applies `overrides` and validates everything this module owns:
/// the top-level keys, the pipeline's stage tables, the dataset and task-model tables, the device's
/// spelling.
pub fn load(path: &Path, overrides: &[String]) -> Result<LoadedConfig> {
    let mut table = read_with_includes(path, Quote::Text)?;
    for assignment in overrides {
        apply_override(&mut table, assignment)?;
    }
    let mut config: Config = parse_table(&table, "").with_context(|| format!("config {}", path.display()))?;
    // the preset's path made absolute, so that a run directory's or a sweep job's copy still finds it
    if let Some(preset) = &mut config.camera_preset {
        *preset = std::path::absolute(path.parent().unwrap_or(Path::new(".")).join(&*preset))?;
        table.insert(
            "camera_preset".into(),
            toml::Value::String(preset.to_string_lossy().into_owned()),
        );
    }
    let camera = config.camera_preset.as_deref().map(read_camera_preset).transpose()?;
    let loaded = LoadedConfig {
        path: path.to_path_buf(),
        config,
        camera,
        resolved: table,
        pipeline_files: BTreeMap::new(),
    };
    loaded.pipeline()?;
    loaded.dataset_spec()?;
    loaded.task_model_spec()?;
    if let Some(threads) = loaded.config.threads {
        if !(1..=MAX_THREADS).contains(&threads) {
            bail!("config key `threads`: expected 1 to {MAX_THREADS} CPU threads, found {threads}");
        }
    }
    // only the spelling: a config for GPU nodes is loaded on a machine without one (a sweep's start)
    crate::device::parse_device(&loaded.config.device).map_err(|e| anyhow!("config key `device`: {e}"))?;
    Ok(loaded)
}

/// The config of a training run directory: its `config.toml` (as resolved when it started), with
/// relative paths taken against the config file it was started from (`run.json`'s `config_path`).
pub fn load_run(run_dir: &Path) -> Result<LoadedConfig> {
    #[derive(Deserialize)]
    struct Started {
        config_path: PathBuf,
    }
    let record = run_dir.join("run.json");
    let started: Started = serde_json::from_slice(
        &std::fs::read(&record).with_context(|| format!("{}: not a training run directory", run_dir.display()))?,
    )
    .with_context(|| format!("reading {}", record.display()))?;
    let file = run_dir.join("config.toml");
    let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| anyhow!("{}: {e}", file.display()))?;
    let config: Config = parse_table(&table, "").with_context(|| format!("config {}", file.display()))?;
    let camera = config.camera_preset.as_deref().map(read_camera_preset).transpose()?;
    Ok(LoadedConfig {
        path: started.config_path,
        config,
        camera,
        resolved: table,
        pipeline_files: BTreeMap::new(),
    })
}

/// Reads the camera preset file `path` (with its includes).
fn read_camera_preset(path: &Path) -> Result<CameraPreset> {
    let table = read_with_includes(path, Quote::PositionOnly)
        .with_context(|| format!("config key `camera_preset`: {}", path.display()))?;
    CameraPreset::from_table(&table).with_context(|| format!("config key `camera_preset`: {}", path.display()))
}

/// Deserializes the table at config key `at` (`""` for the whole config), naming the key path of the
/// first problem: what every job uses to parse its own table.
pub fn parse_table<T: DeserializeOwned>(table: &toml::Table, at: &str) -> Result<T> {
    serde_path_to_error::deserialize(toml::Value::Table(table.clone())).map_err(|e| {
        let inner_path = e.path().to_string();
        let message = e.into_inner().message().trim().to_string();
        let path = match (at, inner_path.as_str()) {
            ("", ".") => return anyhow!("{message}"),
            ("", inner) => inner.to_string(),
            (at, ".") => at.to_string(),
            (at, inner) => format!("{at}.{inner}"),
        };
        anyhow!("config key `{path}`: {message}")
    })
}

/// How many pipeline files this process has read: a job reads each file it names once, when it is
/// planned (the `-v` log says so, and tests count it).
static PIPELINE_FILES_READ: AtomicUsize = AtomicUsize::new(0);

impl PipelineSpec {
    /// Reads a pipeline file (with its includes, checked as any config): the one way every command
    /// and experiment reads one.
    pub fn load(path: &Path) -> Result<PipelineSpec> {
        let read = PIPELINE_FILES_READ.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::info!(
            "read pipeline file {} (pipeline files read by this process: {read})",
            path.display()
        );
        let loaded = load(path, &[])?;
        Ok(PipelineSpec {
            plugin_dirs: loaded.plugin_dirs(),
            ..loaded.pipeline()?
        })
    }
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

    /// The processing pipeline: `pipeline`'s stages, in order, with the camera preset.
    pub fn pipeline(&self) -> Result<PipelineSpec> {
        Ok(self.with_camera(PipelineSpec::from_tables(&self.config.pipeline, &self.config.stages)?))
    }

    /// Reads each pipeline file of `paths` (relative to the config file) that is not read yet, with the
    /// camera preset, into [`LoadedConfig::pipeline_files`]: what planning a job does once.
    pub fn read_pipeline_files(&mut self, paths: &[PathBuf]) {
        for path in paths {
            let resolved = self.resolve(path);
            if !self.pipeline_files.contains_key(&resolved) {
                let read = PipelineSpec::load(&resolved)
                    .map(|spec| self.with_camera(spec))
                    .map_err(|e| format!("{e:#}"));
                self.pipeline_files.insert(resolved, read);
            }
        }
    }

    /// The pipeline file at `path` (relative to the config file) with the camera preset: as read when
    /// the job was planned, or read now for a file the job does not name.
    pub fn load_pipeline(&self, path: &Path) -> Result<PipelineSpec> {
        let resolved = self.resolve(path);
        match self.pipeline_files.get(&resolved) {
            Some(Ok(spec)) => Ok(spec.clone()),
            Some(Err(reason)) => Err(anyhow!("{reason}")),
            None => Ok(self.with_camera(PipelineSpec::load(&resolved)?)),
        }
    }

    fn with_camera(&self, pipeline: PipelineSpec) -> PipelineSpec {
        match &self.camera {
            Some(preset) => pipeline.with_camera(preset),
            None => pipeline,
        }
    }

    /// The `[dataset]` table as its plugin will receive it, with `root` and `cache_dir` resolved
    /// against the config file's directory; `None` when the config has none.
    pub fn dataset_spec(&self) -> Result<Option<ComponentSpec>> {
        let Some(table) = &self.config.dataset else {
            return Ok(None);
        };
        let spec = ComponentSpec::from_table("dataset", table, "synthetic")?;
        self.resolve_path_keys(spec, "dataset", DATASET_PATH_KEYS).map(Some)
    }

    /// The `[task_model]` table as its plugin will receive it, with `weights` resolved against the
    /// config file's directory; `None` when the config has none.
    pub fn task_model_spec(&self) -> Result<Option<ComponentSpec>> {
        let Some(table) = &self.config.task_model else {
            return Ok(None);
        };
        let spec = ComponentSpec::from_table("task_model", table, "resnet")?;
        self.resolve_path_keys(spec, "task_model", TASK_MODEL_PATH_KEYS)
            .map(Some)
    }

    /// `spec` with the paths under `keys` (of the config table `at`) resolved against the config file.
    fn resolve_path_keys(&self, mut spec: ComponentSpec, at: &str, keys: &[&str]) -> Result<ComponentSpec> {
        for key in keys {
            match spec.config.get(*key) {
                Some(toml::Value::String(path)) => {
                    let resolved = self.resolve(Path::new(path)).to_string_lossy().into_owned();
                    spec.config.insert(key.to_string(), toml::Value::String(resolved));
                }
                Some(other) => bail!("config key `{at}.{key}`: expected a path (string), found {other}"),
                None => {}
            }
        }
        Ok(spec)
    }

    /// The device the config asks for, refused when this process cannot compute on it.
    pub fn device(&self) -> Result<Device> {
        crate::device::compute_device(&self.config.device).map_err(|e| anyhow!("config key `device`: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_named_with_their_path() {
        let err = parse_table::<Config>(&table("devise = \"cpu\"\n"), "")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown field `devise`") && err.contains("expected one of"),
            "{err}"
        );
        let err = parse_table::<Config>(&table("threads = \"many\"\n"), "")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config key `threads`") && err.contains("invalid type"),
            "{err}"
        );
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Job {
            #[allow(dead_code)]
            epochs: usize,
        }
        let err = parse_table::<Job>(&table("epochs = 1\nepoch = 2\n"), "job.train")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config key `job.train.epoch`: unknown field `epoch`"),
            "{err}"
        );
        let err = parse_table::<Job>(&table("epochs = -1\n"), "job.train")
            .unwrap_err()
            .to_string();
        assert!(err.contains("config key `job.train.epochs`"), "{err}");
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
        let stage = &loaded.pipeline().unwrap().stages[0];
        assert_eq!(stage.kind, "white_balance");
        assert_eq!(
            stage.config.get("gains").map(|g| g.to_string()),
            Some("[2.0, 1.0, 1.5]".to_string())
        );
        std::fs::write(dir.path().join("loop.toml"), "include = [\"loop.toml\"]\n").unwrap();
        let err = format!("{:#}", load(&dir.path().join("loop.toml"), &[]).unwrap_err());
        assert!(err.contains("more than 8 levels"), "{err}");
    }

    /// The published Microscopy camera, named once by an experiment config, reaches every pipeline the
    /// job names (and the config's own), over each pipeline's own camera.
    #[test]
    fn a_camera_preset_is_set_over_every_pipeline_a_config_runs() {
        let dir = tempfile::tempdir().unwrap();
        let configs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
        let preset = configs.join("cameras/raw-microscopy.toml");
        let text = format!(
            "camera_preset = {preset:?}\npipeline = [\"white_balance\"]\n[stages.white_balance]\nkind = \"white_balance\"\n",
            preset = preset.to_str().unwrap()
        );
        std::fs::write(dir.path().join("main.toml"), text).unwrap();
        let loaded = load(&dir.path().join("main.toml"), &[]).unwrap();
        let gains = |spec: &PipelineSpec, stage: &str| {
            spec.stages
                .iter()
                .find(|s| s.name == stage)
                .unwrap()
                .config
                .get("gains")
                .map(|g| g.to_string())
        };
        assert_eq!(
            gains(&loaded.pipeline().unwrap(), "white_balance").as_deref(),
            Some("[-0.6567, 1.9673, 3.5304]")
        );
        // a published pipeline includes the Raw-Drone camera; the preset wins, stage by stage
        let published = loaded
            .load_pipeline(&configs.join("pipelines/menon2007_unsharp_masking_median_denoising.toml"))
            .unwrap();
        assert_eq!(
            gains(&published, "white_balance").as_deref(),
            Some("[-0.6567, 1.9673, 3.5304]")
        );
        let matrix = published
            .stages
            .iter()
            .find(|s| s.name == "colour_matrix")
            .unwrap()
            .config["matrix"]
            .to_string();
        assert!(matrix.starts_with("[[-2.0338, 0.0933, 0.4157]"), "{matrix}");
        // the demosaicer keeps the pipeline's own CFA: the preset names none
        assert!(published
            .stages
            .iter()
            .find(|s| s.name == "demosaic")
            .unwrap()
            .config
            .contains_key("cfa_pattern"));
        std::fs::write(
            dir.path().join("bad.toml"),
            "[stages.white_balance]\nkind = \"gamma\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("uses-bad.toml"), "camera_preset = \"bad.toml\"\n").unwrap();
        let err = format!("{:#}", load(&dir.path().join("uses-bad.toml"), &[]).unwrap_err());
        assert!(
            err.contains("camera_preset") && err.contains("stages.white_balance.kind"),
            "{err}"
        );
    }

    #[test]
    fn threads_outside_a_sane_range_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for threads in ["0", "-1", "100000"] {
            std::fs::write(dir.path().join("c.toml"), format!("threads = {threads}\n")).unwrap();
            let err = load(&dir.path().join("c.toml"), &[]).unwrap_err().to_string();
            assert!(
                err.contains("config key `threads`: expected 1 to 1024") && err.contains(threads),
                "{err}"
            );
        }
        std::fs::write(dir.path().join("c.toml"), "threads = 2\n").unwrap();
        assert!(load(&dir.path().join("c.toml"), &[]).is_ok());
    }

    #[test]
    fn the_device_is_checked_for_its_spelling() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("c.toml"), "device = \"tpu\"\n").unwrap();
        let err = load(&dir.path().join("c.toml"), &[]).unwrap_err().to_string();
        assert!(err.contains("config key `device`: expected auto, cpu"), "{err}");
    }
}
