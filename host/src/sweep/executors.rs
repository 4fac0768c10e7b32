//! Running a sweep's unfinished jobs: child processes here (`local`) or one Slurm job array (`slurm`).

use super::manifest::{manifest, result_of, Executor, SweepJob};
use crate::imageio::write_atomically;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

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
                        let child = Command::new(&host)
                            .arg("run")
                            .arg(&job.config)
                            .stdout(log.try_clone()?)
                            .stderr(log)
                            .spawn()?;
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
            let index: BTreeMap<&str, usize> = manifest
                .jobs
                .iter()
                .enumerate()
                .map(|(i, j)| (j.id.as_str(), i))
                .collect();
            let lines: String = manifest
                .jobs
                .iter()
                .map(|j| format!("{} {} {}\n", j.id, j.config.display(), j.log.display()))
                .collect();
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
            let output = Command::new("sbatch")
                .arg("--parsable")
                .arg(&script_path)
                .output()
                .context("running sbatch (is Slurm installed and SLURM_CONF set?)")?;
            if !output.status.success() {
                bail!(
                    "sbatch refused the sweep: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                );
            }
            let job_id = String::from_utf8_lossy(&output.stdout)
                .trim()
                .split(';')
                .next()
                .unwrap_or_default()
                .to_string();
            tracing::info!("submitted Slurm array job {job_id} ({} tasks)", pending.len());
            let submissions = dir.join("slurm_jobs.txt");
            let mut previous = std::fs::read_to_string(&submissions).unwrap_or_default();
            previous += &format!("{job_id}\n");
            write_atomically(&submissions, |out| Ok(out.write_all(previous.as_bytes())?))?;
            if wait {
                let started = std::time::Instant::now();
                loop {
                    let queue = Command::new("squeue")
                        .args(["-h", "-j", &job_id])
                        .output()
                        .context("running squeue")?;
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
