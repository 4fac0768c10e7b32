//! `plugins list`, `plugins lock`, `plugins inspect`, `plugin-env`.

use anyhow::{bail, Result};
use l2l_host::plugins::inspect::{describe_component, describe_refusals};
use l2l_host::plugins::Registry;
use l2l_host::trust::PluginLock;
use std::path::{Path, PathBuf};

/// `plugins list`: every component of every plugin found, then the refused files (an error).
pub fn list(plugin_dirs: &[PathBuf]) -> Result<()> {
    let registry = Registry::discover(plugin_dirs);
    println!(
        "{:<20} {:<11} {:<22} {:<8} FILE",
        "PLUGIN", "KIND", "COMPONENT", "VERSION"
    );
    for plugin in registry.plugins() {
        for c in &plugin.components {
            println!(
                "{:<20} {:<11} {:<22} {:<8} {}",
                plugin.name,
                c.kind.as_str(),
                c.name,
                plugin.version,
                plugin.file.display()
            );
        }
    }
    if registry.refused().is_empty() {
        Ok(())
    } else {
        bail!("{}", describe_refusals(registry.refused()))
    }
}

/// `plugins lock`: pin every plugin found (path and SHA-256).
pub fn lock(plugin_dirs: &[PathBuf], output: &Path) -> Result<()> {
    let registry = Registry::discover(plugin_dirs);
    if !registry.refused().is_empty() {
        bail!(
            "not locking while files are refused:\n{}",
            describe_refusals(registry.refused())
        );
    }
    let files: Vec<PathBuf> = registry.plugins().iter().map(|p| p.file.clone()).collect();
    PluginLock::write(output, &files)?;
    println!("locked {} plugin(s) in {}", files.len(), output.display());
    Ok(())
}

/// `plugins inspect NAME`.
pub fn inspect(plugin_dirs: &[PathBuf], name: &str) -> Result<()> {
    print!("{}", describe_component(&Registry::discover(plugin_dirs), name)?);
    Ok(())
}

/// `plugin-env`: shell exports for building a plugin against this host's libtorch.
pub fn build_env() -> Result<()> {
    let path = std::env::var("PATH").unwrap_or_default();
    let library_path = std::env::var("LD_LIBRARY_PATH").unwrap_or_default();
    for (name, value) in l2l_host::plugins::build_env::build_environment(&path, &library_path)? {
        println!("export {name}='{}'", value.replace('\'', "'\\''"));
    }
    Ok(())
}
