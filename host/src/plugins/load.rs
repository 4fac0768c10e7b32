//! Finding plugin files on the search path and loading one: a shared library, an l2l plugin, a
//! compatible plugin API and type layout, the same libtorch. Libraries are never unloaded.

use abi_stable::library::{lib_header_from_path, LibraryError, RootModule, ROOT_MODULE_LOADER_NAME_WITH_NUL};
use abi_stable::std_types::{RResult, RString};
use l2l_plugin_api::ffi::{ComponentInfo, PluginRootRef};
use l2l_plugin_api::{LIBTORCH_TAG, LIBTORCH_VERSION};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A plugin call's result as a Rust result with the plugin's message.
pub(super) fn into_result<T>(result: RResult<T, RString>) -> Result<T, String> {
    result.into_result().map_err(RString::into_string)
}

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
    pub(super) root: PluginRootRef,
}

/// A file that was found but not loaded, and why.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The file (or missing path).
    pub file: PathBuf,
    /// One short reason naming what was expected and what was found.
    pub reason: String,
}

/// A program's own plugin directories, when it is not `l2l-host` (the Python package: the checkout's
/// build folder); set once, before the first search.
static PROGRAM_DIRS: OnceLock<Vec<PathBuf>> = OnceLock::new();

/// Makes `dirs` the last entries of every search path instead of the running binary's folders, for
/// programs whose binary is not beside the plugins (the Python interpreter). Only the first call counts.
pub fn set_program_dirs(dirs: Vec<PathBuf>) {
    let _ = PROGRAM_DIRS.set(dirs);
}

/// The last entries of the search path: [`set_program_dirs`]'s, else `plugins/` next to the running
/// binary and the binary's own directory.
fn program_dirs() -> Vec<PathBuf> {
    if let Some(dirs) = PROGRAM_DIRS.get() {
        return dirs.clone();
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .map(|exe_dir| vec![exe_dir.join("plugins"), exe_dir])
        .unwrap_or_default()
}

/// The directories and files searched, in order, given the config's `plugin_dirs`, and how many of
/// the last entries are the program's own (searched quietly).
pub fn search_path(config_dirs: &[PathBuf]) -> (Vec<PathBuf>, usize) {
    let mut path: Vec<PathBuf> = config_dirs.to_vec();
    if let Some(value) = std::env::var_os(PLUGIN_PATH_VAR) {
        path.extend(std::env::split_paths(&value).filter(|p| !p.as_os_str().is_empty()));
    }
    let own = program_dirs();
    let count = own.len();
    path.extend(own);
    (path, count)
}

fn is_plugin_file_name(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.starts_with("libl2l_") && name.ends_with(std::env::consts::DLL_SUFFIX)
}

/// The plugin files an entry of the search path stands for; a missing explicit entry is refused.
pub(super) fn candidates(entry: &Path, is_default_dir: bool) -> Result<Vec<PathBuf>, Refusal> {
    if entry.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(entry)
            .map_err(|e| Refusal {
                file: entry.to_path_buf(),
                reason: format!("cannot read directory: {e}"),
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.is_file()
                    && p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.ends_with(std::env::consts::DLL_SUFFIX))
            })
            .collect();
        files.sort();
        let (plugins, others): (Vec<PathBuf>, Vec<PathBuf>) = files.into_iter().partition(|p| is_plugin_file_name(p));
        // a directory the user named: say once why its other libraries are not loaded
        if !is_default_dir && !others.is_empty() {
            let names: Vec<String> = others
                .iter()
                .filter_map(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned())
                .collect();
            tracing::warn!(
                "{}: skipped {} librar{} whose name does not start with `libl2l_` (a plugin is `libl2l_<name>{}`: set `[lib] name = \"l2l_<name>\"`): {}",
                entry.display(),
                names.len(),
                if names.len() == 1 { "y" } else { "ies" },
                std::env::consts::DLL_SUFFIX,
                names.join(", ")
            );
        }
        Ok(plugins)
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

/// The refusal of a library that is no plugin — most often one whose author forgot the export.
const NO_ROOT_MODULE: &str = "not an l2l plugin: expected an exported abi_stable root module, found none \
     (a plugin names its components once, in its lib.rs: `l2l_plugin_sdk::plugin! { stages: [...] }`)";

/// Short, one-line reasons for abi_stable's load errors (its own messages run to hundreds of lines).
fn summarize_library_error(err: &LibraryError) -> String {
    match err {
        LibraryError::OpenError { err, .. } => format!("not a loadable shared library ({err})"),
        LibraryError::GetSymbolError { .. } => NO_ROOT_MODULE.into(),
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
        return Err(refuse(NO_ROOT_MODULE.into()));
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
    (root.set_log_sink())(super::logging::sink(), root.plugin_name());
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
