//! The fault-injection suite: each test injects one fault a user will meet — corrupt files inside a
//! dataset, a plugin that panics, a plugin that returns a wrongly shaped tensor, a run killed (-9) while
//! it writes a checkpoint, an export killed mid-write, a config naming a missing plugin, NaN in the data
//! or the loss, a full disk, an unwritable run directory — through the `l2l-host` binary as users run
//! it, and asserts the outcome: one clear error naming the culprit, and nothing already written lost or
//! half-written.
//!
//! The disk faults mount a small tmpfs / a read-only bind mount, which needs root: those two tests are
//! `#[ignore = "needs root …"]`, listed as ignored by a plain `cargo test`, and `.ci/run` (root) runs
//! them with `--ignored`, where a failed mount is a failure.

use l2l_host::train::checkpoint;
use l2l_plugin_api::{CfaPattern, RawMetadata};
use l2l_rawio::{write_dng, DngImage};
use l2l_system_tests::{
    assert_same_metrics, cells_config, describe, host_binary, install_testkit, run_host, run_ok, run_process,
    workspace_root, write_config, write_npy_f32,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts that the host failed the way it fails on bad input (exit 1, not a crash); its stderr.
fn failure(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(1), "{}", describe(output));
    stderr(output)
}

/// `l2l-host export` of the raw files in `inputs` through `pipeline` into `output` as float TIFFs.
fn export_tiff(pipeline: &Path, inputs: &Path, output: &Path, cwd: &Path) -> Output {
    run_host(
        &[
            "export",
            "--pipelines",
            pipeline.to_str().unwrap(),
            "--input",
            inputs.to_str().unwrap(),
            "--output",
            output.to_str().unwrap(),
            "--format",
            "tiff",
            "--device",
            "cpu",
        ],
        None,
        cwd,
    )
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// Temporary files `write_atomically` leaves when it is interrupted (`.NAME.PID.tmp`).
fn temporaries_under(dir: &Path) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().ends_with(".tmp")))
        .collect()
}

fn camera() -> RawMetadata {
    RawMetadata {
        cfa_pattern: CfaPattern::Rggb,
        black_level: [0.0; 4],
        white_balance: [1.0; 3],
        colour_matrix: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        intensity: 100.0,
    }
}

/// A 32×32 DNG whose level codes its class (dark "a", bright "b").
fn write_class_dng(path: &Path, bright: bool, seed: usize) {
    let samples: Vec<u16> = (0..32 * 32)
        .map(|i| if bright { 3000 } else { 600 } + ((i * 31 + seed * 7) % 200) as u16)
        .collect();
    let image = DngImage {
        samples: &samples,
        height: 32,
        width: 32,
        white_level: 4095,
        camera: camera(),
        make_model: ("l2l", "t"),
    };
    write_dng(path, &image).unwrap();
}

/// A mounted file system, unmounted on drop.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Mounts at `dir` (created) with `mount ARGS... dir`, unmounted when dropped; a mount that fails
/// is a failure (the tests that mount are ignored unless asked for, and `.ci/run` runs them as root).
fn mount(dir: &Path, args: &[&str], test: &str) -> Mount {
    std::fs::create_dir_all(dir).unwrap();
    let ok = Command::new("mount")
        .args(args)
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{test}: mount {} {} failed (it needs root)",
        args.join(" "),
        dir.display()
    );
    Mount(dir.to_path_buf())
}

/// A training run of the raw_folder dataset in `dir/data` (DNGs listed in labels.csv), through `pack`.
fn folder_training_config(dir: &Path, output_dir: &Path) -> PathBuf {
    let text = format!(
        "device = \"cpu\"\nthreads = 2\npipeline = [\"pack\"]\n\n[stages.pack]\nkind = \"pack\"\ncfa_from_metadata = true\n\n\
         [dataset]\nkind = \"raw_folder\"\nroot = {:?}\nlabels_csv = \"labels.csv\"\n\n[task_model]\nkind = \"resnet\"\ndepth = 18\n\n\
         [job]\nkind = \"train\"\nmode = \"static\"\nepochs = 1\nbatch_size = 4\ntrain_size = 0.75\ntracked_samples = 0\nworkers = 1\n\
         output_dir = {:?}\n",
        dir.join("data"),
        output_dir
    );
    write_config(dir, "folder.toml", &text)
}

/// A dataset with a truncated DNG and a file of noise among good ones: training refuses it naming the
/// first bad file; with `skip_invalid` it trains on the rest and names both in its warnings.
#[test]
fn corrupt_files_inside_a_dataset_are_named_or_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let mut csv = String::from("file,label\n");
    for i in 0..12 {
        write_class_dng(&data.join(format!("img{i:02}.dng")), i % 2 == 1, i);
        csv += &format!("img{i:02}.dng,{}\n", if i % 2 == 1 { "b" } else { "a" });
    }
    let whole = std::fs::read(data.join("img00.dng")).unwrap();
    std::fs::write(data.join("broken.dng"), &whole[..whole.len() / 2]).unwrap();
    std::fs::write(
        data.join("noise.tiff"),
        (0..3000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    csv += "broken.dng,a\nnoise.tiff,b\n";
    std::fs::write(data.join("labels.csv"), csv).unwrap();

    let config = folder_training_config(dir.path(), &dir.path().join("runs"));
    let out = run_host(&["run", config.to_str().unwrap()], None, dir.path());
    let err = failure(&out);
    assert!(err.contains("broken.dng") && err.contains("truncated"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let out = run_host(
        &["run", config.to_str().unwrap(), "--set", "dataset.skip_invalid=true"],
        None,
        dir.path(),
    );
    let err = stderr(&out);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        err.contains("broken.dng") && err.contains("noise.tiff"),
        "the skipped files are named: {err}"
    );
    let run = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("run finished: ").map(String::from));
    let summary = std::fs::read_to_string(dir.path().join(run.expect("a run directory")).join("summary.json")).unwrap();
    assert!(summary.contains("accuracy"), "{summary}");
}

/// A stage that panics: the panic is caught at the plugin boundary and becomes one error naming the
/// stage; no output file is written.
#[test]
fn a_plugin_that_panics_fails_the_command_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    install_testkit(dir.path());
    let config = write_config(
        dir.path(),
        "p.toml",
        "device = \"cpu\"\npipeline = [\"p\"]\n[stages.p]\nkind = \"panics\"\n",
    );
    let raw = dir.path().join("raw.npy");
    write_npy_f32(&raw, 4, 4, std::iter::repeat_n(0.5, 16));
    let output = run_process(&config, &raw, "o.png", &[], Some(dir.path()), dir.path());
    let err = failure(&output);
    assert!(
        err.contains("stages.p") && err.contains("deliberate test panic"),
        "{err}"
    );
    assert!(!dir.path().join("o.png").exists());
}

/// A stage whose output breaks the stage contract (a column cut off) is named with both shapes, in
/// `process` and before a training starts — where a classifier would otherwise take any size without
/// complaint.
#[test]
fn a_plugin_returning_a_wrongly_shaped_tensor_is_named() {
    let dir = tempfile::tempdir().unwrap();
    install_testkit(dir.path());
    let config = write_config(
        dir.path(),
        "p.toml",
        "device = \"cpu\"\npipeline = [\"demosaic\", \"cut\"]\n[stages.demosaic]\nkind = \"demosaic_bilinear\"\n[stages.cut]\nkind = \"wrong_shape\"\n",
    );
    let raw = dir.path().join("raw.npy");
    write_npy_f32(&raw, 8, 8, std::iter::repeat_n(0.5, 64));
    let output = run_process(&config, &raw, "o.png", &[], Some(dir.path()), dir.path());
    let err = failure(&output);
    assert!(
        err.contains("stage `cut`") && err.contains("[1, 3, 8, 7]") && err.contains("[1, 3, 8, 8]"),
        "{err}"
    );
    assert!(!dir.path().join("o.png").exists());

    let text = format!(
        "plugin_dirs = [{:?}]\ndevice = \"cpu\"\npipeline = [\"pack\", \"cut\"]\n[stages.pack]\nkind = \"pack\"\n[stages.cut]\nkind = \"wrong_shape\"\n\n\
         [dataset]\nkind = \"synthetic\"\ntask = \"cells\"\ncount = 16\nsize = 32\n\n[task_model]\nkind = \"resnet\"\ndepth = 18\n\n\
         [job]\nkind = \"train\"\nmode = \"static\"\nepochs = 1\nbatch_size = 4\ntracked_samples = 0\nworkers = 1\n",
        dir.path()
    );
    let config = write_config(dir.path(), "train.toml", &text);
    let out = run_host(&["run", config.to_str().unwrap()], None, dir.path());
    let err = failure(&out);
    // caught on the two samples every training is tried on before it starts
    assert!(
        err.contains("stage `cut`")
            && err.contains("[2, 3, 16, 15]")
            && err.contains("tried on two samples before training"),
        "{err}"
    );
    assert!(!dir.path().join("runs").exists(), "a run directory was left behind");
}

/// The run is SIGKILLed while it writes its second checkpoint: the first checkpoint stays whole, the
/// half-written temporary file never replaces it, and `--resume` removes that file and ends with the
/// same metrics as a run never interrupted.
#[test]
fn kill_9_during_a_checkpoint_write_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "cells.toml",
        &cells_config("parametrized", 3, "tracked_samples = 0\n"),
    );
    let whole = run_ok(&["run", config.to_str().unwrap()], dir.path());

    // the ResNet-18 checkpoint (weights and Adam's moments, ~134 MB) takes a while to write; the
    // temporary file is watched for and the process killed while it is there
    let mut interrupted = None;
    for attempt in 2..=4 {
        let mut child = Command::new(host_binary())
            .args(["run", config.to_str().unwrap()])
            .current_dir(dir.path())
            .env_remove("L2L_PLUGIN_PATH")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let run = dir.path().join(format!("runs/train-{attempt}"));
        let checkpoints = run.join("checkpoints");
        let temporary = checkpoints.join(format!(".checkpoint.safetensors.{}.tmp", child.id()));
        let started = Instant::now();
        while !checkpoints.join("checkpoint.safetensors").exists() && started.elapsed() < Duration::from_secs(300) {
            std::thread::sleep(Duration::from_millis(5));
        }
        while !temporary.exists() && started.elapsed() < Duration::from_secs(300) {
            std::thread::sleep(Duration::from_millis(1));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        if temporary.exists() {
            interrupted = Some(run);
            break;
        }
        eprintln!("attempt {attempt}: the checkpoint write finished before the kill; again");
    }
    let interrupted = interrupted.expect("no kill landed inside a checkpoint write in 3 attempts");
    assert!(!interrupted.join("summary.json").exists());
    let (_, metadata) = checkpoint::read_with_metadata(&interrupted.join("checkpoints/checkpoint.safetensors"))
        .expect("the previous checkpoint is whole");
    let progress: serde_json::Value = serde_json::from_str(&metadata["l2l_progress"]).unwrap();
    assert_eq!(progress["epochs_done"], 1, "the checkpoint on disk is epoch 1's");

    let resumed = run_ok(&["run", "--resume", interrupted.to_str().unwrap()], dir.path());
    assert_eq!(resumed, interrupted);
    assert!(
        temporaries_under(&resumed).is_empty(),
        "left: {:?}",
        temporaries_under(&resumed)
    );
    assert_same_metrics(&whole, &resumed);
}

/// An export killed while writing leaves a temporary file (here planted as a killed writer leaves
/// it: `.NAME.PID.tmp` of a process that no longer runs) and a missing output: run again, it writes
/// only what is missing and removes the temporary file.
#[test]
fn an_export_killed_mid_write_resumes_and_removes_its_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("raws");
    std::fs::create_dir(&inputs).unwrap();
    for i in 0..2 {
        write_npy_f32(
            &inputs.join(format!("r{i}.npy")),
            16,
            16,
            (0..256).map(|p| (p % 13) as f32 / 13.0),
        );
    }
    let pipeline = workspace_root().join("configs/pipelines/bilinear_sharpening_filter_median_denoising.toml");
    let output = dir.path().join("out");
    let export = || export_tiff(&pipeline, &inputs, &output, dir.path());
    let out = export();
    assert!(out.status.success(), "{}", describe(&out));
    let folder = output.join("bilinear_sharpening_filter_median_denoising");
    let finished = std::fs::read(folder.join("r0.tiff")).unwrap();
    std::fs::remove_file(folder.join("r1.tiff")).unwrap();
    // PIDs above 2^22 are never given out, so this writer is gone
    let stale = folder.join(".r1.tiff.4194305.tmp");
    std::fs::write(&stale, &finished[..finished.len() / 2]).unwrap();

    let out = export();
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 already there"),
        "{}",
        describe(&out)
    );
    assert!(!stale.exists(), "the killed writer's temporary file is still there");
    assert_eq!(float_tiff_values(&folder.join("r1.tiff")), 16 * 16 * 3);
    assert_eq!(
        std::fs::read(folder.join("r0.tiff")).unwrap(),
        finished,
        "a finished output was rewritten"
    );
}

/// A config naming a stage no plugin provides, or a plugin that is not installed: one error naming it
/// and where plugins were looked for.
#[test]
fn a_config_naming_a_missing_plugin_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw.npy");
    write_npy_f32(&raw, 4, 4, std::iter::repeat_n(0.5, 16));
    for (stage, expected) in [
        ("kind = \"demosaic_nonexistent\"", "demosaic_nonexistent"),
        (
            "kind = \"demosaic_bilinear\"\nplugin = \"demosaic-vendor\"",
            "demosaic-vendor",
        ),
    ] {
        let config = write_config(
            dir.path(),
            "p.toml",
            &format!("device = \"cpu\"\npipeline = [\"d\"]\n[stages.d]\n{stage}\n"),
        );
        let out = run_process(&config, &raw, "o.png", &[], None, dir.path());
        let err = failure(&out);
        assert!(err.contains(expected) && err.contains("stages.d"), "{err}");
        assert!(err.lines().count() <= 12, "one short error: {err}");
        assert!(!dir.path().join("o.png").exists());
    }
}

/// NaN samples in a raw file are refused naming the file.
#[test]
fn nan_in_a_raw_file_is_refused_with_the_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = workspace_root().join("configs/pipelines/bilinear_sharpening_filter_median_denoising.toml");
    let raw = dir.path().join("nan.npy");
    write_npy_f32(&raw, 4, 4, (0..16).map(|i| if i == 5 { f32::NAN } else { 0.5 }));
    let output = run_process(&config, &raw, "o.png", &[], None, dir.path());
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(
        err.contains("nan.npy") && err.contains("1 samples are NaN or infinite"),
        "{err}"
    );
}

/// A DNG that makes rawloader panic inside (no raw image directory left after its filter) gives one
/// short error naming the file — no panic message or backtrace on the way.
#[test]
fn a_malformed_dng_is_one_short_error_without_a_panic_dump() {
    let dir = tempfile::tempdir().unwrap();
    let dng = dir.path().join("odd.dng");
    let samples = vec![100u16; 16 * 16];
    let image = DngImage {
        samples: &samples,
        height: 16,
        width: 16,
        white_level: 4095,
        camera: camera(),
        make_model: ("l2l", "t"),
    };
    write_dng(&dng, &image).unwrap();
    // Compression (tag 259, SHORT, 1 value) from 1 to 5: rawloader finds no raw IFD and panics inside
    let mut bytes = std::fs::read(&dng).unwrap();
    let entry = [0x03u8, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00];
    let at = bytes
        .windows(entry.len())
        .position(|w| w == entry)
        .expect("the Compression entry");
    bytes[at + 8] = 5;
    std::fs::write(&dng, bytes).unwrap();
    let config = workspace_root().join("configs/chart.toml");
    let out = run_host(
        &[
            "process",
            config.to_str().unwrap(),
            "--input",
            dng.to_str().unwrap(),
            "--output",
            "out.png",
        ],
        None,
        dir.path(),
    );
    let err = stderr(&out);
    assert!(!out.status.success(), "a malformed DNG was processed");
    assert!(err.contains("odd.dng") && err.contains("rawloader"), "{err}");
    assert!(!err.contains("panicked") && err.lines().count() <= 3, "{err}");
}

/// A stage that starts returning NaN stops training with the stage's name, the epoch and the step;
/// the checkpoint of the last good epoch stays as it was.
#[test]
fn a_numeric_fault_stops_training_naming_the_stage_and_keeps_the_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    install_testkit(&plugins);
    // 24 training samples in batches of 8: 3 steps per epoch (and 1 validation batch, 1 tracked pass);
    // the stage passes 6 calls, so epoch 1 (3 + 1) and two steps of epoch 2 are fine, step 3 of epoch 2 is not
    let text = format!(
        "plugin_dirs = [{plugins:?}]\ndevice = \"cpu\"\nthreads = 2\npipeline = [\"pack\", \"fault\"]\n\n\
         [stages.pack]\nkind = \"pack\"\ncfa_from_metadata = true\n\n[stages.fault]\nkind = \"nan_after\"\ncalls = 6\n\n\
         [dataset]\nkind = \"synthetic\"\ntask = \"cells\"\ncount = 32\nsize = 32\n\n[task_model]\nkind = \"resnet\"\ndepth = 18\n\n\
         [job]\nkind = \"train\"\nmode = \"static\"\nepochs = 3\nbatch_size = 8\ntrain_size = 0.75\ntracked_samples = 0\nworkers = 1\n\
         cache_processing = false\n"
    );
    let config = write_config(dir.path(), "nan.toml", &text);
    let out = run_host(&["run", config.to_str().unwrap()], None, dir.path());
    let err = stderr(&out);
    assert!(!out.status.success(), "training went on through NaN");
    assert!(
        err.contains("fold 0 epoch 2 step 3") && err.contains("stage `fault`") && err.contains("NaN"),
        "{err}"
    );
    let (_, metadata) =
        checkpoint::read_with_metadata(&dir.path().join("runs/train-1/checkpoints/checkpoint.safetensors")).unwrap();
    let progress: serde_json::Value = serde_json::from_str(&metadata["l2l_progress"]).unwrap();
    assert_eq!(progress["epochs_done"], 1, "the checkpoint is the last good epoch's");
}

/// A disk that fills up: training whose checkpoint does not fit, and an export whose images do not,
/// each stop with "No space left on device" naming the file, and leave no partial file behind.
#[test]
#[ignore = "needs root: mounts a 4 MB tmpfs (.ci/run runs it)"]
fn a_full_disk_is_a_clear_error_and_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    let _mount = mount(&full, &["-t", "tmpfs", "-o", "size=4m", "tmpfs"], "full disk");
    let config = write_config(
        dir.path(),
        "cells.toml",
        &cells_config(
            "static",
            2,
            &format!("tracked_samples = 0\noutput_dir = {:?}\n", full.join("runs")),
        ),
    );
    let out = run_host(&["run", config.to_str().unwrap()], None, dir.path());
    let err = failure(&out);
    assert!(
        err.contains("No space left on device") && err.contains("checkpoint.safetensors"),
        "{err}"
    );
    assert!(err.lines().count() <= 6, "one short error: {err}");
    assert!(
        temporaries_under(&full).is_empty(),
        "partial files: {:?}",
        temporaries_under(&full)
    );
    assert!(!full.join("runs/train-1/checkpoints/checkpoint.safetensors").exists());

    // the export: 512² float TIFFs (3 MiB each) into what is left of 4 MiB
    std::fs::remove_dir_all(full.join("runs")).unwrap();
    let inputs = dir.path().join("raws");
    std::fs::create_dir(&inputs).unwrap();
    for i in 0..3 {
        write_npy_f32(
            &inputs.join(format!("r{i}.npy")),
            512,
            512,
            (0..512 * 512).map(|p| (p % 97) as f32 / 97.0),
        );
    }
    let pipeline = workspace_root().join("configs/pipelines/bilinear_sharpening_filter_median_denoising.toml");
    let out = export_tiff(&pipeline, &inputs, &full.join("export"), dir.path());
    let err = failure(&out);
    assert!(
        err.contains("No space left on device") && err.contains(".tiff"),
        "{err}"
    );
    assert!(
        temporaries_under(&full).is_empty(),
        "partial files: {:?}",
        temporaries_under(&full)
    );
    // every image written is whole (beside them, each folder's producer record)
    for written in files_under(&full.join("export"))
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "tiff"))
    {
        assert_eq!(
            float_tiff_values(&written),
            512 * 512 * 3,
            "{} is partial",
            written.display()
        );
    }
}

/// How many float32 values a TIFF decodes to (panics on a file cut short).
fn float_tiff_values(path: &Path) -> usize {
    let file = std::fs::File::open(path).unwrap();
    let mut decoder = tiff::decoder::Decoder::new(std::io::BufReader::new(file)).expect("a complete TIFF header");
    match decoder.read_image().expect("a complete TIFF's pixels") {
        tiff::decoder::DecodingResult::F32(values) => values.len(),
        _ => panic!("{}: not float32", path.display()),
    }
}

/// A run directory on a read-only file system: the run stops before training with the directory and
/// the reason, and nothing is created.
#[test]
#[ignore = "needs root: bind-mounts a folder read-only (.ci/run runs it)"]
fn an_unwritable_run_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    std::fs::create_dir(&source).unwrap();
    let read_only = dir.path().join("read-only");
    let _mount = mount(
        &read_only,
        &["--bind", "-o", "ro", source.to_str().unwrap()],
        "unwritable directory",
    );
    let config = write_config(
        dir.path(),
        "cells.toml",
        &cells_config("static", 1, &format!("output_dir = {:?}\n", read_only.join("runs"))),
    );
    let out = run_host(&["run", config.to_str().unwrap()], None, dir.path());
    let err = failure(&out);
    assert!(
        err.contains("Read-only file system") && err.contains("read-only/runs"),
        "{err}"
    );
    assert!(err.lines().count() <= 6, "one short error: {err}");
    assert!(files_under(&source).is_empty());
}

/// `--resume` with a progress record edited to a fold or an epoch count the run does not have: one
/// error naming the checkpoint (it ended "run finished" with empty final metrics before).
#[test]
fn resume_refuses_a_progress_record_the_run_could_not_have_written() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "cells.toml",
        &cells_config("static", 1, "tracked_samples = 0\n"),
    );
    let run = run_ok(&["run", config.to_str().unwrap()], dir.path());
    let path = run.join("checkpoints/checkpoint.safetensors");
    let (tensors, metadata) = checkpoint::read_with_metadata(&path).unwrap();
    let original: serde_json::Value = serde_json::from_str(&metadata["l2l_progress"]).unwrap();
    for (key, value, message) in [
        ("epochs_done", 99, "99 epochs done, but the run trains 1 per fold"),
        ("fold", 99, "fold 99 is not one this run trains"),
    ] {
        let mut progress = original.clone();
        progress[key] = serde_json::json!(value);
        let text = progress.to_string();
        let mut bytes = Vec::new();
        checkpoint::write_tensors_with_metadata(&mut bytes, &tensors, &[("l2l_progress", &text)]).unwrap();
        std::fs::write(&path, bytes).unwrap();
        let out = run_host(&["run", "--resume", run.to_str().unwrap()], None, dir.path());
        let err = stderr(&out);
        assert!(!out.status.success(), "resumed with {key} = {value}");
        assert!(
            err.contains(&format!("{}: the progress record", path.display())) && err.contains(message),
            "{err}"
        );
    }
    std::fs::write(&path, b"not a checkpoint").unwrap();
    let err = stderr(&run_host(&["run", "--resume", run.to_str().unwrap()], None, dir.path()));
    assert!(err.contains(&path.display().to_string()), "{err}");
}
