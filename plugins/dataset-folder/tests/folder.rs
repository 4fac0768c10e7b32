//! The folder loader on fixtures written here: TIFF and DNG mosaics with a labels CSV or PNG masks.

use l2l_dataset_folder::{Folder, FolderConfig};
use l2l_plugin_sdk::{BuildDataset, CfaPattern, Dataset, RawMetadata};
use l2l_rawio::{write_dng, write_mask_png, write_tiff16, DngImage, Mask};
use std::path::Path;

fn open(root: &Path, change: impl FnOnce(&mut FolderConfig)) -> Result<Folder, String> {
    let mut config = FolderConfig {
        root: root.to_path_buf(),
        ..Default::default()
    };
    change(&mut config);
    Folder::build(config).map_err(|e| e.to_string())
}

fn tiffs(root: &Path, names: &[&str]) {
    for (i, name) in names.iter().enumerate() {
        write_tiff16(&root.join(name), &[1000 * (i as u16 + 1); 8 * 8], 8, 8).unwrap();
    }
}

#[test]
fn classification_from_a_csv() {
    let dir = tempfile::tempdir().unwrap();
    tiffs(dir.path(), &["a.tiff", "b.tiff", "c.tiff", "unlisted.tiff"]);
    std::fs::write(
        dir.path().join("labels.csv"),
        "file,label\na.tiff,zebra\nb.tiff,ant\nc.tiff,zebra\n",
    )
    .unwrap();
    let dataset = open(dir.path(), |c| c.labels_csv = Some("labels.csv".into())).unwrap();
    assert_eq!(dataset.class_names().unwrap(), ["ant", "zebra"]);
    assert_eq!(dataset.labels().unwrap(), [1, 0, 1]);
    let sample = dataset.sample(1).unwrap();
    assert!((sample.raw.double_value(&[3, 3]) - 2000.0 / 65535.0).abs() < 1e-6);
    assert_eq!(sample.target.int64_value(&[]), 0);
    assert_eq!(sample.metadata, l2l_rawio::NEUTRAL_CAMERA);
}

#[test]
fn segmentation_from_masks_with_dng_cameras() {
    let dir = tempfile::tempdir().unwrap();
    let camera = RawMetadata {
        cfa_pattern: CfaPattern::Bggr,
        black_level: [0.0; 4],
        white_balance: [2.0, 1.0, 1.5],
        colour_matrix: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        intensity: 100.0,
    };
    let samples = vec![512u16; 8 * 8];
    let image = DngImage {
        samples: &samples,
        height: 8,
        width: 8,
        white_level: 1023,
        camera,
        make_model: ("l2l", "t"),
    };
    write_dng(&dir.path().join("shot.dng"), &image).unwrap();
    std::fs::create_dir(dir.path().join("masks")).unwrap();
    let mask = Mask {
        values: (0..64).map(|i| u8::from(i < 8)).collect(),
        height: 8,
        width: 8,
    };
    write_mask_png(&dir.path().join("masks/shot.png"), &mask).unwrap();
    let dataset = open(dir.path(), |c| c.masks_dir = Some("masks".into())).unwrap();
    assert!(dataset.class_names().is_none());
    let sample = dataset.sample(0).unwrap();
    assert_eq!(sample.target.sum(tch::Kind::Int64).int64_value(&[]), 8);
    assert!((sample.raw.double_value(&[0, 0]) - 512.0 / 1023.0).abs() < 1e-6);
    assert_eq!(sample.metadata.cfa_pattern, CfaPattern::Bggr);
    assert!((sample.metadata.white_balance[2] - 1.5).abs() < 1e-4);
}

#[test]
fn bad_input_is_named_or_skipped() {
    let dir = tempfile::tempdir().unwrap();
    // an empty folder
    let err = open(dir.path(), |c| c.masks_dir = Some("masks".into())).err().unwrap();
    assert!(err.contains("no files with extension"), "{err}");
    tiffs(dir.path(), &["a.tiff", "b.tiff"]);
    // neither or both of labels_csv and masks_dir
    assert!(open(dir.path(), |_| {}).err().unwrap().contains("exactly one of"));
    // a CSV row that does not parse, one for a missing file, then a truncated image
    std::fs::write(
        dir.path().join("l.csv"),
        "file,label\na.tiff,x\nb.tiff\nghost.tiff,y\nb.tiff,y\n",
    )
    .unwrap();
    let err = open(dir.path(), |c| c.labels_csv = Some("l.csv".into())).err().unwrap();
    assert!(err.contains("l.csv: line 3: expected `file,label`"), "{err}");
    let dataset = open(dir.path(), |c| {
        c.labels_csv = Some("l.csv".into());
        c.skip_invalid = true;
    })
    .unwrap();
    assert_eq!(dataset.len(), 2);
    let warnings = dataset.warnings().join("\n");
    assert!(
        warnings.contains("line 4") && warnings.contains("ghost.tiff does not exist"),
        "{warnings}"
    );
    assert!(warnings.contains("skipped 2"), "{warnings}");
    let bytes = std::fs::read(dir.path().join("b.tiff")).unwrap();
    std::fs::write(dir.path().join("b.tiff"), &bytes[..40]).unwrap();
    let err = open(dir.path(), |c| {
        c.labels_csv = Some("l.csv".into());
        c.skip_invalid = false;
    })
    .err()
    .unwrap();
    assert!(err.contains("line 3"), "{err}");
    std::fs::write(dir.path().join("l.csv"), "file,label\na.tiff,x\nb.tiff,y\n").unwrap();
    let err = open(dir.path(), |c| c.labels_csv = Some("l.csv".into())).err().unwrap();
    assert!(err.contains("b.tiff: not a readable TIFF"), "{err}");
    // masks: one missing, one of another size
    std::fs::create_dir(dir.path().join("masks")).unwrap();
    write_mask_png(
        &dir.path().join("masks/a.png"),
        &Mask {
            values: vec![0; 16],
            height: 4,
            width: 4,
        },
    )
    .unwrap();
    let err = open(dir.path(), |c| c.masks_dir = Some("masks".into())).err().unwrap();
    assert!(
        err.contains("b.tiff: no mask: expected") && err.contains("b.png"),
        "{err}"
    );
    write_mask_png(
        &dir.path().join("masks/b.png"),
        &Mask {
            values: vec![0; 64],
            height: 8,
            width: 8,
        },
    )
    .unwrap();
    let err = open(dir.path(), |c| c.masks_dir = Some("masks".into())).err().unwrap();
    assert!(
        err.contains("a.png: mask is 4×4 but its image") && err.contains("8×8"),
        "{err}"
    );
}

/// A labelled file that is a link loop is reported as unreadable, with the reason, not as missing.
#[test]
fn a_link_loop_is_not_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    tiffs(dir.path(), &["a.tiff"]);
    std::os::unix::fs::symlink("loop.tiff", dir.path().join("loop.tiff")).unwrap();
    std::fs::write(dir.path().join("l.csv"), "file,label\na.tiff,x\nloop.tiff,y\n").unwrap();
    let err = open(dir.path(), |c| c.labels_csv = Some("l.csv".into())).err().unwrap();
    assert!(
        err.contains("line 3") && err.contains("loop.tiff cannot be read") && err.contains("symbolic links"),
        "{err}"
    );
}
