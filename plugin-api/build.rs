//! Links libtorch (see `link_libtorch.rs`) and records which libtorch this crate is built against, so
//! that a plugin built against another libtorch is refused by the host instead of corrupting memory.

#[path = "link_libtorch.rs"]
mod link_libtorch;

use std::path::Path;

/// Reads the PyTorch / libtorch version that sits beside the libtorch library directory.
fn libtorch_version(lib_dir: &Path) -> Option<String> {
    let root = lib_dir.parent()?;
    if let Ok(text) = std::fs::read_to_string(root.join("version.py")) {
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("__version__") {
                let version = rest.trim_start_matches([' ', '=']).trim().trim_matches(['\'', '"']);
                return Some(version.to_string());
            }
        }
    }
    std::fs::read_to_string(root.join("build-version"))
        .ok()
        .map(|v| v.trim().to_string())
}

fn main() {
    link_libtorch::main();
    // Tests build a plugin with an overridden tag to stand in for one built against another libtorch.
    println!("cargo:rerun-if-env-changed=L2L_LIBTORCH_VERSION_TAG");
    let version = match std::env::var("L2L_LIBTORCH_VERSION_TAG") {
        Ok(tag) if !tag.is_empty() => tag,
        _ => {
            let lib = std::env::var("DEP_TCH_LIBTORCH_LIB").unwrap_or_default();
            libtorch_version(Path::new(&lib)).unwrap_or_else(|| format!("unknown ({lib})"))
        }
    };
    println!("cargo:rustc-env=L2L_LIBTORCH_VERSION={version}");
}
