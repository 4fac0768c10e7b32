//! What the loaders share about bad files: fail on the first one, or (with `skip_invalid`) drop it,
//! keep a warning, and report the count; and decoding many files on every core.

use crate::files::{FileError, FileResult};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The `skip_invalid` policy: per-file errors either stop the loader or become warnings.
#[derive(Debug)]
pub struct InvalidFiles {
    skip_invalid: bool,
    skipped: Vec<FileError>,
}

impl InvalidFiles {
    /// Fails on the first bad file unless `skip_invalid`.
    pub fn new(skip_invalid: bool) -> Self {
        Self {
            skip_invalid,
            skipped: Vec::new(),
        }
    }

    /// The value, `None` for a skipped bad file, or the error when bad files are not skipped.
    pub fn check<T>(&mut self, result: FileResult<T>) -> FileResult<Option<T>> {
        match result {
            Ok(value) => Ok(Some(value)),
            Err(err) if self.skip_invalid => {
                self.skipped.push(err);
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }

    /// One warning per skipped file, then the count, for the dataset to hand to the host.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings: Vec<String> = self.skipped.iter().map(|e| format!("skipped: {e}")).collect();
        if !warnings.is_empty() {
            warnings.push(format!(
                "skipped {} invalid file(s) or line(s) (skip_invalid = true)",
                self.skipped.len()
            ));
        }
        warnings
    }
}

/// `decode` applied to every item on all cores, results in the items' order.
pub fn decode_in_parallel<T: Sync, R: Send>(items: &[T], decode: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len().max(1));
    let next = AtomicUsize::new(0);
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break done };
                        done.push((i, decode(item)));
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap_or_default()).collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn skipping_turns_errors_into_counted_warnings() {
        let bad = || Err::<u8, _>(FileError::new(Path::new("x.tiff"), "truncated"));
        assert!(InvalidFiles::new(false).check(bad()).is_err());
        let mut lenient = InvalidFiles::new(true);
        assert_eq!(lenient.check(bad()).unwrap(), None);
        assert_eq!(lenient.check(Ok(3)).unwrap(), Some(3));
        let warnings = lenient.warnings();
        assert_eq!(warnings.len(), 2);
        assert!(warnings[0].contains("x.tiff: truncated"));
        assert!(warnings[1].contains("skipped 1"));
    }

    #[test]
    fn parallel_decode_keeps_order() {
        let items: Vec<u32> = (0..100).collect();
        assert_eq!(
            decode_in_parallel(&items, |i| i * 2),
            items.iter().map(|i| i * 2).collect::<Vec<_>>()
        );
    }
}
