//! `dataset download`: the published Raw-Microscopy and Raw-Drone data sets from their Zenodo record
//! (DOI 10.5281/zenodo.5235536), fetched with resume and MD5 checks, unpacked and arranged as the
//! loaders read them.
//!
//! Under `--to DIR`: `DIR/.l2l-download/` holds the record's files while they arrive (`NAME.part`,
//! continued on the next run) and once verified (`NAME`), and what their archives unpack to; the data
//! sets are then moved to `DIR/raw-microscopy/` and `DIR/raw-drone/` and the download folder removed.
//! An existing `DIR/raw-…` is never replaced.

pub mod layout;
pub mod transfer;
pub mod zenodo;

use anyhow::{bail, Context, Result};
use layout::{Arranged, PublishedDataset};
use std::path::{Path, PathBuf};
use std::time::Duration;
use transfer::Fetched;
use zenodo::RecordFile;

/// The Zenodo record of "From Lens to Logit"'s data sets (DOI 10.5281/zenodo.5235536).
pub const PUBLISHED_RECORD: u64 = 5235536;

/// Zenodo's REST API.
pub const ZENODO_API: &str = "https://zenodo.org/api";

/// The download folder below `--to`.
const WORK_DIR: &str = ".l2l-download";

/// A `dataset download` call.
#[derive(Debug, Clone)]
pub struct DownloadOptions {
    /// The data sets wanted.
    pub datasets: Vec<PublishedDataset>,
    /// Where they are arranged.
    pub to: PathBuf,
    /// The Zenodo record.
    pub record: u64,
    /// The API base (Zenodo's, or a mirror serving the same API).
    pub api: String,
}

/// Downloads, verifies, unpacks and arranges the wanted data sets (see the module docs); returns
/// what was arranged.
pub fn download(options: &DownloadOptions) -> Result<Vec<Arranged>> {
    for dataset in &options.datasets {
        let dest = options.to.join(dataset.name());
        if dest.exists() {
            bail!("{}: {} exists; remove it (or choose another --to) to download it again", dataset.name(), dest.display());
        }
    }
    let agent = ureq::AgentBuilder::new().timeout_connect(Duration::from_secs(30)).timeout_read(Duration::from_secs(120)).build();
    let files = zenodo::record_files(&agent, &options.api, options.record)?;
    let wanted = files_for(&files, &options.datasets);
    let work = options.to.join(WORK_DIR);
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    for file in &wanted {
        check_key(&file.key)?;
        match transfer::fetch(&agent, file, &work.join(&file.key))? {
            Fetched::AlreadyThere => tracing::info!("{}: already downloaded and verified", file.key),
            Fetched::Downloaded { resumes } => tracing::info!("{}: {} bytes, MD5 verified ({resumes} broken transfers continued)", file.key, file.size),
        }
    }
    let unpacked: Vec<PathBuf> = wanted.iter().filter_map(|f| unpack(&work, &f.key).transpose()).collect::<Result<_>>()?;
    let mut arranged = Vec::new();
    for dataset in &options.datasets {
        let dest = options.to.join(dataset.name());
        let mut found = None;
        for dir in &unpacked {
            if let Some(done) = layout::arrange(dir, *dataset, &dest)? {
                found = Some(done);
                break;
            }
        }
        let keys: Vec<&str> = wanted.iter().map(|f| f.key.as_str()).collect();
        arranged.push(found.with_context(|| format!("{}: not found in the record's files {keys:?} (looked for images…/raw_scale…/ folders)", dataset.name()))?);
    }
    std::fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    Ok(arranged)
}

/// The record's files that hold `datasets`: those named after them, else (no file is) all of them.
fn files_for(files: &[RecordFile], datasets: &[PublishedDataset]) -> Vec<RecordFile> {
    let named: Vec<RecordFile> =
        files.iter().filter(|f| datasets.iter().any(|d| f.key.to_ascii_lowercase().contains(d.keyword()))).cloned().collect();
    if named.is_empty() {
        files.to_vec()
    } else {
        named
    }
}

/// A record's file name becomes a file name here: no folders, no `..`.
fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.contains(['/', '\\']) || key == "." || key == ".." {
        bail!("the record names a file `{key}`; expected a plain file name");
    }
    Ok(())
}

/// Unpacks archive `work/KEY` into `work/unpacked/KEY/` (through a temporary twin, so an interrupted
/// unpacking is redone); `None` for a file that is not a zip archive.
fn unpack(work: &Path, key: &str) -> Result<Option<PathBuf>> {
    if !key.to_ascii_lowercase().ends_with(".zip") {
        tracing::warn!("{key}: not a zip archive; left as it is");
        return Ok(None);
    }
    let dest = work.join("unpacked").join(key);
    if dest.is_dir() {
        return Ok(Some(dest));
    }
    let partial = work.join("unpacked").join(format!("{key}.partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial)?;
    }
    std::fs::create_dir_all(&partial)?;
    let archive = std::fs::File::open(work.join(key)).with_context(|| format!("opening {key}"))?;
    zip::ZipArchive::new(archive)
        .and_then(|mut zip| zip.extract(&partial))
        .with_context(|| format!("{key}: not a readable zip archive"))?;
    std::fs::rename(&partial, &dest)?;
    Ok(Some(dest))
}

/// The report: per data set where it is, what was found, and the config lines that read it.
pub fn describe(arranged: &[Arranged]) -> String {
    let mut text = String::new();
    for a in arranged {
        let intensities: Vec<String> = a.intensities.iter().map(|(name, count)| format!("{name} ({count})")).collect();
        text.push_str(&format!("{}: {}\n", a.dataset.name(), a.root.display()));
        text.push_str(&format!("  found at: {}\n", a.found_at.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")));
        text.push_str(&format!("  intensity folders (images): {}\n", intensities.join(", ")));
        text.push_str(&format!("  annotations: {}\n", a.annotations.join(", ")));
        text.push_str(&format!("  config:\n    [dataset]\n    kind = \"{}\"\n    root = {:?}\n", a.dataset.loader(), a.root.display().to_string()));
        if let (PublishedDataset::RawMicroscopy, Some(labels)) = (a.dataset, a.annotations.first()) {
            if a.annotations.len() > 1 || labels != "labels/Ma190c_annotations.dat" {
                text.push_str(&format!("    labels_file = {labels:?}   # one of: {}\n", a.annotations.join(", ")));
            }
        }
    }
    text
}
