//! What a third party's plugin build needs to link the libtorch this host was built against
//! (`l2l-host plugin-env`): tch's build finds it through the Python that has it — the cached venv —
//! or, for a plain libtorch folder, through `LIBTORCH`.

use crate::cuda::LIBTORCH_LIB;
use anyhow::{anyhow, Result};
use std::path::Path;

/// `(variable, value)` pairs to export before `cargo build` in a plugin's folder; `path` is the
/// current `PATH`, which the Python's folder is put in front of.
pub fn build_environment(path: &str) -> Result<Vec<(String, String)>> {
    let lib = Path::new(LIBTORCH_LIB);
    if let Some(venv) = lib.ancestors().find(|dir| dir.join("bin").join("python3").is_file()) {
        let bin = venv.join("bin");
        return Ok(vec![
            ("LIBTORCH_USE_PYTORCH".into(), "1".into()),
            ("PATH".into(), format!("{}:{path}", bin.display())),
        ]);
    }
    let root = lib
        .parent()
        .ok_or_else(|| anyhow!("libtorch folder {LIBTORCH_LIB} has no parent"))?;
    Ok(vec![("LIBTORCH".into(), root.display().to_string())])
}
