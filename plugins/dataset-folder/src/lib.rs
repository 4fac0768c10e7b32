//! l2l plugin `dataset-folder`: any folder of raw files as a dataset — the way to bring one's own
//! camera or microscope data.
//!
//! Files directly in `root` with a raw extension ([`RAW_EXTENSIONS`]: the formats rawloader decodes,
//! DNG among them, plus single-channel TIFF/PNG mosaics and `.npy`). Targets come from exactly one of:
//! - `labels_csv`: a CSV `file,label` (header required; file relative to `root`) — classification,
//!   classes are the sorted distinct labels, and only the listed files are used;
//! - `masks_dir`: a folder of PNG masks named like the images (`IMG.png` for `IMG.dng`, non-zero =
//!   class present) — binary segmentation, every raw file in `root` is used.
//!
//! Camera parameters come from the file when it has them (raw formats), else from a neutral camera;
//! `camera` overrides them key by key. With `verify` (default) every file is decoded when the dataset
//! opens, so that a corrupt file or a mask of the wrong size is reported — or with `skip_invalid`
//! skipped with a warning — before training.

use l2l_plugin_sdk::{BuildDataset, ComponentConfig, Dataset, PluginError, PluginResult, Sample};
use l2l_rawio::labels::read_csv_labels;
use l2l_rawio::{decode_in_parallel, read_mask, read_mosaic, CameraOverride, FileError, FileResult, InvalidFiles};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// Extensions taken as raw files.
pub const RAW_EXTENSIONS: &[&str] = &[
    "dng", "nef", "nrw", "cr2", "crw", "arw", "srf", "sr2", "orf", "rw2", "raf", "pef", "srw", "3fr", "erf", "kdc",
    "dcr", "mef", "mos", "mrw", "iiq", "x3f", "tif", "tiff", "png", "npy",
];

/// Config of the `raw_folder` dataset.
#[derive(Debug, Clone, Serialize, Deserialize, ComponentConfig)]
#[serde(deny_unknown_fields, default)]
pub struct FolderConfig {
    /// The folder of raw files.
    #[config(required, default = PathBuf::new())]
    pub root: PathBuf,
    /// A file,label CSV relative to root (classification); or masks_dir.
    #[config(default = None)]
    pub labels_csv: Option<PathBuf>,
    /// A folder of PNG masks named like the images, relative to root (segmentation).
    #[config(default = None)]
    pub masks_dir: Option<PathBuf>,
    /// Divide integer samples by this instead of the file's white level.
    #[config(default = None)]
    pub white_level: Option<f64>,
    /// Camera parameters over the files' (or the neutral camera's).
    pub camera: CameraOverride,
    /// Skip unreadable files, bad label lines and mismatched masks with a warning.
    #[config(default = false)]
    pub skip_invalid: bool,
    /// Decode every file when opening, to find corrupt files early.
    #[config(default = true)]
    pub verify: bool,
}

/// One raw file and its target: a class index or a mask file.
enum Target {
    Class(usize),
    Mask(PathBuf),
}

/// The opened folder.
pub struct Folder {
    files: Vec<(PathBuf, Target)>,
    class_names: Option<Vec<String>>,
    config: FolderConfig,
    warnings: Vec<String>,
}

/// Reads a file and its mask, checking that they have one size.
fn read_pair(raw: &Path, mask: &Path, white_level: Option<f64>) -> FileResult<(l2l_rawio::Mosaic, l2l_rawio::Mask)> {
    let mosaic = read_mosaic(raw, white_level)?;
    let mask_image = read_mask(mask)?;
    if (mask_image.height, mask_image.width) != (mosaic.height, mosaic.width) {
        return Err(FileError::new(
            mask,
            format!(
                "mask is {}×{} but its image {} is {}×{}",
                mask_image.height,
                mask_image.width,
                raw.display(),
                mosaic.height,
                mosaic.width
            ),
        ));
    }
    Ok((mosaic, mask_image))
}

impl BuildDataset for Folder {
    type Config = FolderConfig;
    const NAME: &'static str = "raw_folder";
    const SUMMARY: &'static str = "a folder of raw files with a file,label CSV or a folder of PNG masks";

    fn build(config: FolderConfig) -> PluginResult<Self> {
        if config.root.as_os_str().is_empty() {
            return Err(PluginError::Config("root is required: the folder of raw files".into()));
        }
        let mut invalid = InvalidFiles::new(config.skip_invalid);
        let (mut files, class_names) = match (&config.labels_csv, &config.masks_dir) {
            (Some(csv), None) => {
                let csv = config.root.join(csv);
                let mut rows = Vec::new();
                let mut first_line: HashMap<String, usize> = HashMap::new();
                for row in read_csv_labels(&csv)? {
                    let Some(label) = invalid.check(row)? else { continue };
                    let path = config.root.join(&label.file);
                    let checked = if let Some(first) = first_line.get(&label.file) {
                        Err(FileError::at_line(
                            &csv,
                            label.line,
                            format!("`{}` is labelled twice (first on line {first})", label.file),
                        ))
                    } else if let Err(e) = std::fs::metadata(&path) {
                        // a link loop or a permission problem is not a missing file
                        let why = if e.kind() == std::io::ErrorKind::NotFound {
                            "does not exist".to_string()
                        } else {
                            format!("cannot be read: {e}")
                        };
                        Err(FileError::at_line(
                            &csv,
                            label.line,
                            format!("labels `{}`, but {} {why}", label.file, path.display()),
                        ))
                    } else if !path.is_file() {
                        Err(FileError::at_line(
                            &csv,
                            label.line,
                            format!("labels `{}`, but {} is not a file", label.file, path.display()),
                        ))
                    } else {
                        Ok((path, label.class.clone()))
                    };
                    if let Some(row) = invalid.check(checked)? {
                        first_line.insert(label.file, label.line);
                        rows.push(row);
                    }
                }
                let names: Vec<String> = rows
                    .iter()
                    .map(|(_, c)| c.clone())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let files = rows
                    .into_iter()
                    .map(|(path, class)| {
                        let index = names.iter().position(|n| *n == class).unwrap_or_default();
                        (path, Target::Class(index))
                    })
                    .collect();
                (files, Some(names))
            }
            (None, Some(masks)) => {
                let masks = config.root.join(masks);
                let mut files = Vec::new();
                for raw in l2l_rawio::files_with_extensions(&config.root, RAW_EXTENSIONS)? {
                    let stem = raw.file_stem().unwrap_or_default().to_string_lossy().into_owned();
                    let mask = masks.join(format!("{stem}.png"));
                    let checked = if mask.is_file() {
                        Ok((raw, Target::Mask(mask)))
                    } else {
                        Err(FileError::new(&raw, format!("no mask: expected {}", mask.display())))
                    };
                    if let Some(pair) = invalid.check(checked)? {
                        files.push(pair);
                    }
                }
                (files, None)
            }
            _ => {
                return Err(PluginError::Config(
                    "set exactly one of labels_csv (classification) and masks_dir (segmentation)".into(),
                ))
            }
        };
        if config.verify {
            let checked = decode_in_parallel(&files, |(raw, target)| match target {
                Target::Class(_) => read_mosaic(raw, config.white_level).map(|_| ()),
                Target::Mask(mask) => read_pair(raw, mask, config.white_level).map(|_| ()),
            });
            let mut kept = Vec::new();
            for (file, result) in files.into_iter().zip(checked) {
                if invalid.check(result)?.is_some() {
                    kept.push(file);
                }
            }
            files = kept;
        }
        if files.is_empty() {
            return Err(PluginError::Data(format!(
                "{}: no usable raw files",
                config.root.display()
            )));
        }
        Ok(Self {
            files,
            class_names,
            warnings: invalid.warnings(),
            config,
        })
    }
}

impl Dataset for Folder {
    fn class_names(&self) -> Option<Vec<String>> {
        self.class_names.clone()
    }

    fn len(&self) -> usize {
        self.files.len()
    }

    fn labels(&self) -> Option<Vec<usize>> {
        self.files
            .iter()
            .map(|(_, t)| match t {
                Target::Class(c) => Some(*c),
                Target::Mask(_) => None,
            })
            .collect()
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }

    fn sample(&self, index: usize) -> PluginResult<Sample> {
        let (raw, target) = self.files.get(index).ok_or_else(|| {
            PluginError::Input(format!(
                "sample {index} is out of range (the dataset has {})",
                self.files.len()
            ))
        })?;
        let (mosaic, target) = match target {
            Target::Class(class) => (read_mosaic(raw, self.config.white_level)?, Tensor::from(*class as i64)),
            Target::Mask(mask) => {
                let (mosaic, mask) = read_pair(raw, mask, self.config.white_level)?;
                let target = Tensor::from_slice(&mask.values)
                    .f_view([mask.height as i64, mask.width as i64])?
                    .f_to_kind(Kind::Int64)?;
                (mosaic, target)
            }
        };
        let camera = self
            .config
            .camera
            .apply(mosaic.camera.unwrap_or(l2l_rawio::NEUTRAL_CAMERA));
        Ok(Sample {
            raw: Tensor::from_slice(&mosaic.values).f_view([mosaic.height as i64, mosaic.width as i64])?,
            target,
            metadata: camera,
        })
    }
}

l2l_plugin_sdk::plugin! { datasets: [Folder] }
