//! The training engine end to end, through `l2l-host run`: the stack learns, gradients reach exactly
//! the processing they should, an interrupted run resumes to the same result, and nothing already
//! written is lost.

use l2l_host::config::{self, StageSpec};
use l2l_host::pipeline::Pipeline;
use l2l_host::plugins::Registry;
use l2l_host::train::checkpoint;
use l2l_system_tests::{host_binary, profile_dir, run_host, workspace_root};
use std::path::{Path, PathBuf};
use std::process::Command;
use tch::Tensor;

fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn cells_config(mode: &str, epochs: usize, extra: &str) -> String {
    let pipelines = workspace_root().join("configs/pipelines");
    let include = if mode == "parametrized" { "parametrized.toml" } else { "bilinear_sharpening_filter_median_denoising.toml" };
    format!(
        "include = [{:?}]\ndevice = \"cpu\"\nthreads = 2\n\n[dataset]\nkind = \"synthetic\"\ntask = \"cells\"\ncount = 64\nsize = 64\n\n\
         [task_model]\nkind = \"resnet\"\ndepth = 18\n\n[job]\nkind = \"train\"\nmode = \"{mode}\"\nepochs = {epochs}\nbatch_size = 8\n\
         train_size = 0.75\nworkers = 2\n{extra}",
        pipelines.join(include)
    )
}

/// Rows of `metrics.jsonl`.
fn metrics(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn last_value(run: &Path, split: &str, name: &str) -> f64 {
    metrics(run)
        .iter()
        .rev()
        .find(|r| r["split"] == split)
        .and_then(|r| r["values"][name].as_f64())
        .unwrap()
}

fn run_ok(args: &[&str], cwd: &Path) -> PathBuf {
    let out = run_host(args, None, cwd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{}", stdout, String::from_utf8_lossy(&out.stderr));
    let line = stdout.lines().find_map(|l| l.strip_prefix("run finished: ")).unwrap();
    cwd.join(line)
}

#[test]
fn classification_learns_and_leaves_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "cells.toml", &cells_config("static", 10, "augmentation = \"weak\"\n"));
    // an existing run directory is never written into
    std::fs::create_dir_all(dir.path().join("runs/train-1")).unwrap();
    std::fs::write(dir.path().join("runs/train-1/keep.txt"), "mine").unwrap();
    let run = run_ok(&["run", config.to_str().unwrap()], dir.path());
    assert!(run.ends_with("runs/train-2"), "{}", run.display());
    assert_eq!(std::fs::read_to_string(dir.path().join("runs/train-1/keep.txt")).unwrap(), "mine");
    assert_eq!(std::fs::read_dir(dir.path().join("runs/train-1")).unwrap().count(), 1);

    let accuracy = last_value(&run, "train", "accuracy");
    assert!(accuracy >= 0.95, "training accuracy {accuracy}");
    for file in ["config.toml", "run.json", "metrics.csv", "summary.json", "learning_curves.png", "checkpoints/checkpoint.safetensors"] {
        assert!(run.join(file).is_file(), "{file} missing");
    }
    let tracked = run.join("tracked/fold0/epoch010");
    for file in ["stages.png", "gradients.png", "predictions.png", "predictions.json"] {
        assert!(tracked.join(file).is_file(), "{file} missing");
    }
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 10, "{csv}");
    assert!(csv.lines().next().unwrap().contains("precision_EOS"));
    // the MLflow file store: experiment, run, params and one metric line per epoch
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("run.json")).unwrap()).unwrap();
    let mlflow = PathBuf::from(record["mlflow_run"].as_str().unwrap());
    let meta = std::fs::read_to_string(mlflow.join("meta.yaml")).unwrap();
    assert!(meta.contains("status: 3") && meta.contains("artifact_uri: file://"), "{meta}");
    assert_eq!(std::fs::read_to_string(mlflow.join("params/job.mode")).unwrap(), "static");
    let losses = std::fs::read_to_string(mlflow.join("metrics/fold0_validation_loss")).unwrap();
    assert_eq!(losses.lines().count(), 10);
    assert!(std::fs::read_to_string(mlflow.parent().unwrap().join("meta.yaml")).unwrap().contains("name: l2l"));
}

#[test]
fn segmentation_learns() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = workspace_root().join("configs/pipelines/bilinear_sharpening_filter_median_denoising.toml");
    let text = format!(
        "include = [{pipeline:?}]\ndevice = \"cpu\"\nthreads = 2\n\n[dataset]\nkind = \"synthetic\"\ntask = \"aerial_cars\"\n\
         count = 32\nsize = 64\ncar_probability = 1.0\ncar_scale = 2.5\n\n[task_model]\nkind = \"unetplusplus\"\nencoder = 18\n\
         decoder_channels = [128, 64, 32, 16, 16]\n\n[job]\nkind = \"train\"\nmode = \"static\"\nepochs = 18\nbatch_size = 8\n\
         lr = 3e-3\ntrain_size = 0.75\nworkers = 2\ntracked_samples = 1\n"
    );
    let config = write_config(dir.path(), "cars.toml", &text);
    let run = run_ok(&["run", config.to_str().unwrap()], dir.path());
    let iou = last_value(&run, "train", "iou");
    assert!(iou >= 0.9, "training IoU {iou}");
}

/// The processing's state before training, as the pipeline builds it.
fn initial_processing(config: &Path) -> Vec<(String, Tensor, bool)> {
    let loaded = config::load(config, &[]).unwrap();
    let registry = Registry::discover(&[profile_dir()]);
    let specs: Vec<StageSpec> = loaded.stage_specs().unwrap();
    let pipeline = Pipeline::build(&registry, &specs, tch::Device::Cpu).unwrap();
    let trainable: Vec<String> = pipeline.parameters().unwrap().into_iter().filter(|p| p.trainable).map(|p| p.name).collect();
    pipeline
        .state()
        .unwrap()
        .into_iter()
        .map(|(n, t)| {
            let learnable = trainable.contains(&n);
            (n, t, learnable)
        })
        .collect()
}

fn trained_processing(run: &Path) -> Vec<(String, Tensor)> {
    let (tensors, _) = checkpoint::read_with_metadata(&run.join("checkpoints/checkpoint.safetensors")).unwrap();
    checkpoint::section(&tensors, "processor")
}

#[test]
fn parametrized_mode_trains_every_isp_parameter_and_static_mode_none() {
    let dir = tempfile::tempdir().unwrap();
    for mode in ["parametrized", "static"] {
        let config = write_config(dir.path(), &format!("{mode}.toml"), &cells_config(mode, 1, "tracked_samples = 0\n"));
        let run = run_ok(&["run", config.to_str().unwrap()], dir.path());
        let trained = trained_processing(&run);
        let initial = initial_processing(&config);
        let mut learnable = 0;
        for (name, before, is_learnable) in initial {
            let after = &trained.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("{name} not in the checkpoint")).1;
            let changed = !before.allclose(after, 0.0, 0.0, false);
            if mode == "static" {
                assert!(!changed, "static mode changed {name}");
            } else if is_learnable {
                learnable += 1;
                assert!(changed, "parametrized mode left the learnable {name} unchanged");
            }
        }
        if mode == "parametrized" {
            // black level, white balance, colour matrix, sharpening kernel, blur kernel, gamma
            assert!(learnable >= 6, "{learnable} learnable parameters");
        }
    }
}

#[test]
fn an_interrupted_run_resumes_to_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "cells.toml", &cells_config("parametrized", 3, "tracked_samples = 0\n"));
    let whole = run_ok(&["run", config.to_str().unwrap()], dir.path());

    let mut child = Command::new(host_binary())
        .args(["run", config.to_str().unwrap()])
        .current_dir(dir.path())
        .env_remove("L2L_PLUGIN_PATH")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let interrupted = dir.path().join("runs/train-2");
    let checkpoint = interrupted.join("checkpoints/checkpoint.safetensors");
    let started = std::time::Instant::now();
    while !checkpoint.exists() && started.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!interrupted.join("summary.json").exists(), "the run finished before it could be interrupted");
    let resumed = run_ok(&["run", "--resume", interrupted.to_str().unwrap()], dir.path());
    assert_eq!(resumed, interrupted);
    let (a, b) = (metrics(&whole), metrics(&resumed));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        for (name, value) in x["values"].as_object().unwrap() {
            let other = y["values"][name].as_f64().unwrap();
            assert!((value.as_f64().unwrap() - other).abs() < 1e-6, "{name}: {value} vs {other}");
        }
    }
}

#[test]
fn contradictory_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "c.toml", &cells_config("static", 1, "freeze_processor = true\nfreeze_task_model = true\n"));
    let out = run_host(&["run", config.to_str().unwrap()], None, dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("freezing both"), "{err}");
    let config = write_config(dir.path(), "d.toml", &cells_config("neural_network", 1, ""));
    let err = String::from_utf8_lossy(&run_host(&["run", config.to_str().unwrap()], None, dir.path()).stderr).to_string();
    assert!(err.contains("processor_nn"), "{err}");
}

/// A stage that starts returning NaN stops training with the stage's name, the epoch and the step;
/// the checkpoint of the last good epoch stays as it was.
#[test]
fn a_numeric_fault_stops_training_naming_the_stage_and_keeps_the_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    l2l_system_tests::install_testkit(&plugins);
    // 24 training samples in batches of 8: 3 steps per epoch (and 1 validation batch, 1 tracked pass);
    // the stage passes 6 calls, so epoch 1 (3 + 1) and two steps of epoch 2 are fine, step 3 of epoch 2 is not
    let text = format!(
        "plugin_dirs = [{plugins:?}]\ndevice = \"cpu\"\nthreads = 2\npipeline = [\"pack\", \"fault\"]\n\n\
         [stages.pack]\nkind = \"pack\"\ncfa_from_metadata = true\n\n[stages.fault]\nkind = \"nan_after\"\ncalls = 6\n\n\
         [dataset]\nkind = \"synthetic\"\ntask = \"cells\"\ncount = 32\nsize = 32\n\n[task_model]\nkind = \"resnet\"\ndepth = 18\n\n\
         [job]\nkind = \"train\"\nmode = \"static\"\nepochs = 3\nbatch_size = 8\ntrain_size = 0.75\ntracked_samples = 0\nworkers = 1\n"
    );
    let config = write_config(dir.path(), "nan.toml", &text);
    let out = run_host(&["run", config.to_str().unwrap()], None, dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "training went on through NaN");
    assert!(err.contains("fold 0 epoch 2 step 3") && err.contains("stage `fault`") && err.contains("NaN"), "{err}");
    let (_, metadata) = checkpoint::read_with_metadata(&dir.path().join("runs/train-1/checkpoints/checkpoint.safetensors")).unwrap();
    let progress: serde_json::Value = serde_json::from_str(&metadata["l2l_progress"]).unwrap();
    assert_eq!(progress["epochs_done"], 1, "the checkpoint is the last good epoch's");
}
