//! The Raw-Drone loader on fixtures written here: DNGs (written by l2l-rawio, read back by rawloader)
//! and PNG masks in the published layout, then broken one way at a time.

use l2l_dataset_drone::{Drone, DroneConfig, DroneTask};
use l2l_plugin_sdk::{BuildDataset, CfaPattern, Dataset, RawMetadata};
use l2l_rawio::{write_dng, write_mask_png, CameraOverride, DngImage, Mask};
use std::path::Path;

const SIDE: usize = 64;
const TILE: usize = 16;

fn camera() -> RawMetadata {
    RawMetadata {
        cfa_pattern: CfaPattern::Grbg,
        black_level: [0.05; 4],
        white_balance: [2.5, 1.0, 1.5],
        colour_matrix: [1.2, -0.1, -0.1, -0.2, 1.4, -0.2, 0.0, -0.3, 1.3],
        intensity: 100.0,
    }
}

/// Image `n`: samples `(y * 64 + x) * 7 + n` (12-bit white level); cars: in image 0 a 16×16 block filling
/// tile (0, 0) and a 1-pixel sliver in tile (1, 1); in image 1 a 10×10 block in tile (2, 3).
fn write_image(root: &Path, n: usize) {
    let dir = root.join("images_full/raw_scale100");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(root.join("masks_full")).unwrap();
    let samples: Vec<u16> = (0..SIDE * SIDE).map(|i| ((i * 7 + n) % 4096) as u16).collect();
    let image = DngImage {
        samples: &samples,
        height: SIDE,
        width: SIDE,
        white_level: 4095,
        camera: camera(),
        make_model: ("l2l", "test"),
    };
    write_dng(&dir.join(format!("img{n}.dng")), &image).unwrap();
    let mut mask = vec![0u8; SIDE * SIDE];
    let mut set = |y0: usize, x0: usize, size: usize| {
        for y in y0..y0 + size {
            for x in x0..x0 + size {
                mask[y * SIDE + x] = 1;
            }
        }
    };
    if n == 0 {
        set(0, 0, 16);
        set(20, 20, 1);
    } else {
        set(34, 50, 10);
    }
    write_mask_png(
        &root.join(format!("masks_full/img{n}.png")),
        &Mask {
            values: mask,
            height: SIDE,
            width: SIDE,
        },
    )
    .unwrap();
}

fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_image(dir.path(), 0);
    write_image(dir.path(), 1);
    dir
}

fn open(root: &Path, change: impl FnOnce(&mut DroneConfig)) -> Result<Drone, String> {
    let mut config = DroneConfig {
        root: root.to_path_buf(),
        tile_size: TILE,
        ..Default::default()
    };
    change(&mut config);
    Drone::build(config).map_err(|e| e.to_string())
}

#[test]
fn segmentation_tiles_are_the_tiles_with_cars_with_the_files_camera() {
    let dir = fixture();
    let dataset = open(dir.path(), |_| {}).unwrap();
    assert!(dataset.class_names().is_none());
    // image 0: tiles (0,0) and (1,1); image 1: tile (2,3)
    assert_eq!(dataset.len(), 3);
    let first = dataset.sample(0).unwrap();
    assert_eq!(first.raw.size(), [16, 16]);
    assert_eq!(first.target.sum(tch::Kind::Int64).int64_value(&[]), 256);
    // values: tile (0, 0) of image 0, scaled by the 12-bit white level
    for (y, x) in [(0, 0), (3, 5), (15, 15)] {
        let expected = (((y * SIDE + x) * 7) % 4096) as f64 / 4095.0;
        assert!((first.raw.double_value(&[y as i64, x as i64]) - expected).abs() < 1e-5);
    }
    let camera = first.metadata;
    assert_eq!(camera.cfa_pattern, CfaPattern::Grbg);
    assert!(
        camera.black_level.iter().all(|b| (b - 205.0 / 4095.0).abs() < 1e-6),
        "{camera:?}"
    );
    assert!((camera.white_balance[0] - 2.5).abs() < 1e-4 && (camera.white_balance[2] - 1.5).abs() < 1e-4);
    let last = dataset.sample(2).unwrap();
    assert_eq!(last.target.sum(tch::Kind::Int64).int64_value(&[]), 100);
    let expected = (((32 * SIDE + 48) * 7 + 1) % 4096) as f64 / 4095.0;
    assert!((last.raw.double_value(&[0, 0]) - expected).abs() < 1e-5);

    let overridden = open(dir.path(), |c| {
        c.camera = CameraOverride {
            white_balance: Some([1.0; 3]),
            ..Default::default()
        }
    })
    .unwrap();
    assert_eq!(overridden.sample(0).unwrap().metadata.white_balance, [1.0; 3]);
}

#[test]
fn classification_is_balanced_seeded_and_drops_slivers() {
    let dir = fixture();
    let dataset = open(dir.path(), |c| c.task = DroneTask::Classification).unwrap();
    assert_eq!(dataset.class_names().unwrap(), ["car", "no_car"]);
    let labels = dataset.labels().unwrap();
    // car tiles: (0,0) of image 0 (fraction 1) and (2,3) of image 1 (fraction 100/256); the 1-pixel
    // sliver (fraction 1/256 ≤ 0.01) is neither; 2 of the 29 empty tiles are drawn
    assert_eq!(labels.iter().filter(|&&l| l == 0).count(), 2);
    assert_eq!(labels.iter().filter(|&&l| l == 1).count(), 2);
    assert_eq!(labels.len(), dataset.len());
    for (i, &label) in labels.iter().enumerate() {
        let sample = dataset.sample(i).unwrap();
        assert_eq!(sample.target.int64_value(&[]), label as i64);
    }
    let draw = |seed| {
        let d = open(dir.path(), |c| {
            c.task = DroneTask::Classification;
            c.seed = seed;
        })
        .unwrap();
        (0..d.len())
            .map(|i| Vec::<f32>::try_from(d.sample(i).unwrap().raw.flatten(0, -1)).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(draw(3), draw(3));
    assert_ne!(draw(3), draw(4));
}

#[test]
fn cache_is_reused_until_a_source_changes() {
    let dir = fixture();
    open(dir.path(), |_| {}).unwrap();
    let manifest = dir.path().join(".l2l-tiles/raw_scale100-tile16/manifest.json");
    let written = std::fs::metadata(&manifest).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    open(dir.path(), |_| {}).unwrap();
    assert_eq!(
        std::fs::metadata(&manifest).unwrap().modified().unwrap(),
        written,
        "cache rebuilt needlessly"
    );
    // a new mask for image 1: no cars any more
    write_mask_png(
        &dir.path().join("masks_full/img1.png"),
        &Mask {
            values: vec![0; SIDE * SIDE],
            height: SIDE,
            width: SIDE,
        },
    )
    .unwrap();
    let dataset = open(dir.path(), |_| {}).unwrap();
    assert_eq!(dataset.len(), 2);
    assert_ne!(std::fs::metadata(&manifest).unwrap().modified().unwrap(), written);
}

#[test]
fn bad_files_are_named_or_skipped() {
    let dir = fixture();
    // a mask of another size
    write_mask_png(
        &dir.path().join("masks_full/img1.png"),
        &Mask {
            values: vec![1; 32 * 64],
            height: 32,
            width: 64,
        },
    )
    .unwrap();
    let err = open(dir.path(), |_| {}).err().unwrap();
    assert!(
        err.contains("img1.png") && err.contains("mask is 32×64 but its image") && err.contains("64×64"),
        "{err}"
    );
    let dataset = open(dir.path(), |c| c.skip_invalid = true).unwrap();
    assert_eq!(dataset.len(), 2);
    assert!(dataset.warnings().last().unwrap().contains("skipped 1"));
    // a truncated DNG
    write_image(dir.path(), 1);
    let dng = dir.path().join("images_full/raw_scale100/img0.dng");
    let bytes = std::fs::read(&dng).unwrap();
    std::fs::write(&dng, &bytes[..bytes.len() / 2]).unwrap();
    let err = open(dir.path(), |_| {}).err().unwrap();
    assert!(err.contains("img0.dng") && err.contains("truncated"), "{err}");
    // a missing and a corrupt mask
    write_image(dir.path(), 0);
    std::fs::remove_file(dir.path().join("masks_full/img0.png")).unwrap();
    let err = open(dir.path(), |_| {}).err().unwrap();
    assert!(
        err.contains("img0.dng: no mask: expected") && err.contains("img0.png"),
        "{err}"
    );
    std::fs::write(dir.path().join("masks_full/img0.png"), b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let err = open(dir.path(), |_| {}).err().unwrap();
    assert!(err.contains("img0.png") && err.contains("PNG"), "{err}");
}

#[test]
fn empty_folders_and_bad_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("images_full/raw_scale100")).unwrap();
    let err = open(dir.path(), |_| {}).err().unwrap();
    assert!(err.contains("raw_scale100: no files with extension dng"), "{err}");
    assert!(open(dir.path(), |c| c.tile_size = 15)
        .err()
        .unwrap()
        .contains("tile_size"));
    assert!(open(dir.path(), |c| c.intensity = 2.0)
        .err()
        .unwrap()
        .contains("intensity"));
}
