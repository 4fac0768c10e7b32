//! What every file of the crate shares: the error that names a file, atomic writes, extensions and
//! the published layouts' folder names.

use std::fmt;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A file that could not be read or written: the file, the line where it applies, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct FileError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line, for text files.
    pub line: Option<usize>,
    /// What was wrong, and what was expected.
    pub reason: String,
}

impl FileError {
    /// An error about `path` as a whole.
    pub fn new(path: &Path, reason: impl Into<String>) -> Self {
        Self {
            path: path.to_path_buf(),
            line: None,
            reason: reason.into(),
        }
    }

    /// An error about one line of `path`.
    pub fn at_line(path: &Path, line: usize, reason: impl Into<String>) -> Self {
        Self {
            line: Some(line),
            ..Self::new(path, reason)
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}: line {line}: {}", self.path.display(), self.reason),
            None => write!(f, "{}: {}", self.path.display(), self.reason),
        }
    }
}

impl std::error::Error for FileError {}

impl From<FileError> for l2l_plugin_sdk::PluginError {
    fn from(err: FileError) -> Self {
        l2l_plugin_sdk::PluginError::Data(err.to_string())
    }
}

/// The exposure intensities (percent of full) of the published raw sets.
pub const PUBLISHED_INTENSITIES: [u32; 7] = [1, 5, 10, 25, 50, 75, 100];

/// The folder of one intensity in the published layouts: `raw_scale001` … `raw_scale100`.
pub fn intensity_folder(intensity: u32) -> String {
    format!("raw_scale{intensity:03}")
}

/// A published intensity from a config value, or why not.
pub fn published_intensity(intensity: f64) -> Result<u32, String> {
    PUBLISHED_INTENSITIES
        .into_iter()
        .find(|&i| f64::from(i) == intensity)
        .ok_or_else(|| format!("intensity must be one of {PUBLISHED_INTENSITIES:?} (percent), found {intensity}"))
}

/// The files directly in `dir` whose extension (lower case) is in `extensions`, sorted; an error
/// naming `dir` when it cannot be listed or holds none.
pub fn files_with_extensions(dir: &Path, extensions: &[&str]) -> FileResult<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| FileError::new(dir, format!("listing folder: {e}")))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && extensions.contains(&extension(p).as_str()))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(FileError::new(
            dir,
            format!("no files with extension {} in this folder", extensions.join(", ")),
        ));
    }
    Ok(files)
}

/// Shorthand for results of this crate.
pub type FileResult<T> = Result<T, FileError>;

/// Writes `path` through a temporary file in the same directory and a rename, so that a reader never
/// sees a half-written file and an existing file is only ever replaced by a complete one. The
/// temporary file is removed when `contents` fails.
pub fn write_atomically(
    path: &Path,
    contents: impl FnOnce(&mut dyn Write) -> Result<(), Box<dyn std::error::Error + Send + Sync>>,
) -> FileResult<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| FileError::new(path, "not a file path"))?;
    let temp: PathBuf = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    let result = (|| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let file = std::fs::File::create(&temp).map_err(|e| format!("creating {}: {e}", temp.display()))?;
        let mut writer = BufWriter::new(file);
        contents(&mut writer)?;
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&temp, path).map_err(|e| format!("renaming {} into place: {e}", temp.display()))?;
        Ok(())
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        FileError::new(path, format!("writing: {e}"))
    })
}

/// deflate, PNG's compression, expands data at most ~1032:1; a decoded PNG this many times larger than
/// its file cannot be genuine.
const PNG_MAX_EXPANSION: u64 = 1100;

/// The buffer a PNG's first frame decodes into — refused, before anything is allocated, when the size
/// the header claims is more than the file's bytes could decompress to (a corrupt or hostile header
/// would otherwise make l2l allocate gigabytes).
pub(crate) fn png_frame_buffer<R: std::io::BufRead + std::io::Seek>(
    reader: &png::Reader<R>,
    file_len: u64,
    path: &Path,
) -> FileResult<Vec<u8>> {
    let size = reader.output_buffer_size().unwrap_or(usize::MAX);
    if size as u64 > file_len.saturating_mul(PNG_MAX_EXPANSION) {
        let info = reader.info();
        return Err(FileError::new(
            path,
            format!(
                "the header claims {}×{} pixels ({size} bytes decoded), more than a {file_len}-byte PNG can hold (corrupt header?)",
                info.width, info.height
            ),
        ));
    }
    Ok(vec![0; size])
}

/// Removes the temporary files `write_atomically` left in `dir` when its process was killed mid-write
/// (`.NAME.PID.tmp` whose PID no longer runs), so a resumed job starts clean; logs and returns what
/// it removed. Files of writers still running are left alone.
pub fn remove_stale_temporaries(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(removed);
    };
    for entry in entries {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(writer) = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".tmp"))
            .and_then(|n| n.rsplit_once('.'))
            .and_then(|(_, pid)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let running = writer == std::process::id() || Path::new("/proc").join(writer.to_string()).exists();
        if !running && path.is_file() {
            std::fs::remove_file(&path)?;
            tracing::warn!("removed {}, left by a process killed while writing it", path.display());
            removed.push(path);
        }
    }
    Ok(removed)
}

/// The lower-case extension of `path` ("" when it has none).
pub fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_keeps_the_old_file_when_writing_fails() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        std::fs::write(&path, "old").unwrap();
        let err = write_atomically(&path, |out| {
            out.write_all(b"half")?;
            Err("disk full".into())
        })
        .unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "temporary file left behind"
        );
        write_atomically(&path, |out| Ok(out.write_all(b"new")?)).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
    }

    #[test]
    fn only_temporaries_of_writers_that_are_gone_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // above Linux's largest possible PID (2^22), so no process has it
        let stale = dir.path().join(".checkpoint.safetensors.4194305.tmp");
        let ours = dir.path().join(format!(".metrics.csv.{}.tmp", std::process::id()));
        let other = dir.path().join("notes.1234.tmp");
        for path in [&stale, &ours, &other] {
            std::fs::write(path, "x").unwrap();
        }
        assert_eq!(remove_stale_temporaries(dir.path()).unwrap(), vec![stale.clone()]);
        assert!(!stale.exists() && ours.exists() && other.exists());
        assert!(remove_stale_temporaries(&dir.path().join("missing"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let err = FileError::at_line(Path::new("labels.dat"), 12, "expected `NAME CLASS`");
        assert_eq!(err.to_string(), "labels.dat: line 12: expected `NAME CLASS`");
    }
}
