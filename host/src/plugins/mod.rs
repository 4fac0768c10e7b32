//! Plugins: where they are found, how they are loaded and checked, and safe handles on the components
//! they build.
//!
//! Search order (first wins when two plugins offer the same component): the config's `plugin_dirs`,
//! then the entries of `L2L_PLUGIN_PATH` (`:`-separated), then `plugins/` next to the `l2l-host`
//! binary and the binary's own directory (where cargo puts the workspace's plugins; the Python package
//! names its checkout's build folder instead, `set_program_dirs`). An entry is a
//! directory, searched for `libl2l_*.so`, or a plugin file. A file that cannot be used is *refused*
//! with a short reason; libraries are never unloaded.
//!
//! This file holds the registry (discovery, lookup, building components); `load` finds and checks
//! plugin files, `remote` wraps what plugins build, `inspect` describes components for people.

pub mod build_env;
pub mod inspect;
mod load;
mod logging;
mod remote;

pub use load::{load_plugin, search_path, set_program_dirs, LoadedPlugin, Refusal, PLUGIN_PATH_VAR};
pub use remote::{RawSample, RemoteDataset, RemoteModule, SharedParameter};

use abi_stable::std_types::RStr;
use anyhow::{anyhow, bail, Result};
use l2l_plugin_api::ffi::{ComponentInfo, ComponentKind};
use load::{candidates, into_result};
use std::path::PathBuf;

/// Every plugin found on the search path.
#[derive(Default)]
pub struct Registry {
    plugins: Vec<LoadedPlugin>,
    refused: Vec<Refusal>,
    /// Where plugins were looked for, for "not found" errors.
    searched: Vec<PathBuf>,
}

/// The component config that crosses the ABI: its table as TOML text.
fn config_text(config: &toml::Table) -> Result<String> {
    Ok(toml::to_string(config)?)
}

impl Registry {
    /// Loads every plugin on the search path built from the config's `plugin_dirs`.
    pub fn discover(config_dirs: &[PathBuf]) -> Registry {
        let (path, own) = search_path(config_dirs);
        let defaults_from = path.len() - own;
        let mut registry = Registry {
            searched: path.clone(),
            ..Registry::default()
        };
        let lock = match crate::trust::PluginLock::find() {
            Ok(lock) => lock,
            Err(err) => {
                registry.refused.push(Refusal {
                    file: crate::trust::PluginLock::location(),
                    reason: format!("{err:#}; no plugin is loaded without a readable lock"),
                });
                return registry;
            }
        };
        let mut seen: Vec<PathBuf> = Vec::new();
        for (index, entry) in path.iter().enumerate() {
            let files = match candidates(entry, index >= defaults_from) {
                Ok(files) => files,
                Err(refusal) => {
                    tracing::warn!("plugin directory {}: {}", refusal.file.display(), refusal.reason);
                    registry.refused.push(refusal);
                    continue;
                }
            };
            for file in files {
                let canonical = file.canonicalize().unwrap_or_else(|_| file.clone());
                if seen.contains(&canonical) {
                    continue;
                }
                seen.push(canonical);
                let trusted = crate::trust::check_permissions(&file)
                    .and_then(|()| lock.as_ref().map_or(Ok(()), |lock| lock.check(&file)));
                if let Err(reason) = trusted {
                    tracing::warn!(file = %file.display(), "plugin refused: {reason}");
                    registry.refused.push(Refusal {
                        file: file.clone(),
                        reason,
                    });
                    continue;
                }
                match load_plugin(&file) {
                    Ok(plugin) if registry.plugins.iter().any(|p| p.name == plugin.name) => {
                        tracing::info!(plugin = %plugin.name, file = %file.display(), "shadowed by an earlier plugin of the same name");
                    }
                    Ok(plugin) => {
                        tracing::debug!(plugin = %plugin.name, file = %file.display(), "loaded plugin");
                        registry.plugins.push(plugin);
                    }
                    Err(refusal) => {
                        tracing::warn!(file = %refusal.file.display(), "plugin refused: {}", refusal.reason);
                        registry.refused.push(refusal);
                    }
                }
            }
        }
        registry
    }

    /// The plugins that loaded, in search order.
    pub fn plugins(&self) -> &[LoadedPlugin] {
        &self.plugins
    }

    /// The files that were refused.
    pub fn refused(&self) -> &[Refusal] {
        &self.refused
    }

    /// Finds the plugin offering component `name` of `kind` (from plugin `plugin` if given).
    pub fn find(
        &self,
        kind: ComponentKind,
        name: &str,
        plugin: Option<&str>,
    ) -> Result<(&LoadedPlugin, &ComponentInfo)> {
        for p in self.plugins.iter().filter(|p| plugin.is_none_or(|want| want == p.name)) {
            if let Some(c) = p.components.iter().find(|c| c.kind == kind && c.name.as_str() == name) {
                return Ok((p, c));
            }
        }
        if let Some(wanted) = plugin.filter(|want| !self.plugins.iter().any(|p| p.name == *want)) {
            let installed: Vec<&str> = self.plugins.iter().map(|p| p.name.as_str()).collect();
            bail!(
                "plugin `{wanted}` is not installed (searched {}; installed: {})",
                self.searched
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                if installed.is_empty() {
                    "none".to_string()
                } else {
                    installed.join(", ")
                }
            );
        }
        let mut available: Vec<String> = self
            .plugins
            .iter()
            .flat_map(|p| {
                p.components
                    .iter()
                    .filter(|c| c.kind == kind)
                    .map(|c| c.name.to_string())
            })
            .collect();
        available.sort();
        available.dedup();
        let from = plugin.map(|p| format!(" in plugin `{p}`")).unwrap_or_default();
        let mut message = format!(
            "unknown {} `{name}`{from}; available: {}",
            kind.as_str(),
            if available.is_empty() {
                "none".to_string()
            } else {
                available.join(", ")
            }
        );
        if !self.refused.is_empty() {
            let refused: Vec<String> = self
                .refused
                .iter()
                .map(|r| format!("{} ({})", r.file.display(), r.reason))
                .collect();
            message.push_str(&format!("; refused plugin files: {}", refused.join("; ")));
        }
        Err(anyhow!(message))
    }
    /// Builds stage `kind` with its config; `label` names it in errors.
    pub fn build_stage(
        &self,
        kind: &str,
        plugin: Option<&str>,
        config: &toml::Table,
        label: &str,
    ) -> Result<RemoteModule> {
        let (p, info) = self
            .find(ComponentKind::Stage, kind, plugin)
            .map_err(|e| anyhow!("{label}: {e}"))?;
        let config = config_text(config)?;
        let module = into_result((p.root.build_stage())(RStr::from_str(kind), RStr::from_str(&config)))
            .map_err(|e| anyhow!("{label}: {e}"))?;
        Ok(RemoteModule::new(
            module,
            format!("{label} (stage `{kind}` of plugin {})", p.name),
            info,
        ))
    }

    /// Builds a task model for `num_classes` classes.
    pub fn build_task_model(
        &self,
        kind: &str,
        plugin: Option<&str>,
        config: &toml::Table,
        num_classes: usize,
        label: &str,
    ) -> Result<RemoteModule> {
        let (p, info) = self
            .find(ComponentKind::TaskModel, kind, plugin)
            .map_err(|e| anyhow!("{label}: {e}"))?;
        let config = config_text(config)?;
        let module = into_result((p.root.build_task_model())(
            RStr::from_str(kind),
            RStr::from_str(&config),
            num_classes,
        ))
        .map_err(|e| anyhow!("{label}: {e}"))?;
        Ok(RemoteModule::new(
            module,
            format!("{label} (task model `{kind}` of plugin {})", p.name),
            info,
        ))
    }

    /// Opens a dataset.
    pub fn build_dataset(
        &self,
        kind: &str,
        plugin: Option<&str>,
        config: &toml::Table,
        label: &str,
    ) -> Result<RemoteDataset> {
        let (p, _) = self
            .find(ComponentKind::Dataset, kind, plugin)
            .map_err(|e| anyhow!("{label}: {e}"))?;
        let config = config_text(config)?;
        let dataset = into_result((p.root.build_dataset())(RStr::from_str(kind), RStr::from_str(&config)))
            .map_err(|e| anyhow!("{label}: {e}"))?;
        Ok(RemoteDataset::new(
            dataset,
            format!("{label} (dataset `{kind}` of plugin {})", p.name),
        ))
    }
}
