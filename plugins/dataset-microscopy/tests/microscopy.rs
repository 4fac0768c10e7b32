//! The Raw-Microscopy loader on fixtures written here: 16-bit TIFFs in the published layout and a
//! label file, then broken one way at a time.

use l2l_dataset_microscopy::{Microscopy, MicroscopyConfig};
use l2l_plugin_sdk::{BuildDataset, CfaPattern, Dataset};
use l2l_rawio::{write_tiff16, CameraOverride};
use std::path::Path;

/// Writes `images/raw_scale{100,010}/NAME.tiff` (4×6, every sample equal to a value derived from the
/// image number and intensity) and the label file; returns the label file's lines.
fn write_fixture(root: &Path, labelled: &[(&str, &str)]) {
    for intensity in [100u32, 10] {
        let dir = root.join("images").join(l2l_rawio::intensity_folder(intensity));
        std::fs::create_dir_all(&dir).unwrap();
        for (i, (name, _)) in labelled.iter().enumerate() {
            let value = (100 * (i + 1)) as u16 * (intensity as u16 / 10);
            write_tiff16(&dir.join(format!("{name}.tiff")), &[value; 24], 4, 6).unwrap();
        }
    }
    std::fs::create_dir_all(root.join("labels")).unwrap();
    let text: String = labelled.iter().map(|(n, c)| format!("{n} {c}\n")).collect();
    std::fs::write(root.join("labels/Ma190c_annotations.dat"), text).unwrap();
}

fn standard_set() -> Vec<(String, &'static str)> {
    let mut set = Vec::new();
    for (class, n) in [("NGS", 6), ("EOS", 5), ("MON", 3)] {
        for i in 0..n {
            set.push((format!("{class}_{i}"), class));
        }
    }
    set.push(("Ma190c_lame3_zone13_composite_Mcropped_2".into(), "EOS"));
    set
}

fn open(root: &Path, change: impl FnOnce(&mut MicroscopyConfig)) -> Result<Microscopy, String> {
    let mut config = MicroscopyConfig {
        root: root.to_path_buf(),
        ..Default::default()
    };
    change(&mut config);
    Microscopy::build(config).map_err(|e| e.to_string())
}

fn fixture() -> (tempfile::TempDir, Vec<(String, &'static str)>) {
    let dir = tempfile::tempdir().unwrap();
    let set = standard_set();
    let borrowed: Vec<(&str, &str)> = set.iter().map(|(n, c)| (n.as_str(), *c)).collect();
    write_fixture(dir.path(), &borrowed);
    (dir, set)
}

#[test]
fn loads_the_published_layout() {
    let (dir, set) = fixture();
    let dataset = open(dir.path(), |_| {}).unwrap();
    // MON has 3 images (< 5) and is left out; the excluded file is left out
    assert_eq!(dataset.class_names().unwrap(), ["EOS", "NGS"]);
    assert_eq!(dataset.len(), 11);
    let labels = dataset.labels().unwrap();
    assert_eq!(labels.iter().filter(|&&l| l == 0).count(), 5);
    // samples are sorted by file: EOS_0 first; its value is that of its position in the set
    let sample = dataset.sample(0).unwrap();
    let position = set.iter().position(|(n, _)| n == "EOS_0").unwrap();
    let expected = (100 * (position + 1) * 10) as f64 / 65535.0;
    assert!((sample.raw.double_value(&[0, 0]) - expected).abs() < 1e-6);
    assert_eq!(sample.raw.size(), [4, 6]);
    assert_eq!(sample.target.int64_value(&[]), 0);
    assert_eq!(sample.metadata.intensity, 100.0);
    // the 10 % folder holds the 10 % data
    let dim = open(dir.path(), |c| c.intensity = 10.0).unwrap();
    assert!((dim.sample(0).unwrap().raw.double_value(&[0, 0]) - expected / 10.0).abs() < 1e-6);
    assert_eq!(dim.sample(0).unwrap().metadata.intensity, 10.0);
}

#[test]
fn camera_preset_is_overridable() {
    let (dir, _) = fixture();
    let dataset = open(dir.path(), |c| {
        c.camera = CameraOverride {
            cfa_pattern: Some(CfaPattern::Gbrg),
            white_balance: Some([1.5, 1.0, 2.0]),
            ..Default::default()
        }
    })
    .unwrap();
    let camera = dataset.sample(0).unwrap().metadata;
    assert_eq!(camera.cfa_pattern, CfaPattern::Gbrg);
    assert_eq!(camera.white_balance, [1.5, 1.0, 2.0]);
    assert_eq!(camera.black_level, [0.0; 4]);
}

#[test]
fn a_corrupt_image_is_named_or_skipped() {
    let (dir, _) = fixture();
    let victim = dir.path().join("images/raw_scale100/NGS_2.tiff");
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &bytes[..bytes.len() - 30]).unwrap();
    let err = open(dir.path(), |_| {}).err().unwrap();
    assert!(err.contains("NGS_2.tiff"), "{err}");
    let dataset = open(dir.path(), |c| c.skip_invalid = true).unwrap();
    assert_eq!(dataset.len(), 10);
    let warnings = dataset.warnings();
    assert!(warnings[0].contains("NGS_2.tiff"), "{warnings:?}");
    assert!(warnings.last().unwrap().contains("skipped 1"), "{warnings:?}");
}

#[test]
fn bad_label_lines_name_file_and_line() {
    let (dir, _) = fixture();
    let labels = dir.path().join("labels/Ma190c_annotations.dat");
    let mut text = std::fs::read_to_string(&labels).unwrap();
    text += "just_one_field\nNGS_0 XYZ\nghost NGS\nNGS_1 NGS\n";
    std::fs::write(&labels, &text).unwrap();
    let lines = text.lines().count();
    let err = open(dir.path(), |_| {}).err().unwrap();
    assert!(
        err.contains(&format!("Ma190c_annotations.dat: line {}", lines - 3)),
        "{err}"
    );
    assert!(err.contains("FILE_STEM CLASS"), "{err}");
    let dataset = open(dir.path(), |c| c.skip_invalid = true).unwrap();
    let warnings = dataset.warnings().join("\n");
    assert!(warnings.contains("unknown class `XYZ`"), "{warnings}");
    assert!(
        warnings.contains("labels `ghost`, but") && warnings.contains("ghost.tiff does not exist"),
        "{warnings}"
    );
    assert!(warnings.contains("`NGS_1` is labelled twice"), "{warnings}");
    assert!(warnings.contains("skipped 4"), "{warnings}");
    assert_eq!(dataset.len(), 11);
}

#[test]
fn missing_or_empty_folders_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = open(dir.path(), |_| {}).err().unwrap();
    assert!(err.contains("raw_scale100") && err.contains("listing folder"), "{err}");
    std::fs::create_dir_all(dir.path().join("images/raw_scale100")).unwrap();
    let err = open(dir.path(), |_| {}).err().unwrap();
    assert!(err.contains("raw_scale100: no files with extension tif, tiff"), "{err}");
    let err = open(dir.path(), |c| c.intensity = 30.0).err().unwrap();
    assert!(err.contains("intensity must be one of"), "{err}");
    let err = Microscopy::build(MicroscopyConfig::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("root is required"), "{err}");
}
