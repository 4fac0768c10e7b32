//! What a third party's plugin build needs to link the libtorch this host was built against
//! (`l2l-host plugin-env`): tch's build finds it through the Python that has it — the cached venv —
//! or, for a plain libtorch folder, through `LIBTORCH`; the plugin's own test binaries find the
//! library through `LD_LIBRARY_PATH` (the host, which loads the plugin, has it loaded already).

use crate::cuda::LIBTORCH_LIB;
use anyhow::{anyhow, Result};
use std::path::Path;

/// `(variable, value)` pairs to export before `cargo build` or `cargo test` in a plugin's folder;
/// `path` and `library_path` are the current `PATH` and `LD_LIBRARY_PATH`, which the Python's folder
/// and libtorch's folder are put in front of.
pub fn build_environment(path: &str, library_path: &str) -> Result<Vec<(String, String)>> {
    let lib = Path::new(LIBTORCH_LIB);
    let library_path = ("LD_LIBRARY_PATH".to_string(), prepend(LIBTORCH_LIB, library_path));
    if let Some(venv) = lib.ancestors().find(|dir| dir.join("bin").join("python3").is_file()) {
        let bin = venv.join("bin");
        return Ok(vec![
            ("LIBTORCH_USE_PYTORCH".into(), "1".into()),
            ("PATH".into(), prepend(&bin.display().to_string(), path)),
            library_path,
        ]);
    }
    let root = lib
        .parent()
        .ok_or_else(|| anyhow!("libtorch folder {LIBTORCH_LIB} has no parent"))?;
    Ok(vec![("LIBTORCH".into(), root.display().to_string()), library_path])
}

/// `folder` in front of the search path `list` (`folder` alone when `list` is empty).
fn prepend(folder: &str, list: &str) -> String {
    if list.is_empty() {
        folder.to_string()
    } else {
        format!("{folder}:{list}")
    }
}
