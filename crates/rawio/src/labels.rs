//! Label files: the Raw-Microscopy `FILE_STEM CLASS` list and a `file,label` CSV.
//!
//! A file that cannot be read is one error; a line that does not parse is an error of its own (file
//! and line), so that a loader with `skip_invalid` can drop that line and keep the rest.

use crate::files::{FileError, FileResult};
use std::path::Path;

/// One label: which file, which class, and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    /// 1-based line in the label file.
    pub line: usize,
    /// The file: a stem (Raw-Microscopy) or a relative path (CSV).
    pub file: String,
    /// The class name.
    pub class: String,
}

/// A label's file must name a file inside the data set's folder: a relative path without `..`, so
/// that a label file cannot make a loader read `/etc/…` or a neighbour's data.
fn inside_the_data_set(path: &Path, line: usize, label: Label) -> FileResult<Label> {
    let file = Path::new(&label.file);
    let escapes = file.is_absolute()
        || file
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir));
    if escapes {
        return Err(FileError::at_line(
            path,
            line,
            format!(
                "`{}`: expected a file inside the data set's folder (a relative path without `..`)",
                label.file
            ),
        ));
    }
    Ok(label)
}

fn read_lines(path: &Path) -> FileResult<String> {
    std::fs::read_to_string(path).map_err(|e| FileError::new(path, format!("reading label file: {e}")))
}

/// Reads a whitespace-separated `FILE_STEM CLASS` list, one pair per line; blank lines and lines
/// starting with `#` are skipped.
pub fn read_stem_labels(path: &Path) -> FileResult<Vec<FileResult<Label>>> {
    let text = read_lines(path)?;
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| match l.split_whitespace().collect::<Vec<_>>().as_slice() {
            [file, class] => inside_the_data_set(
                path,
                i + 1,
                Label {
                    line: i + 1,
                    file: file.to_string(),
                    class: class.to_string(),
                },
            ),
            fields => Err(FileError::at_line(
                path,
                i + 1,
                format!(
                    "expected `FILE_STEM CLASS`, found {} fields in `{}`",
                    fields.len(),
                    l.trim()
                ),
            )),
        })
        .collect())
}

/// Reads a CSV with the header `file,label` and one `file,label` row per line (no quoting; blank lines
/// skipped).
pub fn read_csv_labels(path: &Path) -> FileResult<Vec<FileResult<Label>>> {
    let text = read_lines(path)?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    match lines.next() {
        Some((_, header)) if header.split(',').map(str::trim).eq(["file", "label"]) => {}
        Some((i, header)) => {
            return Err(FileError::at_line(
                path,
                i + 1,
                format!("expected the header `file,label`, found `{}`", header.trim()),
            ))
        }
        None => {
            return Err(FileError::new(
                path,
                "empty label file (expected the header `file,label`)",
            ))
        }
    }
    Ok(lines
        .map(
            |(i, l)| match l.split(',').map(str::trim).collect::<Vec<_>>().as_slice() {
                [file, class] if !file.is_empty() && !class.is_empty() => inside_the_data_set(
                    path,
                    i + 1,
                    Label {
                        line: i + 1,
                        file: file.to_string(),
                        class: class.to_string(),
                    },
                ),
                _ => Err(FileError::at_line(
                    path,
                    i + 1,
                    format!("expected `file,label`, found `{}`", l.trim()),
                )),
            },
        )
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn labels_that_leave_the_data_set_are_refused_line_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels.csv");
        std::fs::write(
            &path,
            "file,label\nok/a.dng,car\n../b.dng,car\n/etc/passwd,car\nsub/../../c.dng,car\n",
        )
        .unwrap();
        let rows = super::read_csv_labels(&path).unwrap();
        assert!(rows[0].is_ok());
        for (row, file) in rows[1..].iter().zip(["../b.dng", "/etc/passwd", "sub/../../c.dng"]) {
            let err = row.as_ref().unwrap_err().to_string();
            assert!(
                err.contains(file) && err.contains("inside the data set's folder"),
                "{err}"
            );
        }
        let stems = dir.path().join("labels.dat");
        std::fs::write(&stems, "a NEU\n../../etc/passwd NEU\n").unwrap();
        let rows = super::read_stem_labels(&stems).unwrap();
        assert!(rows[0].is_ok() && rows[1].is_err());
    }

    use super::*;

    #[test]
    fn stem_labels_parse_and_bad_lines_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels.dat");
        std::fs::write(&path, "a_1 LYT\n\n# comment\nb_2 NGS\nbroken\nc d e\n").unwrap();
        let labels = read_stem_labels(&path).unwrap();
        assert_eq!(labels.len(), 4);
        assert_eq!(
            labels[1].as_ref().unwrap(),
            &Label {
                line: 4,
                file: "b_2".into(),
                class: "NGS".into()
            }
        );
        let err = labels[2].as_ref().unwrap_err().to_string();
        assert!(
            err.contains("labels.dat: line 5") && err.contains("FILE_STEM CLASS"),
            "{err}"
        );
        assert!(labels[3].as_ref().unwrap_err().to_string().contains("line 6"));
    }

    #[test]
    fn csv_needs_its_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels.csv");
        std::fs::write(&path, "file,label\nx.tiff,cat\ny.tiff\n").unwrap();
        let labels = read_csv_labels(&path).unwrap();
        assert_eq!(labels[0].as_ref().unwrap().class, "cat");
        assert!(labels[1].as_ref().unwrap_err().to_string().contains("line 3"));
        std::fs::write(&path, "name,class\n").unwrap();
        let err = read_csv_labels(&path).unwrap_err().to_string();
        assert!(err.contains("line 1") && err.contains("file,label"), "{err}");
    }
}
