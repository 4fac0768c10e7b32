//! A Zenodo record's file list, read from its REST API (`GET {api}/records/{id}`): per file its key
//! (name), size, `md5:` checksum and download link.

use super::http::{get, GetError};
use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

/// One file of a record.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordFile {
    /// The file's name in the record.
    pub key: String,
    /// Bytes.
    pub size: u64,
    /// The MD5 the record states, lower-case hex.
    pub md5: String,
    /// Where its bytes are.
    pub url: String,
}

#[derive(Deserialize)]
struct Record {
    files: Vec<FileEntry>,
}

#[derive(Deserialize)]
struct FileEntry {
    key: String,
    size: u64,
    checksum: String,
    links: Links,
}

/// Zenodo names the download link `self` in a record's `files` (and `content` in the newer files
/// listing); either is taken.
#[derive(Deserialize)]
struct Links {
    #[serde(rename = "self")]
    this: Option<String>,
    content: Option<String>,
    download: Option<String>,
}

/// The most bytes of a record's JSON read.
const MAX_RECORD_BYTES: u64 = 16 << 20;

/// The files of record `id` at the API base `api` (e.g. `https://zenodo.org/api`).
pub fn record_files(agent: &ureq::Agent, api: &str, id: u64) -> Result<Vec<RecordFile>> {
    let url = format!("{}/records/{id}", api.trim_end_matches('/'));
    let response = match get(agent, &url, &[("Accept", "application/json")]) {
        Ok(response) => response,
        Err(GetError::Status(404)) => bail!("record {id}: {url} answered 404 (no such record; check --record)"),
        Err(GetError::Status(code)) => bail!("record {id}: {url} answered HTTP {code}"),
        Err(GetError::Transport(e)) => {
            bail!("record {id}: could not reach {url} ({e}); offline? --mirror URL names another server")
        }
        Err(GetError::Refused(e)) => bail!("record {id}: {e}"),
    };
    // a record's listing is kilobytes: a server streaming more is cut off, not held in memory
    let record: Record = serde_json::from_reader(std::io::Read::take(response.into_reader(), MAX_RECORD_BYTES))
        .with_context(|| format!("record {id}: {url} did not answer with a Zenodo record (JSON with `files`)"))?;
    record
        .files
        .into_iter()
        .map(|f| {
            let md5 = f
                .checksum
                .strip_prefix("md5:")
                .ok_or_else(|| {
                    anyhow!(
                        "record {id}: file `{}` has checksum `{}`; expected `md5:…`",
                        f.key,
                        f.checksum
                    )
                })?
                .to_ascii_lowercase();
            let url = f
                .links
                .content
                .or(f.links.this)
                .or(f.links.download)
                .ok_or_else(|| anyhow!("record {id}: file `{}` has no download link", f.key))?;
            Ok(RecordFile {
                key: f.key,
                size: f.size,
                md5,
                url,
            })
        })
        .collect()
}
