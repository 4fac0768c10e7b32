//! Plugins: where they are found, how they are loaded and checked, and safe handles on the components
//! they build.
//!
//! Search order (first wins when two plugins offer the same component): the config's `plugin_dirs`,
//! then the entries of `L2L_PLUGIN_PATH` (`:`-separated), then `plugins/` next to the `l2l-host`
//! binary and the binary's own directory (where cargo puts the workspace's plugins). An entry is a
//! directory, searched for `libl2l_*.so`, or a plugin file. A file that cannot be used is *refused*
//! with a short reason; libraries are never unloaded.

use abi_stable::library::{lib_header_from_path, LibraryError, RootModule, ROOT_MODULE_LOADER_NAME_WITH_NUL};
use abi_stable::std_types::{RResult, RStr, RString, RVec};
use anyhow::{anyhow, bail, Result};
use l2l_plugin_api::ffi::{
    ComponentInfo, ComponentKind, DatasetBox, FfiDevice, FfiFloatKind, FfiNamedTensor, ModuleBox, PluginRootRef,
    RawMetadata,
};
use l2l_plugin_api::{TensorHandle, LIBTORCH_TAG, LIBTORCH_VERSION};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// The environment variable that adds plugin directories or files.
pub const PLUGIN_PATH_VAR: &str = "L2L_PLUGIN_PATH";

/// A plugin library that loaded and passed every check.
pub struct LoadedPlugin {
    /// The plugin's crate name.
    pub name: String,
    /// The plugin's crate version.
    pub version: String,
    /// Where it was loaded from.
    pub file: PathBuf,
    /// What it provides.
    pub components: Vec<ComponentInfo>,
    root: PluginRootRef,
}

/// A file that was found but not loaded, and why.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The file (or missing path).
    pub file: PathBuf,
    /// One short reason naming what was expected and what was found.
    pub reason: String,
}

/// Every plugin found on the search path.
#[derive(Default)]
pub struct Registry {
    plugins: Vec<LoadedPlugin>,
    refused: Vec<Refusal>,
    /// Where plugins were looked for, for "not found" errors.
    searched: Vec<PathBuf>,
}

/// The directories and files searched, in order, given the config's `plugin_dirs`.
pub fn search_path(config_dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut path: Vec<PathBuf> = config_dirs.to_vec();
    if let Some(value) = std::env::var_os(PLUGIN_PATH_VAR) {
        path.extend(std::env::split_paths(&value).filter(|p| !p.as_os_str().is_empty()));
    }
    if let Some(exe_dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        path.push(exe_dir.join("plugins"));
        path.push(exe_dir);
    }
    path
}

fn is_plugin_file_name(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.starts_with("libl2l_") && name.ends_with(std::env::consts::DLL_SUFFIX)
}

/// The plugin files an entry of the search path stands for; a missing explicit entry is refused.
fn candidates(entry: &Path, is_default_dir: bool) -> Result<Vec<PathBuf>, Refusal> {
    if entry.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(entry)
            .map_err(|e| Refusal {
                file: entry.to_path_buf(),
                reason: format!("cannot read directory: {e}"),
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && is_plugin_file_name(p))
            .collect();
        files.sort();
        Ok(files)
    } else if entry.exists() {
        Ok(vec![entry.to_path_buf()])
    } else if is_default_dir {
        Ok(Vec::new())
    } else {
        Err(Refusal {
            file: entry.to_path_buf(),
            reason: "no such file or directory (expected a plugin file or a directory of plugins)".into(),
        })
    }
}

/// Short, one-line reasons for abi_stable's load errors (its own messages run to hundreds of lines).
fn summarize_library_error(err: &LibraryError) -> String {
    match err {
        LibraryError::OpenError { err, .. } => format!("not a loadable shared library ({err})"),
        LibraryError::GetSymbolError { .. } => {
            "not an l2l plugin: expected an exported abi_stable root module, found none".into()
        }
        LibraryError::IncompatibleVersionNumber { expected_version, actual_version, .. } => format!(
            "plugin API version mismatch: expected l2l-plugin-api compatible with {expected_version}, found {actual_version}"
        ),
        LibraryError::AbiInstability(details) => {
            let text = details.to_string();
            let hint = text
                .lines()
                .map(str::trim)
                .find(|l| l.contains("field") || l.contains("Mismatched") || l.contains("mismatch"))
                .unwrap_or("")
                .chars()
                .take(160)
                .collect::<String>();
            format!(
                "plugin API type layout mismatch: expected the layouts of this host's l2l-plugin-api {}, found different ones{}",
                env!("CARGO_PKG_VERSION"),
                if hint.is_empty() { String::new() } else { format!(" ({hint})") }
            )
        }
        LibraryError::InvalidAbiHeader(header) => {
            format!("built with an incompatible abi_stable (header {header:?}); expected abi_stable 0.11")
        }
        LibraryError::InvalidCAbi { .. } => "built by a Rust compiler whose C ABI differs from this host's".into(),
        LibraryError::RootModule { err, .. } => format!("the plugin failed to initialise: {err}"),
        LibraryError::ParseVersionError(e) => format!("unreadable plugin API version: {e}"),
        LibraryError::Many(errors) => {
            errors.iter().next().map(summarize_library_error).unwrap_or_else(|| "unknown load error".into())
        }
    }
}

/// Loads one plugin file and checks it: a shared library, an l2l plugin, a compatible plugin API and
/// type layout, the same libtorch. The library stays loaded for the life of the process.
pub fn load_plugin(file: &Path) -> Result<LoadedPlugin, Refusal> {
    let refuse = |reason: String| Refusal {
        file: file.to_path_buf(),
        reason,
    };
    if !file.exists() {
        return Err(refuse("no such file (expected an l2l plugin library)".into()));
    }
    // A first look with libloading tells "not a library" and "a library but no plugin" apart without
    // abi_stable's layout machinery. The handle is leaked: plugins are never unloaded.
    // SAFETY: loading a library runs its initialisers; plugins are code the user chose to run.
    let library = unsafe { libloading::Library::new(file) }
        .map_err(|e| refuse(format!("not a loadable shared library ({e})")))?;
    // SAFETY: only the symbol's presence is checked; it is not dereferenced here.
    let has_root = unsafe { library.get::<*const u8>(ROOT_MODULE_LOADER_NAME_WITH_NUL.as_bytes()) }.is_ok();
    std::mem::forget(library);
    if !has_root {
        return Err(refuse(
            "not an l2l plugin: expected an exported abi_stable root module, found none".into(),
        ));
    }
    // `RootModule::load_from_file` caches one library per root-module type, so each file is loaded
    // through its own header instead.
    let header = lib_header_from_path(file).map_err(|e| refuse(summarize_library_error(&e)))?;
    // abi_stable lets 0.x versions with different minors pass to the layout check, whose message
    // would then be about layouts; the version is the clearer reason, so it is checked first.
    let ours = PluginRootRef::VERSION_STRINGS.version.as_str();
    let theirs = header.version_strings().version.as_str();
    if !api_versions_compatible(ours, theirs) {
        return Err(refuse(format!(
            "plugin API version mismatch: expected l2l-plugin-api compatible with {ours}, found {theirs}"
        )));
    }
    let root = header
        .init_root_module::<PluginRootRef>()
        .map_err(|e| refuse(summarize_library_error(&e)))?;
    if root.libtorch_tag() != LIBTORCH_TAG {
        return Err(refuse(format!(
            "libtorch mismatch: expected a plugin built against libtorch {LIBTORCH_VERSION}, found one built against {}",
            root.libtorch_version()
        )));
    }
    let components =
        into_result((root.components())()).map_err(|e| refuse(format!("listing components failed: {e}")))?;
    Ok(LoadedPlugin {
        name: root.plugin_name().to_string(),
        version: root.plugin_version().to_string(),
        file: file.to_path_buf(),
        components: components.into_vec(),
        root,
    })
}

/// Cargo's semver rule: the same major version, and for 0.x the same minor version too.
fn api_versions_compatible(ours: &str, theirs: &str) -> bool {
    let parse = |v: &str| -> Vec<u64> { v.split('.').take(2).map(|n| n.parse().unwrap_or(u64::MAX)).collect() };
    let (a, b) = (parse(ours), parse(theirs));
    match (a.first(), b.first()) {
        (Some(0), Some(0)) => a.get(1) == b.get(1),
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

fn into_result<T>(result: RResult<T, RString>) -> Result<T, String> {
    result.into_result().map_err(RString::into_string)
}

impl Registry {
    /// Loads every plugin on the search path built from the config's `plugin_dirs`.
    pub fn discover(config_dirs: &[PathBuf]) -> Registry {
        let path = search_path(config_dirs);
        let defaults_from = path.len().saturating_sub(2);
        let mut registry = Registry {
            searched: path.clone(),
            ..Registry::default()
        };
        let lock = match crate::trust::PluginLock::find() {
            Ok(lock) => lock,
            Err(err) => {
                registry.refused.push(Refusal {
                    file: PathBuf::from(crate::trust::DEFAULT_LOCK),
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
                    registry.refused.push(Refusal { file: file.clone(), reason });
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
                self.searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
                if installed.is_empty() { "none".to_string() } else { installed.join(", ") }
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

    /// Builds stage `kind` with its config (TOML text); `label` names it in errors.
    pub fn build_stage(&self, kind: &str, plugin: Option<&str>, config: &str, label: &str) -> Result<RemoteModule> {
        let (p, _) = self.find(ComponentKind::Stage, kind, plugin).map_err(|e| anyhow!("{label}: {e}"))?;
        let module = into_result((p.root.build_stage())(RStr::from_str(kind), RStr::from_str(config)))
            .map_err(|e| anyhow!("{label}: {e}"))?;
        Ok(RemoteModule {
            inner: module,
            label: format!("{label} (stage `{kind}` of plugin {})", p.name),
        })
    }

    /// Builds a task model for `num_classes` classes.
    pub fn build_task_model(
        &self,
        kind: &str,
        plugin: Option<&str>,
        config: &str,
        num_classes: usize,
        label: &str,
    ) -> Result<RemoteModule> {
        let (p, _) = self.find(ComponentKind::TaskModel, kind, plugin).map_err(|e| anyhow!("{label}: {e}"))?;
        let module = into_result((p.root.build_task_model())(
            RStr::from_str(kind),
            RStr::from_str(config),
            num_classes,
        ))
        .map_err(|e| anyhow!("{label}: {e}"))?;
        Ok(RemoteModule {
            inner: module,
            label: format!("{label} (task model `{kind}` of plugin {})", p.name),
        })
    }

    /// Opens a dataset.
    pub fn build_dataset(&self, kind: &str, plugin: Option<&str>, config: &str, label: &str) -> Result<RemoteDataset> {
        let (p, _) = self.find(ComponentKind::Dataset, kind, plugin).map_err(|e| anyhow!("{label}: {e}"))?;
        let dataset = into_result((p.root.build_dataset())(RStr::from_str(kind), RStr::from_str(config)))
            .map_err(|e| anyhow!("{label}: {e}"))?;
        Ok(RemoteDataset::new(
            dataset,
            format!("{label} (dataset `{kind}` of plugin {})", p.name),
        ))
    }
}

/// A parameter of a plugin module, shared with it: gradients computed in the host land on the plugin's
/// tensor and in-place updates from the host are what the plugin computes with.
pub struct SharedParameter {
    /// The parameter's name within its module.
    pub name: String,
    /// The plugin's tensor.
    pub tensor: Tensor,
    /// Whether the config asks for it to be learned.
    pub trainable: bool,
}

/// A stage or task model living in a plugin.
pub struct RemoteModule {
    inner: ModuleBox,
    label: String,
}

fn handle_to_tensor(handle: TensorHandle, label: &str) -> Result<Tensor> {
    handle.into_tensor().map_err(|e| anyhow!("{label}: {e}"))
}

impl RemoteModule {
    /// What the module is, for messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Runs the module on `input` (shared, not copied).
    pub fn forward(&mut self, input: &Tensor) -> Result<Tensor> {
        let output =
            into_result(self.inner.forward(TensorHandle::share(input))).map_err(|e| anyhow!("{}: {e}", self.label))?;
        handle_to_tensor(output, &self.label)
    }

    /// The module's parameters, shared with it. Fetch again after [`RemoteModule::to`].
    pub fn parameters(&self) -> Result<Vec<SharedParameter>> {
        let params = into_result(self.inner.parameters()).map_err(|e| anyhow!("{}: {e}", self.label))?;
        params
            .into_iter()
            .map(|p| {
                Ok(SharedParameter {
                    name: p.name.into_string(),
                    tensor: handle_to_tensor(p.tensor, &self.label)?,
                    trainable: p.trainable,
                })
            })
            .collect()
    }

    /// Switches train/eval behaviour.
    pub fn set_train(&mut self, train: bool) -> Result<()> {
        into_result(self.inner.set_train(train)).map_err(|e| anyhow!("{}: {e}", self.label))
    }

    /// Copies of every tensor needed to restore the module.
    pub fn state(&self) -> Result<Vec<(String, Tensor)>> {
        let state = into_result(self.inner.state()).map_err(|e| anyhow!("{}: {e}", self.label))?;
        state
            .into_iter()
            .map(|n| Ok((n.name.into_string(), handle_to_tensor(n.tensor, &self.label)?)))
            .collect()
    }

    /// Restores what [`RemoteModule::state`] returned.
    pub fn load_state(&mut self, state: Vec<(String, Tensor)>) -> Result<()> {
        let state: RVec<FfiNamedTensor> = state
            .into_iter()
            .map(|(name, t)| FfiNamedTensor {
                name: name.into(),
                tensor: TensorHandle::new(t),
            })
            .collect();
        into_result(self.inner.load_state(state)).map_err(|e| anyhow!("{}: {e}", self.label))
    }

    /// Tells the module the camera metadata of the samples of the next batches (one per sample).
    pub fn set_camera(&mut self, cameras: &[RawMetadata]) -> Result<()> {
        into_result(self.inner.set_camera(cameras.iter().copied().collect()))
            .map_err(|e| anyhow!("{}: {e}", self.label))
    }

    /// `Some(r)` when the module's output row `i` depends on input rows `i − r ..= i + r` only, so
    /// it may run on horizontal bands of an image ([`crate::bands`]).
    pub fn row_reach(&self) -> Result<Option<usize>> {
        let reach = into_result(self.inner.row_reach()).map_err(|e| anyhow!("{}: {e}", self.label))?;
        Ok(Option::from(reach).map(|r: u64| r as usize))
    }

    /// Moves the module's tensors to `device` in float `kind` (`Kind::Float` or `Kind::Double`).
    pub fn to(&mut self, device: Device, kind: Kind) -> Result<()> {
        let cuda_index = match device {
            Device::Cpu => -1,
            Device::Cuda(i) => i as i64,
            other => bail!("{}: unsupported device {other:?}", self.label),
        };
        let kind = match kind {
            Kind::Float => FfiFloatKind::Float32,
            Kind::Double => FfiFloatKind::Float64,
            other => bail!("{}: parameters are float32 or float64, not {other:?}", self.label),
        };
        into_result(self.inner.to(FfiDevice { cuda_index }, kind)).map_err(|e| anyhow!("{}: {e}", self.label))
    }
}

/// One sample from a plugin dataset.
pub struct RawSample {
    /// H×W mosaic in [0, 1].
    pub raw: Tensor,
    /// Class index or mask.
    pub target: Tensor,
    /// Camera parameters.
    pub metadata: RawMetadata,
}

/// A dataset living in a plugin; what it says about itself is read once, when it is opened.
pub struct RemoteDataset {
    inner: DatasetBox,
    label: String,
    len: usize,
    class_names: Option<Vec<String>>,
    labels: Option<Vec<usize>>,
    warnings: Vec<String>,
}

impl RemoteDataset {
    fn new(inner: DatasetBox, label: String) -> Self {
        let info = inner.info();
        let class_names: Option<Vec<String>> = info
            .class_names
            .into_option()
            .map(|names| names.into_iter().map(RString::into_string).collect());
        let labels = (class_names.is_some() && info.labels.len() == info.len)
            .then(|| info.labels.iter().map(|&l| l as usize).collect());
        Self {
            inner,
            label,
            len: info.len,
            class_names,
            labels,
            warnings: info.warnings.into_iter().map(RString::into_string).collect(),
        }
    }

    /// Who this dataset is, for messages.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the dataset has no samples.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Class names (classification) or `None` (segmentation).
    pub fn class_names(&self) -> Option<&[String]> {
        self.class_names.as_deref()
    }

    /// The class of every sample (classification): from the plugin when it knows them without
    /// decoding, else read from every sample's target.
    pub fn labels(&self) -> Result<Option<Vec<usize>>> {
        if self.class_names.is_none() {
            return Ok(None);
        }
        if let Some(labels) = &self.labels {
            return Ok(Some(labels.clone()));
        }
        (0..self.len)
            .map(|i| Ok(self.sample(i)?.target.f_int64_value(&[])? as usize))
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    /// What the dataset skipped or noticed while opening.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The sample at `index`.
    pub fn sample(&self, index: usize) -> Result<RawSample> {
        let sample =
            into_result(self.inner.sample(index)).map_err(|e| anyhow!("{}: sample {index}: {e}", self.label))?;
        Ok(RawSample {
            raw: handle_to_tensor(sample.raw, &self.label)?,
            target: handle_to_tensor(sample.target, &self.label)?,
            metadata: sample.metadata,
        })
    }
}

/// Renders a refusal list for people: one line per file.
pub fn describe_refusals(refused: &[Refusal]) -> String {
    refused
        .iter()
        .map(|r| format!("refused {}: {}", r.file.display(), r.reason))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::api_versions_compatible;

    #[test]
    fn plugin_api_versions_follow_cargo_semver() {
        assert!(api_versions_compatible("0.1.0", "0.1.7"));
        assert!(!api_versions_compatible("0.1.0", "0.2.0"));
        assert!(api_versions_compatible("1.2.0", "1.0.3"));
        assert!(!api_versions_compatible("1.2.0", "2.0.0"));
        assert!(!api_versions_compatible("0.1.0", "garbage"));
    }
}
