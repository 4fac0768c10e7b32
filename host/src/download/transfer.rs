//! One file fetched over HTTP into `NAME.part`, continued with a `Range` request where a transfer
//! broke off, checked against its MD5 and only then renamed to `NAME`: a complete, verified file or
//! none at all.

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

fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
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

/// Fetches `file` to `dest` (see the module docs).
pub fn fetch(agent: &ureq::Agent, file: &RecordFile, dest: &Path) -> Result<Fetched> {
    if dest.is_file() && std::fs::metadata(dest)?.len() == file.size && md5_of(dest)? == file.md5 {
        return Ok(Fetched::AlreadyThere);
    }
    let part = part_path(dest);
    let bar = ProgressBar::new(file.size).with_style(
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
        let mut request = agent.get(&file.url);
        if have > 0 && have < file.size {
            request = request.set("Range", &format!("bytes={have}-"));
        }
        let broke = match request.call() {
            Ok(response) => {
                // a server that ignores the range sends the whole file again: start over
                let append = have > 0 && have < file.size && response.status() == 206;
                let mut out = OpenOptions::new().create(true).write(true).append(append).truncate(!append).open(&part)
                    .with_context(|| format!("writing {}", part.display()))?;
                bar.set_position(if append { have } else { 0 });
                copy_counting(response.into_reader(), &mut out, &bar).err()
            }
            Err(ureq::Error::Status(code, _)) => bail!("{}: {} answered HTTP {code}", file.key, file.url),
            Err(ureq::Error::Transport(e)) => Some(std::io::Error::other(e.to_string())),
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
            bail!("{}: the server sent more than the record's {} bytes; the download was removed", file.key, file.size);
        }
    }
    bar.finish_and_clear();
    let actual = md5_of(&part)?;
    if actual != file.md5 {
        std::fs::remove_file(&part)?;
        bail!("{}: checksum mismatch: MD5 {actual}, the record says {}; the download was removed (run again to fetch it anew)", file.key, file.md5);
    }
    std::fs::rename(&part, dest).with_context(|| format!("renaming {} to {}", part.display(), dest.display()))?;
    Ok(Fetched::Downloaded { resumes })
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
