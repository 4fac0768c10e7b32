//! The fuzz targets' bodies: each takes arbitrary bytes, feeds them to one of l2l's parsers the way a
//! user's file reaches it (written to a file, read by path) and checks what a success promises.
//!
//! Shared by the cargo-fuzz binaries under `fuzz/` (nightly, libFuzzer) and by the stable test
//! `tests/fuzz_regressions.rs`, which replays every kept input on each test run. A target "crashes" when
//! it panics, aborts or runs out of memory; an `Err` is the correct answer to malformed input.
//!
//! Not for: generating inputs (libFuzzer mutates the seed corpus under `fuzz/corpus/`).

use std::io::Write;
use std::path::{Path, PathBuf};

/// One fuzz target: its name (the binary under `fuzz/fuzz_targets/` and the folders of kept inputs)
/// and its body.
pub struct Target {
    /// Name of the fuzz binary and of its `fuzz/corpus/NAME` and `fuzz/regressions/NAME` folders.
    pub name: &'static str,
    /// Feeds one input; panics only on a bug.
    pub run: fn(&[u8]),
}

/// Every target, for the replay test and `scripts/fuzz.sh`.
pub const TARGETS: &[Target] = &[
    Target {
        name: "raw_mosaic",
        run: raw_mosaic,
    },
    Target {
        name: "mask_png",
        run: mask_png,
    },
    Target {
        name: "label_files",
        run: label_files,
    },
    Target {
        name: "config",
        run: config,
    },
];

/// File extensions a raw input is tried under; the first input byte picks one, so one corpus covers
/// the npy/TIFF/PNG decoders and rawloader's formats (DNG and the makers' raw files).
const RAW_EXTENSIONS: &[&str] = &[
    "dng", "tiff", "png", "npy", "nef", "cr2", "arw", "orf", "rw2", "raf", "pef",
];

/// A scratch file for one input, in memory-backed `/dev/shm` when there is one (the fuzzer writes
/// thousands a second).
fn write_input(file_name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let shm = Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        tempfile::tempdir_in(shm)
    } else {
        tempfile::tempdir()
    }
    .expect("scratch directory for a fuzz input");
    let path = dir.path().join(file_name);
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(bytes))
        .expect("writing a fuzz input");
    (dir, path)
}

/// `l2l_rawio::read_mosaic`, the decoder every dataset plugin reads raw images with: the first byte
/// picks the file extension, the rest is the file. A decoded mosaic must hold H×W finite samples.
pub fn raw_mosaic(data: &[u8]) {
    let Some((&selector, file)) = data.split_first() else {
        return;
    };
    let extension = RAW_EXTENSIONS[selector as usize % RAW_EXTENSIONS.len()];
    let (_dir, path) = write_input(&format!("input.{extension}"), file);
    if let Ok(mosaic) = l2l_rawio::read_mosaic(&path, None) {
        assert_eq!(mosaic.values.len(), mosaic.height * mosaic.width, "mosaic size");
        assert!(mosaic.height > 0 && mosaic.width > 0, "empty mosaic accepted");
        assert!(
            mosaic.values.iter().all(|v| v.is_finite()),
            "non-finite sample accepted"
        );
    }
}

/// `l2l_rawio::read_mask`, the Raw-Drone / folder datasets' PNG mask reader: a mask holds H×W values,
/// each 0 or 1.
pub fn mask_png(data: &[u8]) {
    let (_dir, path) = write_input("mask.png", data);
    if let Ok(mask) = l2l_rawio::read_mask(&path) {
        assert_eq!(mask.values.len(), mask.height * mask.width, "mask size");
        assert!(mask.values.iter().all(|&v| v <= 1), "mask value other than 0/1");
    }
}

/// Both label-file parsers (Raw-Microscopy `FILE_STEM CLASS` lists and `file,label` CSVs) on the same
/// bytes: every parsed label has a non-empty file and class and a line number inside the file.
pub fn label_files(data: &[u8]) {
    let (_dir, path) = write_input("labels.txt", data);
    let lines = String::from_utf8_lossy(data).lines().count();
    for parsed in [
        l2l_rawio::labels::read_stem_labels(&path),
        l2l_rawio::labels::read_csv_labels(&path),
    ] {
        for label in parsed.into_iter().flatten().flatten() {
            assert!(
                !label.file.is_empty() && !label.class.is_empty(),
                "empty label field: {label:?}"
            );
            assert!(
                label.line >= 1 && label.line <= lines,
                "line {} outside the file",
                label.line
            );
        }
    }
}

/// The host's config loading and validation (`l2l_host::config::load`: TOML, includes, the typed
/// config, stage/dataset/task-model tables, device; then the `[job]` table as `run` parses it) on the
/// bytes as a config file; the first line, when it holds `=`, is also applied as a `--set KEY.PATH=VALUE`
/// override.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let override_line = text
        .lines()
        .next()
        .filter(|line| line.contains('='))
        .map(str::to_string);
    let (_dir, path) = write_input("config.toml", data);
    let overrides: Vec<String> = override_line.into_iter().collect();
    if let Ok(loaded) = l2l_host::config::load(&path, &overrides) {
        assert_eq!(
            loaded.pipeline().map(|s| s.stages.len()).ok(),
            Some(loaded.config.pipeline.len())
        );
        if loaded.config.job.is_some() {
            let _ = l2l_host::run::Job::of(&loaded);
        }
    }
}
