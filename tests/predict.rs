//! `l2l-host predict`: a run's answers on its own validation split are the ones its training
//! evaluated (learned processing included), another pipeline is said to be one, segmentation writes a
//! mask and an IoU per image, and nothing the user has is overwritten.

use l2l_system_tests::{
    cells_config, describe, last_value, run_host, run_ok, workspace_root, write_config, write_npy_f32,
};
use std::path::Path;

fn predict(args: &[&str], cwd: &Path) -> String {
    let output = run_host(&[&["predict"], args].concat(), None, cwd);
    assert!(output.status.success(), "{}", describe(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn predict_err(args: &[&str], cwd: &Path) -> String {
    let output = run_host(&[&["predict"], args].concat(), None, cwd);
    assert!(!output.status.success(), "{}", describe(&output));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_runs_predictions_on_its_validation_split_are_what_its_training_evaluated() {
    let dir = tempfile::tempdir().unwrap();
    // parametrized: the processing learns, so agreeing needs the run's learned processing state
    let config = write_config(
        dir.path(),
        "cells.toml",
        &cells_config("parametrized", 2, "tracked_samples = 0\nlr = 3e-3\n"),
    );
    let run = run_ok(&["run", config.to_str().unwrap()], dir.path());
    let (config, run_dir) = (config.to_str().unwrap(), run.to_str().unwrap());
    let stdout = predict(
        &[
            config,
            "--checkpoint",
            run_dir,
            "--split",
            "validation",
            "--output",
            "p.csv",
        ],
        dir.path(),
    );
    assert!(
        stdout.contains("processing: the pipeline the model trained behind, with its learned state"),
        "{stdout}"
    );
    let csv = std::fs::read_to_string(dir.path().join("p.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    assert_eq!(header[..4], ["sample", "truth", "predicted", "logit_EOS"], "{csv}");
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 16, "a quarter of 64 samples is held out");
    let correct = rows.iter().filter(|r| r[1] == r[2]).count();
    let accuracy = last_value(&run, "validation", "accuracy");
    assert!(
        (correct as f64 / 16.0 - accuracy).abs() < 1e-9,
        "{correct} of 16 right; the training evaluated {accuracy}"
    );
    for row in &rows {
        let probabilities: Vec<f64> = row[7..11].iter().map(|v| v.parse().unwrap()).collect();
        assert!((probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-9, "{row:?}");
    }

    // another pipeline is a drift test: it runs as configured, and the output says so
    let other = workspace_root().join("configs/pipelines/menon2007_unsharp_masking_median_denoising.toml");
    let stdout = predict(
        &[
            other.to_str().unwrap(),
            "--checkpoint",
            run_dir,
            "--split",
            "validation",
            "--output",
            "drift.json",
        ],
        dir.path(),
    );
    assert!(stdout.contains("not the one the model trained behind"), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("drift.json")).unwrap()).unwrap();
    assert_eq!(json["samples"].as_array().unwrap().len(), 16);
    assert_eq!(json["class_names"].as_array().unwrap().len(), 4);

    // nothing written is overwritten unasked; a split needs the run that drew it; a fold must exist
    let err = predict_err(
        &[
            config,
            "--checkpoint",
            run_dir,
            "--split",
            "validation",
            "--output",
            "p.csv",
        ],
        dir.path(),
    );
    assert!(err.contains("p.csv exists; pass --force"), "{err}");
    let err = predict_err(&[config, "--split", "validation", "--output", "q.csv"], dir.path());
    assert!(err.contains("give --checkpoint RUN_DIR"), "{err}");
    let err = predict_err(
        &[
            config,
            "--checkpoint",
            run_dir,
            "--fold",
            "3",
            "--split",
            "validation",
            "--output",
            "q.csv",
        ],
        dir.path(),
    );
    assert!(
        err.contains("--fold 3") && err.contains("has no model for that fold"),
        "{err}"
    );
    let err = predict_err(&[config, "--split", "all", "--output", "q.txt"], dir.path());
    assert!(err.contains("expected a .csv or .json file"), "{err}");
}

#[test]
fn segmentation_predictions_are_masks_with_an_iou_per_image() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = workspace_root().join("configs/pipelines/bilinear_sharpening_filter_median_denoising.toml");
    let text = format!(
        "include = [{pipeline:?}]\ndevice = \"cpu\"\nthreads = 2\n\n[dataset]\nkind = \"synthetic\"\ntask = \"aerial_cars\"\n\
         count = 8\nsize = 32\n\n[task_model]\nkind = \"unet\"\nencoder = 18\nencoder_stages = 3\ndecoder_channels = [32, 16, 8]\n"
    );
    let config = write_config(dir.path(), "cars.toml", &text);
    predict(
        &[config.to_str().unwrap(), "--split", "all", "--output", "cars.csv"],
        dir.path(),
    );
    let csv = std::fs::read_to_string(dir.path().join("cars.csv")).unwrap();
    assert_eq!(csv.lines().next(), Some("sample,mask,foreground,iou"));
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 8);
    for row in rows {
        let mask = png::Decoder::new(std::io::BufReader::new(
            std::fs::File::open(dir.path().join(row[1])).unwrap(),
        ))
        .read_info()
        .unwrap();
        assert_eq!((mask.info().width, mask.info().height), (32, 32), "{}", row[1]);
        let iou: f64 = row[3].parse().unwrap();
        assert!((0.0..=1.0).contains(&iou), "{row:?}");
    }
    assert!(dir.path().join("cars_masks").is_dir());

    // two inputs of one name in different folders: two masks (before: the second replaced the first)
    for folder in ["a", "b"] {
        std::fs::create_dir_all(dir.path().join(folder)).unwrap();
        write_npy_f32(
            &dir.path().join(folder).join("x.npy"),
            32,
            32,
            (0..32 * 32).map(|i| (i % 13) as f32 / 13.0),
        );
    }
    predict(
        &[
            config.to_str().unwrap(),
            "--input",
            "a/x.npy",
            "b/x.npy",
            "--output",
            "same.csv",
        ],
        dir.path(),
    );
    let csv = std::fs::read_to_string(dir.path().join("same.csv")).unwrap();
    let masks: Vec<&str> = csv.lines().skip(1).map(|l| l.split(',').nth(1).unwrap()).collect();
    assert_eq!(masks.len(), 2);
    assert_ne!(masks[0], masks[1], "{csv}");
    assert!(masks.iter().all(|m| dir.path().join(m).is_file()), "{csv}");
    // --force replaces the earlier masks as a whole: none of them is left beside the new ones
    predict(
        &[
            config.to_str().unwrap(),
            "--input",
            "a/x.npy",
            "--output",
            "same.csv",
            "--force",
        ],
        dir.path(),
    );
    let left: Vec<_> = std::fs::read_dir(dir.path().join("same_masks"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, ["x.png"], "{left:?}");
}
