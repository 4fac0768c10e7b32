//! Which plugin files the host agrees to load, beyond being on the search path: none that another user
//! could have placed or changed — the file, after following links, and every directory above it must
//! be owned by root or the invoking user and writable by no one else (OpenSSH's StrictModes; a
//! root-owned sticky directory such as /tmp is allowed, since nobody can replace another's entries in
//! it) — and, when a lock file is present, only those it pins, unchanged.
//!
//! The lock file is `$L2L_PLUGIN_LOCK`, else `l2l-plugins.lock` in the working directory; `l2l-host
//! plugins lock` writes it (each plugin file's absolute path and SHA-256).

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The environment variable naming the lock file.
pub const LOCK_VAR: &str = "L2L_PLUGIN_LOCK";
/// The lock file's default name, in the working directory.
pub const DEFAULT_LOCK: &str = "l2l-plugins.lock";

/// Refuses a file another user could have placed or changed (see the module docs): the file the
/// path leads to, links followed, and every directory above it.
pub fn check_permissions(file: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let canonical = file
        .canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", file.display()))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let linked = if canonical != std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf()) {
        format!(" (linked from {})", file.display())
    } else {
        String::new()
    };
    for (index, path) in canonical.ancestors().enumerate() {
        let what = if index == 0 { "file" } else { "directory" };
        let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mode = meta.mode() & 0o7777;
        if meta.uid() != 0 && meta.uid() != me {
            return Err(format!(
                "its {what} {}{linked} belongs to another user (uid {}); only root's and your own files and directories are trusted",
                path.display(),
                meta.uid()
            ));
        }
        let shared_sticky = index > 0 && mode & 0o1000 != 0 && meta.uid() == 0;
        if mode & 0o022 != 0 && !shared_sticky {
            return Err(format!(
                "its {what} {}{linked} is writable by other users (mode {mode:o}); remove that permission (chmod go-w) to load it",
                path.display()
            ));
        }
    }
    Ok(())
}

/// SHA-256 of a file, as lower-case hex.
pub fn sha256(file: &Path) -> Result<String> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    Ok(Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}

/// A plugin lock: absolute plugin paths and their SHA-256.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct PluginLock {
    /// Path → SHA-256.
    pub plugins: BTreeMap<PathBuf, String>,
    /// Where it was read from.
    #[serde(skip)]
    pub path: PathBuf,
}

impl PluginLock {
    /// The lock file in effect, if any (an unreadable or malformed one is an error).
    pub fn find() -> Result<Option<PluginLock>> {
        let path = Self::location();
        if !path.exists() {
            if std::env::var_os(LOCK_VAR).is_some() {
                anyhow::bail!("{LOCK_VAR}={}: no such lock file", path.display());
            }
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading plugin lock {}", path.display()))?;
        let mut lock: PluginLock = toml::from_str(&text).with_context(|| format!("plugin lock {}", path.display()))?;
        lock.path = path;
        Ok(Some(lock))
    }

    /// Where the lock in effect is looked for: `$L2L_PLUGIN_LOCK`, else `./l2l-plugins.lock`.
    pub fn location() -> PathBuf {
        std::env::var_os(LOCK_VAR)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_LOCK))
    }

    /// Whether `file` may load: pinned, with the same SHA-256.
    pub fn check(&self, file: &Path) -> Result<(), String> {
        let canonical = file.canonicalize().unwrap_or_else(|_| file.to_path_buf());
        let Some(pinned) = self.plugins.get(&canonical) else {
            return Err(format!(
                "not in the plugin lock {} (run `l2l-host plugins lock` to trust it)",
                self.path.display()
            ));
        };
        let actual = sha256(file).map_err(|e| e.to_string())?;
        if actual != *pinned {
            return Err(format!(
                "changed since it was locked in {}: sha256 {actual}, locked {pinned}",
                self.path.display()
            ));
        }
        Ok(())
    }

    /// Writes a lock pinning `files` to `path` (atomically).
    pub fn write(path: &Path, files: &[PathBuf]) -> Result<()> {
        let mut plugins = BTreeMap::new();
        for file in files {
            plugins.insert(file.canonicalize()?, sha256(file)?);
        }
        let text = format!(
            "# l2l plugin lock: only these plugin files, unchanged, load while this file is in effect\n{}",
            toml::to_string(&PluginLock {
                plugins,
                path: PathBuf::new()
            })?
        );
        crate::imageio::write_atomically(path, |out| Ok(out.write_all(text.as_bytes())?))
    }
}
