//! Finding a published data set inside unpacked archives, wherever its folders sit, and arranging it
//! as its loader reads it: Raw-Microscopy as `images/raw_scale*/*.tif(f)` + `labels/*.dat`, Raw-Drone
//! as `images_full/raw_scale*/*.dng` + `masks_full/*.png`.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// Folders deeper than this below an unpacked archive are not searched.
const MAX_DEPTH: usize = 8;

/// A data set of the published record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishedDataset {
    /// Raw-Microscopy: 16-bit TIFF mosaics of leukocytes and a label file.
    RawMicroscopy,
    /// Raw-Drone: DNGs of streets seen from a drone and car masks.
    RawDrone,
}

impl PublishedDataset {
    /// The folder it is arranged in, and the name the CLI uses.
    pub fn name(self) -> &'static str {
        match self {
            PublishedDataset::RawMicroscopy => "raw-microscopy",
            PublishedDataset::RawDrone => "raw-drone",
        }
    }

    /// A part of the name of the record's file that holds it.
    pub fn keyword(self) -> &'static str {
        match self {
            PublishedDataset::RawMicroscopy => "microscop",
            PublishedDataset::RawDrone => "drone",
        }
    }

    /// The `[dataset] kind` that reads it.
    pub fn loader(self) -> &'static str {
        match self {
            PublishedDataset::RawMicroscopy => "raw_microscopy",
            PublishedDataset::RawDrone => "raw_drone",
        }
    }

    fn image_extensions(self) -> &'static [&'static str] {
        match self {
            PublishedDataset::RawMicroscopy => &["tif", "tiff"],
            PublishedDataset::RawDrone => &["dng"],
        }
    }

    /// The images folder, and the annotations folder, as the loader names them.
    fn folders(self) -> (&'static str, &'static str) {
        match self {
            PublishedDataset::RawMicroscopy => ("images", "labels"),
            PublishedDataset::RawDrone => ("images_full", "masks_full"),
        }
    }

    /// Whether `dir` is this data set's annotations folder: `labels` with a `.dat`, or `masks…` with PNGs.
    fn is_annotations(self, dir: &Path) -> bool {
        let name = file_name(dir);
        match self {
            PublishedDataset::RawMicroscopy => name == "labels" && !files_with(dir, &["dat"]).is_empty(),
            PublishedDataset::RawDrone => name.starts_with("masks") && !files_with(dir, &["png"]).is_empty(),
        }
    }
}

/// What was arranged.
#[derive(Debug, Clone)]
pub struct Arranged {
    /// Which data set.
    pub dataset: PublishedDataset,
    /// Its folder, as `[dataset] root`.
    pub root: PathBuf,
    /// The intensity folders found (`raw_scale…`), with their image counts.
    pub intensities: Vec<(String, usize)>,
    /// The annotation files (label files, or the number of masks).
    pub annotations: Vec<String>,
    /// Where the images and annotations were found inside the archive.
    pub found_at: Vec<PathBuf>,
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn subdirs(dir: &Path) -> Vec<PathBuf> {
    // the entry's own type: a link to a folder is not followed (a link to `.` would loop)
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    dirs.sort();
    dirs
}

fn files_with(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| extensions.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    files
}

/// Every folder below `dir` (itself included), to [`MAX_DEPTH`].
fn all_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut found = vec![dir.to_path_buf()];
    let mut frontier = vec![(dir.to_path_buf(), 0)];
    while let Some((current, depth)) = frontier.pop() {
        if depth < MAX_DEPTH {
            for sub in subdirs(&current) {
                found.push(sub.clone());
                frontier.push((sub, depth + 1));
            }
        }
    }
    found
}

/// The images folder of `dataset` below `unpacked`: a folder named `images…` holding `raw_scale…`
/// folders of the data set's raw files. `None` when there is none; an error when there are several.
fn images_folder(unpacked: &Path, dataset: PublishedDataset) -> Result<Option<PathBuf>> {
    let candidates: Vec<PathBuf> = all_dirs(unpacked)
        .into_iter()
        .filter(|d| file_name(d).starts_with("images"))
        .filter(|d| {
            subdirs(d)
                .iter()
                .any(|s| file_name(s).starts_with("raw_scale") && !files_with(s, dataset.image_extensions()).is_empty())
        })
        .collect();
    match candidates.len() {
        0 => Ok(None),
        1 => Ok(candidates.into_iter().next()),
        _ => bail!(
            "{}: several image folders found ({}); arrange it by hand",
            dataset.name(),
            candidates
                .iter()
                .map(|c| c.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Arranges `dataset` found below `unpacked` as `dest` (which must not exist): the images folder and
/// the annotations folder (its sibling, else the only one below `unpacked`) are moved there under
/// the loader's names, through `dest`'s temporary twin, so `dest` appears complete or not at all.
/// `Ok(None)` when `unpacked` does not hold the data set.
pub fn arrange(unpacked: &Path, dataset: PublishedDataset, dest: &Path) -> Result<Option<Arranged>> {
    let Some(images) = images_folder(unpacked, dataset)? else {
        return Ok(None);
    };
    let siblings = images.parent().map(subdirs).unwrap_or_default();
    let annotations = match siblings.into_iter().find(|d| dataset.is_annotations(d)) {
        Some(found) => found,
        None => {
            let anywhere: Vec<PathBuf> = all_dirs(unpacked)
                .into_iter()
                .filter(|d| dataset.is_annotations(d))
                .collect();
            match anywhere.as_slice() {
                [one] => one.clone(),
                [] => bail!(
                    "{}: images found at {}, but no {} folder",
                    dataset.name(),
                    images.display(),
                    dataset.folders().1
                ),
                _ => bail!(
                    "{}: several annotation folders found; arrange it by hand",
                    dataset.name()
                ),
            }
        }
    };
    let intensities = subdirs(&images)
        .into_iter()
        .filter(|d| file_name(d).starts_with("raw_scale"))
        .map(|d| (file_name(&d), files_with(&d, dataset.image_extensions()).len()))
        .collect();
    let annotation_files = match dataset {
        PublishedDataset::RawMicroscopy => files_with(&annotations, &["dat"])
            .iter()
            .map(|f| format!("labels/{}", file_name(f)))
            .collect(),
        PublishedDataset::RawDrone => vec![format!("{} masks", files_with(&annotations, &["png"]).len())],
    };
    let staging = dest.with_file_name(format!(".{}.arranging", file_name(dest)));
    if staging.exists() {
        std::fs::remove_dir_all(&staging).with_context(|| format!("removing the unfinished {}", staging.display()))?;
    }
    std::fs::create_dir_all(&staging).with_context(|| format!("creating {}", staging.display()))?;
    let (images_name, annotations_name) = dataset.folders();
    let found_at = vec![images.clone(), annotations.clone()];
    std::fs::rename(&images, staging.join(images_name)).with_context(|| format!("moving {}", images.display()))?;
    std::fs::rename(&annotations, staging.join(annotations_name))
        .with_context(|| format!("moving {}", annotations.display()))?;
    std::fs::rename(&staging, dest).with_context(|| format!("moving {} to {}", staging.display(), dest.display()))?;
    Ok(Some(Arranged {
        dataset,
        root: dest.to_path_buf(),
        intensities,
        annotations: annotation_files,
        found_at,
    }))
}
