//! Where runs leave their results: a new directory per run (never an existing one), metrics as CSV and
//! JSON lines, the same run laid out in MLflow's file-store format (so `mlflow ui` can browse it),
//! and (in `plots`) image grids of tensors, learning curves and charts as PNG.

mod charts;
mod metrics;
mod plots;

pub use charts::{plot_estimate_bars, plot_estimate_curves, plot_matrix, ColourScale, XScale};
pub use metrics::{write_metrics, MetricsRow};
pub use plots::{plot_learning_curves, plot_mean_curves, write_grid};

use crate::imageio::write_atomically;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Creates `parent/NAME-N` for the first N that does not exist yet, so no run overwrites another.
pub fn create_run_dir(parent: &Path, name: &str) -> Result<PathBuf> {
    check_run_name(name)?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    for n in 1.. {
        let dir = parent.join(format!("{name}-{n}"));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating run directory {}", dir.display())),
        }
    }
    unreachable!("the run-number loop only ends by returning")
}

/// A run name is a plain name: one with a separator would put the run outside its parent
/// (`name = "../../x"`).
pub fn check_run_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
        bail!("run name `{name}`: expected a plain name (no `/`, not `.` or `..`)");
    }
    Ok(())
}

/// Milliseconds since the epoch, as MLflow records times.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A `file://` URI of a local path, percent-encoded: a run directory named `cells: try #2-1` would
/// otherwise end at the `#` (a URI fragment) for MLflow's artifact reader.
fn file_uri(path: &Path) -> String {
    let mut uri = String::from("file://");
    for byte in path.to_string_lossy().bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            uri.push(byte as char);
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri
}

/// A YAML scalar for any text: a double-quoted string in JSON's escaping, which YAML reads as is —
/// names with `: `, ` #`, quotes, newlines or any Unicode stay what they are.
fn yaml_string(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

/// Who started a run, as MLflow's `user_id` and `mlflow.user` record it.
pub fn user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "l2l".into())
}

/// A run in an MLflow file store (`mlruns/EXPERIMENT_ID/RUN_ID/` with `meta.yaml`, `params/`,
/// `metrics/`, `tags/`); its artifacts are the run directory itself.
pub struct MlflowRun {
    dir: PathBuf,
    meta: BTreeMap<&'static str, String>,
}

impl MlflowRun {
    /// Files a new run under experiment `experiment` (created when missing) in `store`.
    pub fn create(
        store: &Path,
        experiment: &str,
        run_name: &str,
        run_dir: &Path,
        params: &BTreeMap<String, String>,
        tags: &BTreeMap<String, String>,
    ) -> Result<Self> {
        std::fs::create_dir_all(store).with_context(|| format!("creating {}", store.display()))?;
        let store = store.canonicalize()?;
        let run_dir = run_dir.canonicalize()?;
        let mut experiment_id = None;
        let mut highest = 0u64;
        for entry in std::fs::read_dir(&store)?.flatten() {
            let Ok(id) = entry.file_name().to_string_lossy().parse::<u64>() else {
                continue;
            };
            highest = highest.max(id);
            let meta = std::fs::read_to_string(entry.path().join("meta.yaml")).unwrap_or_default();
            if meta
                .lines()
                .any(|l| l.trim() == format!("name: {}", yaml_string(experiment)))
            {
                experiment_id = Some(id);
            }
        }
        let experiment_id = match experiment_id {
            Some(id) => id,
            None => {
                let id = highest + 1;
                let dir = store.join(id.to_string());
                std::fs::create_dir_all(&dir)?;
                let time = now_millis();
                let yaml = format!(
                    "artifact_location: {}\ncreation_time: {time}\nexperiment_id: '{id}'\nlast_update_time: {time}\nlifecycle_stage: active\nname: {}\n",
                    yaml_string(&file_uri(&dir)),
                    yaml_string(experiment)
                );
                write_atomically(&dir.join("meta.yaml"), |out| Ok(out.write_all(yaml.as_bytes())?))?;
                id
            }
        };
        let run_id = format!(
            "{:016x}{:016x}",
            now_millis(),
            u64::from(std::process::id()) << 20 ^ highest
        );
        let dir = store.join(experiment_id.to_string()).join(&run_id);
        for sub in ["params", "metrics", "tags", "artifacts"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        for (key, value) in params {
            write_atomically(
                &dir.join("params").join(key),
                |out| Ok(out.write_all(value.as_bytes())?),
            )?;
        }
        write_atomically(&dir.join("tags").join("mlflow.runName"), |out| {
            Ok(out.write_all(run_name.as_bytes())?)
        })?;
        for (key, value) in tags {
            write_atomically(&dir.join("tags").join(key), |out| Ok(out.write_all(value.as_bytes())?))?;
        }
        let mut meta = BTreeMap::new();
        meta.insert("artifact_uri", yaml_string(&file_uri(&run_dir)));
        meta.insert("end_time", "null".into());
        meta.insert("entry_point_name", "''".into());
        meta.insert("experiment_id", format!("'{experiment_id}'"));
        meta.insert("lifecycle_stage", "active".into());
        meta.insert("run_id", run_id.clone());
        meta.insert("run_name", yaml_string(run_name));
        meta.insert("run_uuid", run_id);
        meta.insert("source_name", "''".into());
        meta.insert("source_type", "4".into());
        meta.insert("source_version", "''".into());
        meta.insert("start_time", now_millis().to_string());
        meta.insert("status", "1".into());
        meta.insert("tags", "[]".into());
        meta.insert("user_id", yaml_string(&user()));
        let run = Self { dir, meta };
        run.write_meta()?;
        Ok(run)
    }

    /// Reopens a run filed earlier (for a resumed training).
    pub fn open(dir: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(dir.join("meta.yaml"))
            .with_context(|| format!("reading {}", dir.join("meta.yaml").display()))?;
        let mut meta = BTreeMap::new();
        for line in text.lines() {
            if let Some((key, value)) = line.split_once(": ") {
                let key: &'static str = Box::leak(key.to_string().into_boxed_str());
                meta.insert(key, value.to_string());
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            meta,
        })
    }

    /// The run's folder in the store.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn write_meta(&self) -> Result<()> {
        let yaml: String = self.meta.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
        write_atomically(&self.dir.join("meta.yaml"), |out| Ok(out.write_all(yaml.as_bytes())?))
    }

    /// Rewrites every metric file from `rows` (`SPLIT_NAME` per fold: `fold0_validation_accuracy`),
    /// one `timestamp value step` line per epoch, at the time the row was measured.
    pub fn write_metrics(&self, rows: &[MetricsRow]) -> Result<()> {
        let mut files: BTreeMap<String, String> = BTreeMap::new();
        for row in rows {
            for (name, value) in &row.values {
                let key = format!("fold{}_{}_{name}", row.fold, row.split);
                *files.entry(key).or_default() += &format!("{} {value} {}\n", row.time_ms, row.epoch);
            }
        }
        for (key, text) in files {
            write_atomically(&self.dir.join("metrics").join(key), |out| {
                Ok(out.write_all(text.as_bytes())?)
            })?;
        }
        Ok(())
    }

    /// Marks the run finished (or failed).
    pub fn finish(&mut self, success: bool) -> Result<()> {
        self.meta.insert("status", if success { "3" } else { "4" }.into());
        self.meta.insert("end_time", now_millis().to_string());
        self.write_meta()
    }
}
