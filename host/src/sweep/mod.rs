//! Sweeps: a drift-synthesis experiment split into a grid of independent jobs — training pipeline ×
//! fold × augmentation — each a plain `l2l-host run` of a fully resolved config, run here in parallel
//! (`local`) or as one Slurm job array (`slurm`), then collected into the experiment's matrices and
//! report. A job is finished when its `results.json` exists (written atomically, so a killed job never
//! looks finished); running a sweep again runs only the jobs that are not.

use crate::config::{self, Augmentation, LoadedConfig};
use crate::experiments::{self, DriftRaw};
use crate::imageio::write_atomically;
use crate::tracking;
use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `[sweep]`: the grid's extra axis and where the jobs run.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    /// Augmentations to train with (default: the job's own).
    #[serde(default)]
    pub augmentations: Vec<Augmentation>,
    /// `local` or `slurm`.
    #[serde(default)]
    pub executor: Executor,
    /// local: jobs at a time (default 1).
    #[serde(default)]
    pub parallel: Option<usize>,
    /// slurm: per-task resources.
    #[serde(default)]
    pub slurm: SlurmResources,
}

/// Where the jobs run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Executor {
    /// Child processes on this machine.
    #[default]
    Local,
    /// One `sbatch --array` submission.
    Slurm,
}

/// Per-task Slurm resources; unset ones are left to the cluster's defaults.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmResources {
    /// `--partition`.
    pub partition: Option<String>,
    /// `--time`, e.g. "02:00:00".
    pub time: Option<String>,
    /// `--cpus-per-task`.
    pub cpus: Option<u32>,
    /// `--gpus`.
    pub gpus: Option<u32>,
    /// `--mem`, e.g. "16G".
    pub memory: Option<String>,
}

/// One job of a sweep.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct SweepJob {
    /// Stable id: `pipeline__fold-K__augmentation`.
    pub id: String,
    /// Its fully resolved config.
    pub config: PathBuf,
    /// Where its run directory goes.
    pub dir: PathBuf,
    /// Its log.
    pub log: PathBuf,
}

/// The sweep manifest (`manifest.json`).
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct Manifest {
    /// Training pipelines (stems), in matrix order.
    pub train: Vec<String>,
    /// Test pipelines (stems).
    pub test: Vec<String>,
    /// The metric.
    pub metric: Option<String>,
    /// The jobs.
    pub jobs: Vec<SweepJob>,
    /// How to run them.
    pub sweep: SweepConfig,
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| std::env::current_dir().unwrap_or_default().join(path))
}

/// The result file of a finished job, if any.
pub fn result_of(job: &SweepJob) -> Option<PathBuf> {
    let entries = std::fs::read_dir(&job.dir).ok()?;
    entries.flatten().map(|e| e.path().join("results.json")).find(|p| p.is_file())
}

/// Expands the drift-synthesis config `loaded` into a new sweep directory of job configs.
pub fn create(loaded: &LoadedConfig) -> Result<PathBuf> {
    let Some(config::JobConfig::DriftSynthesis(job)) = &loaded.config.job else {
        bail!("config {}: a sweep expands a `drift_synthesis` job", loaded.path.display());
    };
    let sweep = loaded.config.sweep.clone().unwrap_or_default();
    let dir = absolute(&tracking::create_run_dir(&job.output_dir, &format!("{}-sweep", job.name))?);
    let training: Vec<PathBuf> = job.pipelines.iter().map(|p| absolute(&loaded.resolve(p))).collect();
    let testing: Vec<PathBuf> = if job.test_pipelines.is_empty() { training.clone() } else { job.test_pipelines.iter().map(|p| absolute(&loaded.resolve(p))).collect() };
    let augmentations = if sweep.augmentations.is_empty() { vec![job.train.augmentation] } else { sweep.augmentations.clone() };
    let stem = |p: &Path| p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    // the config as every job sees it: absolute paths, no [sweep]
    let mut base = loaded.resolved.clone();
    base.remove("sweep");
    if let Some(spec) = loaded.dataset_spec()? {
        let mut table: toml::Table = spec.config_text.parse()?;
        table.insert("kind".into(), toml::Value::String(spec.kind));
        if let Some(plugin) = spec.plugin {
            table.insert("plugin".into(), toml::Value::String(plugin));
        }
        for key in config::DATASET_PATH_KEYS {
            if let Some(toml::Value::String(p)) = table.get(*key) {
                let p = absolute(Path::new(p)).to_string_lossy().into_owned();
                table.insert(key.to_string(), toml::Value::String(p));
            }
        }
        base.insert("dataset".into(), toml::Value::Table(table));
    }
    let dirs: Vec<toml::Value> = loaded.plugin_dirs().iter().map(|p| toml::Value::String(absolute(p).to_string_lossy().into_owned())).collect();
    base.insert("plugin_dirs".into(), toml::Value::Array(dirs));
    let folds = job.train.n_splits;
    let mut jobs = Vec::new();
    for pipeline in &training {
        for fold in (0..folds).filter(|f| job.train.trains_fold(*f)) {
            for augmentation in &augmentations {
                let aug = serde_json::to_value(augmentation)?.as_str().unwrap_or_default().to_string();
                let id = format!("{}__fold-{fold}__{aug}", stem(pipeline));
                let job_dir = dir.join("jobs").join(&id);
                std::fs::create_dir_all(&job_dir)?;
                let mut table = base.clone();
                let job_table = table.get_mut("job").and_then(toml::Value::as_table_mut).ok_or_else(|| anyhow!("config has no [job] table"))?;
                job_table.insert("pipelines".into(), toml::Value::Array(vec![toml::Value::String(pipeline.to_string_lossy().into_owned())]));
                job_table.insert(
                    "test_pipelines".into(),
                    toml::Value::Array(testing.iter().map(|p| toml::Value::String(p.to_string_lossy().into_owned())).collect()),
                );
                job_table.insert("output_dir".into(), toml::Value::String(job_dir.join("run").to_string_lossy().into_owned()));
                job_table.insert("name".into(), toml::Value::String("result".into()));
                let train = job_table.get_mut("train").and_then(toml::Value::as_table_mut).ok_or_else(|| anyhow!("config has no [job.train] table"))?;
                train.insert("folds".into(), toml::Value::Array(vec![toml::Value::Integer(fold as i64)]));
                train.insert("augmentation".into(), toml::Value::String(aug));
                let path = job_dir.join("config.toml");
                let text = toml::to_string(&table)?;
                write_atomically(&path, |out| Ok(out.write_all(text.as_bytes())?))?;
                jobs.push(SweepJob { id: id.clone(), config: path, dir: job_dir.join("run"), log: dir.join("logs").join(format!("{id}.log")) });
            }
        }
    }
    std::fs::create_dir_all(dir.join("logs"))?;
    let manifest = Manifest {
        train: training.iter().map(|p| stem(p)).collect(),
        test: testing.iter().map(|p| stem(p)).collect(),
        metric: job.metric.clone(),
        jobs,
        sweep,
    };
    write_atomically(&dir.join("manifest.json"), |out| Ok(serde_json::to_writer_pretty(out, &manifest)?))?;
    Ok(dir)
}

/// Reads a sweep's manifest.
pub fn manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join("manifest.json");
    serde_json::from_slice(&std::fs::read(&path).with_context(|| format!("{}: not a sweep directory", dir.display()))?)
        .with_context(|| format!("reading {}", path.display()))
}

/// Runs the sweep's unfinished jobs with `executor` (default: the manifest's); returns how many were
/// started. With Slurm, `wait` polls `squeue` until the array has left the queue.
pub fn run(dir: &Path, executor: Option<Executor>, wait: bool) -> Result<usize> {
    let manifest = manifest(dir)?;
    let pending: Vec<&SweepJob> = manifest.jobs.iter().filter(|j| result_of(j).is_none()).collect();
    if pending.is_empty() {
        return Ok(0);
    }
    let host = std::env::current_exe()?;
    match executor.unwrap_or(manifest.sweep.executor) {
        Executor::Local => {
            let parallel = manifest.sweep.parallel.unwrap_or(1).max(1);
            let mut failed = Vec::new();
            for chunk in pending.chunks(parallel) {
                let children = chunk
                    .iter()
                    .map(|job| {
                        let log = std::fs::File::create(&job.log)?;
                        let child = Command::new(&host).arg("run").arg(&job.config).stdout(log.try_clone()?).stderr(log).spawn()?;
                        Ok((job, child))
                    })
                    .collect::<Result<Vec<_>>>()?;
                for (job, mut child) in children {
                    if !child.wait()?.success() {
                        failed.push(job.id.clone());
                    }
                }
            }
            if !failed.is_empty() {
                tracing::warn!("{} job(s) failed: {}", failed.len(), failed.join(", "));
            }
        }
        Executor::Slurm => {
            let index: BTreeMap<&str, usize> = manifest.jobs.iter().enumerate().map(|(i, j)| (j.id.as_str(), i)).collect();
            let lines: String = manifest.jobs.iter().map(|j| format!("{} {} {}\n", j.id, j.config.display(), j.log.display())).collect();
            write_atomically(&dir.join("jobs.txt"), |out| Ok(out.write_all(lines.as_bytes())?))?;
            let array: Vec<String> = pending.iter().map(|j| index[j.id.as_str()].to_string()).collect();
            let r = &manifest.sweep.slurm;
            let mut script = String::from("#!/bin/bash\n#SBATCH --job-name=l2l-sweep\n#SBATCH --output=/dev/null\n");
            script += &format!("#SBATCH --array={}\n", array.join(","));
            if let Some(p) = &r.partition {
                script += &format!("#SBATCH --partition={p}\n");
            }
            if let Some(t) = &r.time {
                script += &format!("#SBATCH --time={t}\n");
            }
            if let Some(c) = r.cpus {
                script += &format!("#SBATCH --cpus-per-task={c}\n");
            }
            if let Some(g) = r.gpus {
                script += &format!("#SBATCH --gpus={g}\n");
            }
            if let Some(m) = &r.memory {
                script += &format!("#SBATCH --mem={m}\n");
            }
            script += &format!(
                "set -euo pipefail\nread -r id config log < <(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" {jobs})\nexec {host} run \"$config\" > \"$log\" 2>&1\n",
                jobs = dir.join("jobs.txt").display(),
                host = host.display()
            );
            let script_path = dir.join("sweep.sbatch");
            write_atomically(&script_path, |out| Ok(out.write_all(script.as_bytes())?))?;
            let output = Command::new("sbatch").arg("--parsable").arg(&script_path).output().context("running sbatch (is Slurm installed and SLURM_CONF set?)")?;
            if !output.status.success() {
                bail!("sbatch refused the sweep: {}", String::from_utf8_lossy(&output.stderr).trim());
            }
            let job_id = String::from_utf8_lossy(&output.stdout).trim().split(';').next().unwrap_or_default().to_string();
            tracing::info!("submitted Slurm array job {job_id} ({} tasks)", pending.len());
            let submissions = dir.join("slurm_jobs.txt");
            let mut previous = std::fs::read_to_string(&submissions).unwrap_or_default();
            previous += &format!("{job_id}\n");
            write_atomically(&submissions, |out| Ok(out.write_all(previous.as_bytes())?))?;
            if wait {
                let started = std::time::Instant::now();
                loop {
                    let queue = Command::new("squeue").args(["-h", "-j", &job_id]).output().context("running squeue")?;
                    if queue.status.success() && String::from_utf8_lossy(&queue.stdout).trim().is_empty() {
                        break;
                    }
                    if started.elapsed().as_secs() > 24 * 3600 {
                        bail!("Slurm job {job_id} still queued after a day");
                    }
                    std::thread::sleep(std::time::Duration::from_secs(2));
                }
            }
        }
    }
    Ok(pending.len())
}

/// What collecting found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Collected {
    /// Jobs with results.
    pub finished: usize,
    /// Jobs without results: id and log path.
    pub missing: Vec<(String, PathBuf)>,
    /// One report directory per augmentation.
    pub reports: Vec<PathBuf>,
}

/// Gathers the finished jobs into one drift matrix (and report) per augmentation, in `dir/collected/`.
pub fn collect(dir: &Path) -> Result<Collected> {
    let manifest = manifest(dir)?;
    let mut missing = Vec::new();
    // augmentation → per train pipeline, per test pipeline, the fold values
    let mut by_augmentation: BTreeMap<String, (Augmentation, Vec<Vec<Vec<(usize, f64)>>>)> = BTreeMap::new();
    let mut metric = manifest.metric.clone();
    for job in &manifest.jobs {
        let Some(path) = result_of(job) else {
            missing.push((job.id.clone(), job.log.clone()));
            continue;
        };
        let results: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
        let raw: DriftRaw = serde_json::from_value(results["raw"].clone()).with_context(|| format!("{}: no per-fold values", path.display()))?;
        let train = results["matrix"]["train"][0].as_str().unwrap_or_default().to_string();
        metric = metric.or_else(|| results["matrix"]["metric"].as_str().map(String::from));
        let row = manifest.train.iter().position(|t| *t == train).ok_or_else(|| anyhow!("{}: unknown training pipeline `{train}`", path.display()))?;
        let key = serde_json::to_value(raw.augmentation)?.as_str().unwrap_or_default().to_string();
        let entry = by_augmentation
            .entry(key)
            .or_insert_with(|| (raw.augmentation, vec![vec![Vec::new(); manifest.test.len()]; manifest.train.len()]));
        for (column, values) in raw.values.first().map(Vec::as_slice).unwrap_or_default().iter().enumerate() {
            for (fold, value) in raw.folds.iter().zip(values) {
                entry.1[row][column].push((*fold, *value));
            }
        }
    }
    let mut reports = Vec::new();
    for (name, (augmentation, cells)) in by_augmentation {
        let folds: Vec<usize> = {
            let mut f: Vec<usize> = cells.iter().flatten().flatten().map(|(f, _)| *f).collect();
            f.sort_unstable();
            f.dedup();
            f
        };
        let values: Vec<Vec<Vec<f64>>> = cells
            .iter()
            .map(|row| {
                row.iter()
                    .map(|cell| {
                        let mut cell = cell.clone();
                        cell.sort_by_key(|(f, _)| *f);
                        cell.into_iter().map(|(_, v)| v).collect()
                    })
                    .collect()
            })
            .collect();
        let matrix = experiments::matrix_from_values(manifest.train.clone(), manifest.test.clone(), metric.clone().unwrap_or_else(|| "metric".into()), &values);
        let report = dir.join("collected").join(&name);
        std::fs::create_dir_all(&report)?;
        experiments::write_drift_report(&report, &matrix, &[], &DriftRaw { folds, values, augmentation })?;
        reports.push(report);
    }
    let collected = Collected { finished: manifest.jobs.len() - missing.len(), missing, reports };
    write_atomically(&dir.join("collected.json"), |out| Ok(serde_json::to_writer_pretty(out, &collected)?))?;
    Ok(collected)
}
