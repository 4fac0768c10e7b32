//! Sweeps: a drift-synthesis grid run by the local executor and by a real Slurm cluster gives the same
//! matrix; a failing job is reported with its log and completes when run again.
//!
//! The Slurm test needs a cluster (`scripts/slurm-cluster.sh start DIR` and its `SLURM_CONF`): it is
//! `#[ignore = "needs a Slurm cluster …"]`, and `.ci/run`, which starts one, runs it with `--ignored`.

use l2l_system_tests::{run_host, workspace_root};
use std::path::{Path, PathBuf};

fn config(dir: &Path) -> PathBuf {
    let pipelines = workspace_root().join("configs/pipelines");
    let text = format!(
        "device = \"cpu\"\nthreads = 1\n\n[dataset]\nkind = \"synthetic\"\ntask = \"cells\"\ncount = 32\nsize = 32\n\n\
         [task_model]\nkind = \"resnet\"\ndepth = 18\n\n[job]\nkind = \"drift_synthesis\"\npipelines = [{:?}, {:?}]\n\n\
         [job.train]\nmode = \"static\"\nepochs = 1\nbatch_size = 8\nn_splits = 2\ntrain_size = 0.75\ntracked_samples = 0\nworkers = 1\n\n\
         [sweep]\nparallel = 2\n",
        pipelines.join("bilinear_sharpening_filter_median_denoising.toml"),
        pipelines.join("menon2007_unsharp_masking_gaussian_denoising.toml"),
    );
    let path = dir.join("sweep.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn host(args: &[&str], dir: &Path) -> (bool, String, String) {
    let out = run_host(args, None, dir);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn sweep_dir(stdout: &str) -> PathBuf {
    PathBuf::from(
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("sweep: "))
            .expect("the sweep directory"),
    )
}

fn matrix(sweep: &Path) -> serde_json::Value {
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sweep.join("collected/none/results.json")).unwrap()).unwrap();
    results["raw"]["values"].clone()
}

/// Runs the grid with the local executor in `dir`; its matrix, checked to have a value per fold.
fn local_matrix(dir: &Path, config: &Path) -> serde_json::Value {
    let (ok, out, err) = host(
        &["sweep", "start", config.to_str().unwrap(), "--executor", "local"],
        dir,
    );
    assert!(ok, "{err}");
    let local = sweep_dir(&out);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(local.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["jobs"].as_array().unwrap().len(), 4, "2 pipelines × 2 folds");
    let (ok, out, err) = host(&["sweep", "collect", local.to_str().unwrap()], dir);
    assert!(ok && out.contains("4 job(s) finished, 0 missing"), "{out}{err}");
    let local_values = matrix(&local);
    assert_eq!(local_values.as_array().unwrap().len(), 2);
    assert_eq!(local_values[0][0].as_array().unwrap().len(), 2, "one value per fold");
    // a second start on the same directory has nothing left to run
    let (ok, out, _) = host(&["sweep", "run", local.to_str().unwrap()], dir);
    assert!(ok && out.contains("ran 0 unfinished"), "{out}");
    local_values
}

#[test]
fn the_local_executor_runs_every_job_once() {
    let dir = tempfile::tempdir().unwrap();
    local_matrix(dir.path(), &config(dir.path()));
}

#[test]
#[ignore = "needs a Slurm cluster (SLURM_CONF; .ci/run starts one with scripts/slurm-cluster.sh)"]
fn local_and_slurm_executors_give_the_same_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    assert!(
        std::env::var_os("SLURM_CONF").is_some(),
        "no Slurm cluster: SLURM_CONF is not set"
    );
    let local_values = local_matrix(dir.path(), &config);
    let (ok, out, err) = host(
        &["sweep", "start", config.to_str().unwrap(), "--executor", "slurm"],
        dir.path(),
    );
    assert!(ok, "{err}");
    let slurm = sweep_dir(&out);
    assert!(
        slurm.join("sweep.sbatch").is_file()
            && std::fs::read_to_string(slurm.join("sweep.sbatch"))
                .unwrap()
                .contains("--array=0,1,2,3")
    );
    let (ok, out, err) = host(&["sweep", "collect", slurm.to_str().unwrap()], dir.path());
    assert!(ok, "{out}{err}");
    assert_eq!(
        matrix(&slurm),
        local_values,
        "Slurm and local runs of the same grid differ"
    );
}

#[test]
fn a_failed_job_is_reported_with_its_log_and_completes_when_run_again() {
    a_failed_job_is_resubmitted_alone("local");
}

#[test]
#[ignore = "needs a Slurm cluster (SLURM_CONF; .ci/run starts one with scripts/slurm-cluster.sh)"]
fn a_failed_job_is_resubmitted_to_slurm_alone() {
    assert!(
        std::env::var_os("SLURM_CONF").is_some(),
        "no Slurm cluster: SLURM_CONF is not set"
    );
    a_failed_job_is_resubmitted_alone("slurm");
}

/// A sweep run locally, one of its jobs broken: collect names it and its log; fixed and run again
/// with `executor`, only that job runs and the sweep is complete.
fn a_failed_job_is_resubmitted_alone(executor: &str) {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let (ok, out, err) = host(
        &["sweep", "start", config.to_str().unwrap(), "--executor", "local"],
        dir.path(),
    );
    assert!(ok, "{err}");
    let sweep = sweep_dir(&out);
    // break one finished job: remove its results and corrupt its config, as a bad input would
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sweep.join("manifest.json")).unwrap()).unwrap();
    let job = &manifest["jobs"][1];
    let (id, job_config, job_dir, log) = (
        job["id"].as_str().unwrap().to_string(),
        PathBuf::from(job["config"].as_str().unwrap()),
        PathBuf::from(job["dir"].as_str().unwrap()),
        PathBuf::from(job["log"].as_str().unwrap()),
    );
    std::fs::remove_dir_all(&job_dir).unwrap();
    let good = std::fs::read_to_string(&job_config).unwrap();
    std::fs::write(
        &job_config,
        good.replace("kind = \"synthetic\"", "kind = \"no_such_dataset\""),
    )
    .unwrap();
    let (ok, _, _) = host(&["sweep", "run", sweep.to_str().unwrap()], dir.path());
    assert!(ok, "the sweep itself runs; the job fails");
    let (ok, out, err) = host(&["sweep", "collect", sweep.to_str().unwrap()], dir.path());
    assert!(!ok, "collect must fail while a job is missing");
    assert!(
        out.contains(&format!("missing: {id} (log: {})", log.display())),
        "{out}"
    );
    assert!(err.contains("1 job(s) have no results"), "{err}");
    assert!(
        std::fs::read_to_string(&log).unwrap().contains("no_such_dataset"),
        "the log says why"
    );
    // fixed and resubmitted: only that job runs, and the sweep is complete
    std::fs::write(&job_config, good).unwrap();
    let (ok, out, err) = host(
        &["sweep", "run", sweep.to_str().unwrap(), "--executor", executor],
        dir.path(),
    );
    assert!(ok && out.contains("ran 1 unfinished"), "{out}{err}");
    if executor == "slurm" {
        let script = std::fs::read_to_string(sweep.join("sweep.sbatch")).unwrap();
        assert!(
            script.contains("--array=1\n"),
            "only the failed job is resubmitted: {script}"
        );
    }
    let (ok, out, err) = host(&["sweep", "collect", sweep.to_str().unwrap()], dir.path());
    assert!(ok && out.contains("4 job(s) finished, 0 missing"), "{out}{err}");
}
