//! `dataset download`: the published Raw-Microscopy and Raw-Drone data sets from their Zenodo record
//! (DOI 10.5281/zenodo.5235536), fetched with resume and MD5 checks, unpacked and arranged as the
//! loaders read them.
//!
//! Under `--to DIR`: `DIR/.l2l-download/` holds the record's files while they arrive (`partial/NAME`,
//! continued on the next run) and once verified (`files/NAME`), and what their archives unpack to
//! (`unpacked/NAME/`); the data sets are then moved to `DIR/raw-microscopy/` and `DIR/raw-drone/` and
//! the download folder removed. An existing `DIR/raw-…` is never replaced.
//!
//! Hostile servers and archives: bytes past a file's recorded size stop its transfer at once;
//! redirects go only to http(s); archive entries that are links, or that leave the folder, are
//! refused; an archive that unpacks to more than `max_unpack_ratio` times its size is stopped there.

pub mod http;
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
    /// An archive may unpack to at most this many times its own size (raw images compress a few
    /// times; a zip bomb a thousand).
    pub max_unpack_ratio: u64,
}

/// The default of [`DownloadOptions::max_unpack_ratio`].
pub const MAX_UNPACK_RATIO: u64 = 20;

/// Downloads, verifies, unpacks and arranges the wanted data sets (see the module docs); returns
/// what was arranged.
pub fn download(options: &DownloadOptions) -> Result<Vec<Arranged>> {
    for dataset in &options.datasets {
        let dest = options.to.join(dataset.name());
        if dest.exists() {
            bail!(
                "{}: {} exists; remove it (or choose another --to) to download it again",
                dataset.name(),
                dest.display()
            );
        }
    }
    // redirects are followed by `http::get`, which goes only to http(s)
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(120))
        .redirects(0)
        .build();
    let files = zenodo::record_files(&agent, &options.api, options.record)?;
    let wanted = files_for(&files, &options.datasets);
    for (index, file) in wanted.iter().enumerate() {
        check_key(&file.key)?;
        if wanted[..index].iter().any(|f| f.key == file.key) {
            bail!(
                "the record lists the file `{}` twice; expected one entry per name",
                file.key
            );
        }
    }
    let work = options.to.join(WORK_DIR);
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let mut fetched = Vec::new();
    for file in &wanted {
        let (path, outcome) = transfer::fetch(&agent, file, &work)?;
        match outcome {
            Fetched::AlreadyThere => tracing::info!("{}: already downloaded and verified", file.key),
            Fetched::Downloaded { resumes } => tracing::info!(
                "{}: {} bytes, MD5 verified ({resumes} broken transfers continued)",
                file.key,
                file.size
            ),
        }
        fetched.push(path);
    }
    let unpacked: Vec<PathBuf> = fetched
        .iter()
        .filter_map(|path| unpack(&work, path, options.max_unpack_ratio).transpose())
        .collect::<Result<_>>()?;
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
        arranged.push(found.with_context(|| {
            format!(
                "{}: not found in the record's files {keys:?} (looked for images…/raw_scale…/ folders)",
                dataset.name()
            )
        })?);
    }
    std::fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    Ok(arranged)
}

/// The record's files that hold `datasets`: those named after them, else (no file is) all of them.
fn files_for(files: &[RecordFile], datasets: &[PublishedDataset]) -> Vec<RecordFile> {
    let named: Vec<RecordFile> = files
        .iter()
        .filter(|f| {
            datasets
                .iter()
                .any(|d| f.key.to_ascii_lowercase().contains(d.keyword()))
        })
        .cloned()
        .collect();
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

/// Unpacks the archive `path` into `work/unpacked/KEY/` (through a temporary twin, so an interrupted
/// unpacking is redone); `None` for a file that is not a zip archive. Refused: entries that are
/// links or leave the folder, and more than `max_ratio` times the archive's size in all.
fn unpack(work: &Path, path: &Path, max_ratio: u64) -> Result<Option<PathBuf>> {
    let key = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !key.to_ascii_lowercase().ends_with(".zip") {
        tracing::warn!("{key}: not a zip archive; left as it is");
        return Ok(None);
    }
    let dest = work.join("unpacked").join(&key);
    if dest.is_dir() {
        return Ok(Some(dest));
    }
    let partial = work.join("unpacked").join(format!("{key}.partial"));
    if partial.exists() {
        std::fs::remove_dir_all(&partial).with_context(|| format!("removing {}", partial.display()))?;
    }
    std::fs::create_dir_all(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let archive = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let limit = archive.metadata()?.len().max(1).saturating_mul(max_ratio);
    let mut zip = zip::ZipArchive::new(archive).with_context(|| format!("{key}: not a readable zip archive"))?;
    let mut written = 0u64;
    for index in 0..zip.len() {
        let mut entry = zip
            .by_index(index)
            .with_context(|| format!("{key}: entry {index} is unreadable"))?;
        let name = entry
            .name()
            .map(|n| n.into_owned())
            .unwrap_or_else(|_| format!("#{index}"));
        if entry.is_symlink() {
            bail!("{key}: entry `{name}` is a symbolic link; archives of data sets hold files and folders only");
        }
        let relative = entry
            .enclosed_name()
            .with_context(|| format!("{key}: entry `{name}` leaves the folder it unpacks to"))?;
        let target = partial.join(relative);
        if entry.is_dir() {
            std::fs::create_dir_all(&target).with_context(|| format!("creating {}", target.display()))?;
            continue;
        }
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let mut out = std::fs::File::create(&target).with_context(|| format!("writing {}", target.display()))?;
        // the entry's declared size may lie: the copy itself stops one byte past the limit
        let copied = std::io::copy(&mut std::io::Read::take(&mut entry, limit - written + 1), &mut out)
            .with_context(|| format!("{key}: unpacking `{name}`"))?;
        written += copied;
        if written > limit {
            drop(out);
            std::fs::remove_dir_all(&partial).with_context(|| format!("removing {}", partial.display()))?;
            bail!(
                "{key}: unpacks to more than {max_ratio}× its size ({limit} bytes) — a zip bomb, or data that compresses unusually well; \
                 --max-unpack-ratio raises the limit"
            );
        }
    }
    std::fs::rename(&partial, &dest)
        .with_context(|| format!("renaming {} to {}", partial.display(), dest.display()))?;
    Ok(Some(dest))
}

/// The report: per data set where it is, what was found, and the config lines that read it.
pub fn describe(arranged: &[Arranged]) -> String {
    let mut text = String::new();
    for a in arranged {
        let intensities: Vec<String> = a
            .intensities
            .iter()
            .map(|(name, count)| format!("{name} ({count})"))
            .collect();
        text.push_str(&format!("{}: {}\n", a.dataset.name(), a.root.display()));
        text.push_str(&format!(
            "  found at: {}\n",
            a.found_at
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        text.push_str(&format!("  intensity folders (images): {}\n", intensities.join(", ")));
        text.push_str(&format!("  annotations: {}\n", a.annotations.join(", ")));
        text.push_str(&format!(
            "  config:\n    [dataset]\n    kind = \"{}\"\n    root = {:?}\n",
            a.dataset.loader(),
            a.root.display().to_string()
        ));
        if let (PublishedDataset::RawMicroscopy, Some(labels)) = (a.dataset, a.annotations.first()) {
            if a.annotations.len() > 1 || labels != "labels/Ma190c_annotations.dat" {
                text.push_str(&format!(
                    "    labels_file = {labels:?}   # one of: {}\n",
                    a.annotations.join(", ")
                ));
            }
        }
    }
    text
}
