//! One file fetched over HTTP into `NAME.part`, continued with a `Range` request where a transfer
//! broke off, checked against its MD5 and only then renamed to `NAME`: a complete, verified file or
//! none at all.

use super::http::{get, GetError};
use super::zenodo::RecordFile;
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use md5::{Digest, Md5};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Broken transfers continued before giving up on a file.
pub const MAX_RESUMES: usize = 8;

/// What fetching a file did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fetched {
    /// The verified file was already there.
    AlreadyThere,
    /// Downloaded (continuing `resumes` times where the connection broke).
    Downloaded {
        /// How many times a broken transfer was continued.
        resumes: usize,
    },
}

/// The MD5 of a file, lower-case hex.
pub fn md5_of(path: &Path) -> Result<String> {
    let mut file = File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut hasher = Md5::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Fetches `file` into `files/KEY` below `work`, through `partial/KEY` (see the module docs; the two
/// folders keep a record's `X.part` from meeting the part file of its `X`); returns the file's path.
pub fn fetch(agent: &ureq::Agent, file: &RecordFile, work: &Path) -> Result<(PathBuf, Fetched)> {
    let [done_dir, part_dir] = ["files", "partial"].map(|folder| work.join(folder));
    for dir in [&done_dir, &part_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let dest = done_dir.join(&file.key);
    if dest.is_file() && std::fs::metadata(&dest)?.len() == file.size && md5_of(&dest)? == file.md5 {
        return Ok((dest, Fetched::AlreadyThere));
    }
    let part = part_dir.join(&file.key);
    if file.size == 0 {
        File::create(&part).with_context(|| format!("writing {}", part.display()))?;
    }
    let bar = crate::console::progress_bar(file.size).with_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(file.key.clone());
    let mut resumes = 0;
    loop {
        let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        if have == file.size {
            break;
        }
        let range = format!("bytes={have}-");
        let headers: &[(&str, &str)] = if have > 0 && have < file.size {
            &[("Range", &range)]
        } else {
            &[]
        };
        let broke = match get(agent, &file.url, headers) {
            Ok(response) => {
                // a server that ignores the range sends the whole file again: start over
                let append = have > 0 && have < file.size && response.status() == 206;
                let mut out = OpenOptions::new()
                    .create(true)
                    .write(true)
                    .append(append)
                    .truncate(!append)
                    .open(&part)
                    .with_context(|| format!("writing {}", part.display()))?;
                let start = if append { have } else { 0 };
                bar.set_position(start);
                // one byte past the record's size is enough to know the server sends too much: an
                // endless stream is cut there instead of filling the disk
                copy_counting(response.into_reader().take(file.size - start + 1), &mut out, &bar).err()
            }
            Err(GetError::Transport(e)) => Some(std::io::Error::other(e)),
            Err(e) => bail!("{}: {}: {e}", file.key, file.url),
        };
        if let Some(error) = broke {
            resumes += 1;
            if resumes > MAX_RESUMES {
                bail!("{}: the transfer broke off {resumes} times, the last with: {error}; run again to continue from {} bytes", file.key, std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0));
            }
            tracing::warn!("{}: transfer broke off ({error}); continuing", file.key);
        } else if std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0) < file.size {
            resumes += 1;
            if resumes > MAX_RESUMES {
                bail!("{}: the server keeps ending the file early", file.key);
            }
        }
        if std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0) > file.size {
            std::fs::remove_file(&part)?;
            bail!(
                "{}: the server sent more than the record's {} bytes; the download was removed",
                file.key,
                file.size
            );
        }
    }
    bar.finish_and_clear();
    let actual = md5_of(&part)?;
    if actual != file.md5 {
        std::fs::remove_file(&part)?;
        bail!("{}: checksum mismatch: MD5 {actual}, the record says {}; the download was removed (run again to fetch it anew)", file.key, file.md5);
    }
    std::fs::rename(&part, &dest).with_context(|| format!("renaming {} to {}", part.display(), dest.display()))?;
    Ok((dest, Fetched::Downloaded { resumes }))
}

/// Copies `reader` into `out`, flushing as it goes so that what arrived survives a broken connection.
fn copy_counting(mut reader: impl Read, out: &mut File, bar: &ProgressBar) -> std::io::Result<()> {
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            return out.flush();
        }
        out.write_all(&buffer[..n])?;
        bar.inc(n as u64);
    }
}
