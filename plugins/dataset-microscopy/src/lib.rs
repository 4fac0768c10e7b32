//! l2l plugin `dataset-microscopy`: the Raw-Microscopy data set of "From Lens to Logit" — raw mosaics of
//! stained leukocytes taken at seven light intensities, for classification.
//!
//! Layout under `root` (as published):
//! - `images/raw_scale{001,005,010,025,050,075,100}/*.tiff`: 16-bit single-channel raw mosaics, one
//!   folder per intensity (percent of full);
//! - `labels/Ma190c_annotations.dat`: one `FILE_STEM CLASS` pair per line, CLASS among the 16 codes of
//!   [`CLASS_CODES`].
//!
//! Classes with fewer than `min_images_per_class` images (default 5: "more than 4") are left out; class
//! names are sorted; the files of `excluded_files` are left out. The camera parameters come from a
//! preset (the files carry none) that the config can override key by key. With `verify` (default)
//! every image is decoded once when the dataset opens, so a corrupt file is reported — or, with
//! `skip_invalid`, skipped with a warning — before any training starts.

use l2l_plugin_sdk::{BuildDataset, ComponentConfig, Dataset, PluginError, PluginResult, RawMetadata, Sample};
use l2l_rawio::labels::read_stem_labels;
use l2l_rawio::{decode_in_parallel, read_mosaic, CameraOverride, FileError, InvalidFiles};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use tch::Tensor;

/// The cell classes of Raw-Microscopy: basophil, erythroblast, eosinophil, smudge cell, atypical and
/// typical lymphocyte, metamyelocyte, monoblast, monocyte, myelocyte, myeloblast, band and segmented
/// neutrophil, promyelocyte (bilobed), promyelocyte, and unclassified.
pub const CLASS_CODES: [&str; 16] = [
    "BAS", "EBO", "EOS", "KSC", "LYA", "LYT", "MMZ", "MOB", "MON", "MYB", "MYO", "NGB", "NGS", "PMB", "PMO", "UNC",
];

/// The samples' camera metadata (for stages with `from_metadata`): the files carry no camera
/// parameters, so it is neutral (RGGB, no black level, unit white balance, identity colour matrix).
/// The published Microscope camera is a stage preset, `configs/cameras/raw-microscopy.toml`; override
/// `camera` for per-sample metadata of another microscope.
pub const PRESET: RawMetadata = l2l_rawio::NEUTRAL_CAMERA;

/// Config of the `raw_microscopy` dataset.
#[derive(Debug, Clone, Serialize, Deserialize, ComponentConfig)]
#[serde(deny_unknown_fields, default)]
pub struct MicroscopyConfig {
    /// The data set's folder (holding images/ and labels/).
    #[config(required, default = PathBuf::new())]
    pub root: PathBuf,
    /// Intensity folder in percent: 1, 5, 10, 25, 50, 75 or 100.
    #[config(default = 100.0)]
    pub intensity: f64,
    /// Label file (FILE_STEM CLASS per line), relative to root.
    #[config(default = PathBuf::from("labels/Ma190c_annotations.dat"))]
    pub labels_file: PathBuf,
    /// File names (with or without extension) to leave out.
    #[config(default = vec!["Ma190c_lame3_zone13_composite_Mcropped_2.tiff".into()])]
    pub excluded_files: Vec<String>,
    /// Classes with fewer images are left out (published: more than 4).
    #[config(default = 5)]
    pub min_images_per_class: usize,
    /// Camera parameters over the preset.
    pub camera: CameraOverride,
    /// Skip unreadable images and bad label lines with a warning.
    #[config(default = false)]
    pub skip_invalid: bool,
    /// Decode every image when opening, to find corrupt files early.
    #[config(default = true)]
    pub verify: bool,
}

/// One labelled image.
struct Entry {
    path: PathBuf,
    class: String,
}

/// The opened data set.
pub struct Microscopy {
    images: Vec<(PathBuf, usize)>,
    class_names: Vec<String>,
    camera: RawMetadata,
    warnings: Vec<String>,
}

fn stem_of(name: &str) -> &str {
    name.strip_suffix(".tiff")
        .or_else(|| name.strip_suffix(".tif"))
        .unwrap_or(name)
}

impl BuildDataset for Microscopy {
    type Config = MicroscopyConfig;
    const NAME: &'static str = "raw_microscopy";
    const SUMMARY: &'static str = "Raw-Microscopy: 16-bit TIFF leukocyte mosaics at seven intensities (classification)";

    fn build(config: MicroscopyConfig) -> PluginResult<Self> {
        if config.root.as_os_str().is_empty() {
            return Err(PluginError::Config(
                "root is required: the folder holding images/ and labels/".into(),
            ));
        }
        let intensity = l2l_rawio::published_intensity(config.intensity).map_err(PluginError::Config)?;
        let image_dir = config.root.join("images").join(l2l_rawio::intensity_folder(intensity));
        l2l_rawio::files_with_extensions(&image_dir, &["tif", "tiff"])?;
        let labels_path = config.root.join(&config.labels_file);
        let excluded: Vec<&str> = config.excluded_files.iter().map(|f| stem_of(f)).collect();
        let mut invalid = InvalidFiles::new(config.skip_invalid);
        let mut first_line: HashMap<String, usize> = HashMap::new();
        let mut entries = Vec::new();
        for line in read_stem_labels(&labels_path)? {
            let Some(label) = invalid.check(line)? else { continue };
            let stem = stem_of(&label.file).to_string();
            if excluded.contains(&stem.as_str()) {
                continue;
            }
            let bad = |reason: String| Err(FileError::at_line(&labels_path, label.line, reason));
            let checked = if !CLASS_CODES.contains(&label.class.as_str()) {
                bad(format!(
                    "unknown class `{}` (expected one of {})",
                    label.class,
                    CLASS_CODES.join(", ")
                ))
            } else if let Some(first) = first_line.get(&stem) {
                bad(format!("`{stem}` is labelled twice (first on line {first})"))
            } else {
                ["tiff", "tif"]
                    .iter()
                    .map(|ext| image_dir.join(format!("{stem}.{ext}")))
                    .find(|p| p.is_file())
                    .map(|path| Entry {
                        path,
                        class: label.class.clone(),
                    })
                    .ok_or(())
                    .or_else(|()| {
                        bad(format!(
                            "labels `{stem}`, but {}/{stem}.tiff does not exist",
                            image_dir.display()
                        ))
                    })
            };
            if let Some(entry) = invalid.check(checked)? {
                first_line.insert(stem, label.line);
                entries.push(entry);
            }
        }
        if config.verify {
            let decoded = decode_in_parallel(&entries, |e| read_mosaic(&e.path, None).map(|_| ()));
            let mut kept = Vec::new();
            for (entry, result) in entries.into_iter().zip(decoded) {
                if invalid.check(result)?.is_some() {
                    kept.push(entry);
                }
            }
            entries = kept;
        }
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for entry in &entries {
            *counts.entry(entry.class.clone()).or_default() += 1;
        }
        let class_names: Vec<String> = counts
            .iter()
            .filter(|(_, &n)| n >= config.min_images_per_class)
            .map(|(c, _)| c.clone())
            .collect();
        let mut images: Vec<(PathBuf, usize)> = entries
            .into_iter()
            .filter_map(|e| class_names.iter().position(|c| *c == e.class).map(|i| (e.path, i)))
            .collect();
        images.sort();
        if images.is_empty() {
            return Err(PluginError::Data(format!(
                "{}: no images left (labels in {}; classes need at least {} images; per class: {counts:?})",
                image_dir.display(),
                labels_path.display(),
                config.min_images_per_class
            )));
        }
        Ok(Self {
            images,
            class_names,
            camera: RawMetadata {
                intensity: intensity as f32,
                ..config.camera.apply(PRESET)
            },
            warnings: invalid.warnings(),
        })
    }
}

impl Dataset for Microscopy {
    fn class_names(&self) -> Option<Vec<String>> {
        Some(self.class_names.clone())
    }

    fn len(&self) -> usize {
        self.images.len()
    }

    fn labels(&self) -> Option<Vec<usize>> {
        Some(self.images.iter().map(|(_, class)| *class).collect())
    }

    fn warnings(&self) -> Vec<String> {
        self.warnings.clone()
    }

    fn sample(&self, index: usize) -> PluginResult<Sample> {
        let (path, class) = self.images.get(index).ok_or_else(|| {
            PluginError::Input(format!(
                "sample {index} is out of range (the dataset has {})",
                self.images.len()
            ))
        })?;
        let mosaic = read_mosaic(path, None)?;
        Ok(Sample {
            raw: Tensor::from_slice(&mosaic.values).f_view([mosaic.height as i64, mosaic.width as i64])?,
            target: Tensor::from(*class as i64),
            metadata: self.camera,
        })
    }
}

l2l_plugin_sdk::plugin! { datasets: [Microscopy] }
