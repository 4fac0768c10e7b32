//! Helpers for the end-to-end tests: where the built host and plugins are, running the host binary,
//! and building plugins out of tree (a copy of the template, optionally against a modified plugin
//! API) with cargo, the way a third party would.
//!
//! The tests use what `cargo build --workspace` produced (the README's test command builds first).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// The cargo target directory the tests run from (`target/`), found from the test binary itself.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test binary>
    exe.ancestors()
        .nth(3)
        .expect("test binary inside target/<profile>/deps")
        .to_path_buf()
}

/// The profile directory (`target/debug`) holding `l2l-host` and the plugins.
pub fn profile_dir() -> PathBuf {
    std::env::current_exe()
        .expect("test binary path")
        .ancestors()
        .nth(2)
        .expect("profile dir")
        .to_path_buf()
}

/// A built file in the profile directory, with a clear message if the workspace was not built.
pub fn built(name: &str) -> PathBuf {
    let path = profile_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` before the tests",
        path.display()
    );
    path
}

/// The built `l2l-host` binary.
pub fn host_binary() -> PathBuf {
    built("l2l-host")
}

/// A built plugin library by its library name (`l2l_isp_core` → `libl2l_isp_core.so`).
pub fn plugin_library(lib_name: &str) -> PathBuf {
    built(&format!("lib{lib_name}{}", std::env::consts::DLL_SUFFIX))
}

/// Copies the test-only plugin into `dir` under a plugin file name, so the host discovers it there.
pub fn install_testkit(dir: &Path) -> PathBuf {
    let dest = dir.join(format!("libl2l_testkit{}", std::env::consts::DLL_SUFFIX));
    std::fs::copy(plugin_library("testkit_plugin"), &dest).expect("copying the testkit plugin");
    dest
}

/// `dir/plugins`, holding the testkit plugin: the plugin directory configs name as `plugins`.
pub fn plugins_with_testkit(dir: &Path) -> PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).expect("creating the plugin directory");
    install_testkit(&plugins);
    plugins
}

/// Runs `l2l-host` with `args`, plugin search restricted to `plugin_path` when given.
pub fn run_host(args: &[&str], plugin_path: Option<&Path>, cwd: &Path) -> Output {
    let mut command = Command::new(host_binary());
    command.args(args).current_dir(cwd).env_remove("L2L_PLUGIN_PATH");
    if let Some(path) = plugin_path {
        command.env("L2L_PLUGIN_PATH", path);
    }
    command.output().expect("running l2l-host")
}

/// Where out-of-tree plugins are built: beside the workspace's own builds, not among them, so the
/// host's default plugin directory never sees a test's deliberately broken plugin.
pub fn out_of_tree_target_dir() -> PathBuf {
    target_dir().join("out-of-tree")
}

/// Runs `l2l-host process CONFIG --input RAW --output OUTPUT EXTRA...` (see [`run_host`]).
pub fn run_process(
    config: &Path,
    raw: &Path,
    output: &str,
    extra: &[&str],
    plugin_path: Option<&Path>,
    cwd: &Path,
) -> Output {
    let (config, raw) = (config.to_string_lossy(), raw.to_string_lossy());
    // the tests compare outputs written to one name in turn: each replaces the last
    let mut args = vec!["process", &config, "--input", &raw, "--output", output, "--force"];
    args.extend_from_slice(extra);
    run_host(&args, plugin_path, cwd)
}

/// Cargo builds out of tree are serialised: they share one target directory.
static EXTERNAL_BUILD: Mutex<()> = Mutex::new(());

/// A plugin API to build against: the workspace's own, or a copy changed by `edit(dir)`.
pub enum ApiVariant<'a> {
    /// `plugin-api/` and the SDK as they are.
    Unchanged,
    /// Copies of `plugin-api/` and the SDK crates in a temporary directory (at their workspace paths
    /// under it, which the closure gets), modified by the closure.
    Modified(&'a dyn Fn(&Path)),
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("creating a copy directory");
    for entry in std::fs::read_dir(from).expect("reading a directory to copy") {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copying a file");
        }
    }
}

/// The copied plugin API inherits version, edition and dependencies from a workspace, as the original
/// does: a copy of the root manifest with the copy as its only member.
/// The plugin SDK's folder in the workspace (what the template names).
const SDK: &str = "crates/plugin-sdk";

/// What a modified plugin API's copy holds: the interface, the SDK over it, the SDK's macros.
const COPIED_CRATES: [&str; 3] = ["plugin-api", SDK, "crates/plugin-sdk-derive"];

fn write_copy_workspace(root: &Path, work: &Path) {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("workspace manifest");
    let start = manifest.find("members = [").expect("workspace members");
    let end = start + manifest[start..].find(']').expect("end of members") + 1;
    let text = format!("{}members = {COPIED_CRATES:?}{}", &manifest[..start], &manifest[end..]);
    // workspace crates other than the copied ones are not in the copy
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("l2l-"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(work.join("Cargo.toml"), text).expect("writing the copy's workspace manifest");
}

/// The environment `l2l-host plugin-env` prints for building a plugin (its `export NAME='VALUE'` lines).
pub fn plugin_build_env() -> Vec<(String, String)> {
    let output = Command::new(host_binary())
        .arg("plugin-env")
        .output()
        .expect("running l2l-host plugin-env");
    assert!(output.status.success(), "{}", describe(&output));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let (name, value) = line
                .strip_prefix("export ")
                .and_then(|l| l.split_once('='))
                .unwrap_or_else(|| panic!("not an export: {line}"));
            (name.to_string(), value.trim_matches('\'').replace("'\\''", "'"))
        })
        .collect()
}

/// A copy of the stage template in `work/stage-plugin`, against `api`, with the workspace's
/// `Cargo.lock`; returns its manifest. A modified plugin API gets no test helpers (they link the
/// workspace's own API): only the plugin is built then.
fn prepare_template(work: &Path, api: ApiVariant<'_>) -> PathBuf {
    let root = workspace_root();
    let (sdk_dir, with_tests) = match api {
        ApiVariant::Unchanged => (root.join(SDK), true),
        ApiVariant::Modified(edit) => {
            // the interface, the SDK over it and its macros, at the same relative paths
            for crate_dir in COPIED_CRATES {
                copy_dir(&root.join(crate_dir), &work.join(crate_dir));
            }
            write_copy_workspace(&root, work);
            edit(work);
            (work.join(SDK), false)
        }
    };
    let project = work.join("stage-plugin");
    copy_dir(&root.join("templates/stage-plugin"), &project);
    let manifest = project.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).expect("template manifest");
    let mut replaced = text
        .replace(
            &format!("path = \"../../{SDK}\""),
            &format!("path = {:?}", sdk_dir.display().to_string()),
        )
        .replace(
            "path = \"../../crates/ops\"",
            &format!("path = {:?}", root.join("crates/ops").display().to_string()),
        );
    assert!(
        text != replaced && replaced.contains(&root.join("crates/ops").display().to_string()),
        "the template no longer names its l2l paths"
    );
    if !with_tests {
        let start = replaced
            .find("[dev-dependencies]")
            .expect("the template's dev-dependencies");
        let end = start
            + replaced[start..]
                .find("\n[workspace]")
                .expect("the template's [workspace]");
        replaced.replace_range(start..end, "");
        std::fs::remove_dir_all(project.join("tests")).expect("removing the template's tests");
    }
    std::fs::write(&manifest, replaced).expect("writing the template manifest");
    // Same dependency versions as the workspace, so one set of dependency builds serves every variant.
    std::fs::copy(root.join("Cargo.lock"), project.join("Cargo.lock")).expect("copying Cargo.lock");
    manifest
}

/// `cargo SUBCOMMAND` on the template copy `manifest`, with the environment `l2l-host plugin-env`
/// prints, then `env`.
fn cargo_on_template(subcommand: &str, manifest: &Path, env: &[(&str, &str)]) -> Output {
    let _serial = EXTERNAL_BUILD.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .arg(subcommand)
        .arg("--manifest-path")
        .arg(manifest)
        .env("CARGO_TARGET_DIR", out_of_tree_target_dir());
    command.env_remove("LIBTORCH_USE_PYTORCH").env_remove("LIBTORCH");
    for (key, value) in plugin_build_env() {
        command.env(key, value);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("running cargo")
}

/// Builds the stage template as a third party would, in `work` (a temporary directory), against
/// `api`, with extra environment `env`; returns the built plugin file, renamed `libl2l_<tag>.so`.
pub fn build_template(work: &Path, api: ApiVariant<'_>, env: &[(&str, &str)], tag: &str) -> PathBuf {
    let manifest = prepare_template(work, api);
    let output = cargo_on_template("build", &manifest, env);
    assert!(
        output.status.success(),
        "building the template failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let built = out_of_tree_target_dir()
        .join("debug")
        .join(format!("libl2l_exposure{}", std::env::consts::DLL_SUFFIX));
    let dest_dir = work.join("plugins");
    std::fs::create_dir_all(&dest_dir).expect("plugin dir");
    let dest = dest_dir.join(format!("libl2l_{tag}{}", std::env::consts::DLL_SUFFIX));
    std::fs::copy(&built, &dest).expect("copying the built template");
    dest
}

/// Runs the template's own tests (`cargo test` in a copy of it, out of tree), as its author would.
pub fn test_template(work: &Path) -> Output {
    let manifest = prepare_template(work, ApiVariant::Unchanged);
    cargo_on_template("test", &manifest, &[])
}

/// Stdout and stderr of a host run, for assertion messages.
pub fn describe(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A component config written as TOML text, as a table (what the registry builds components from).
pub fn table(text: &str) -> toml::Table {
    text.parse()
        .unwrap_or_else(|e| panic!("test config `{text}` does not parse: {e}"))
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("writing a test config");
    path
}

/// A small training config: 64 synthetic cells of 64², ResNet-18, CPU, in processing `mode` (the
/// parametrized pipeline for `parametrized`, a static one otherwise), `epochs` epochs, plus `extra`
/// lines of `[job]`.
pub fn cells_config(mode: &str, epochs: usize, extra: &str) -> String {
    let pipelines = workspace_root().join("configs/pipelines");
    let include = if mode == "parametrized" {
        "parametrized.toml"
    } else {
        "bilinear_sharpening_filter_median_denoising.toml"
    };
    format!(
        "include = [{:?}]\ndevice = \"cpu\"\nthreads = 2\n\n[dataset]\nkind = \"synthetic\"\ntask = \"cells\"\ncount = 64\nsize = 64\n\n\
         [task_model]\nkind = \"resnet\"\ndepth = 18\n\n[job]\nkind = \"train\"\nmode = \"{mode}\"\nepochs = {epochs}\nbatch_size = 8\n\
         train_size = 0.75\nworkers = 2\n{extra}",
        pipelines.join(include)
    )
}

/// The rows of a run's `metrics.jsonl`.
pub fn metrics(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .expect("reading metrics.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a metrics row"))
        .collect()
}

/// The last value of metric `name` on `split` in a run's metrics.
pub fn last_value(run: &Path, split: &str, name: &str) -> f64 {
    metrics(run)
        .iter()
        .rev()
        .find(|r| r["split"] == split)
        .and_then(|r| r["values"][name].as_f64())
        .unwrap_or_else(|| panic!("no {split} {name} in {}", run.display()))
}

/// Runs `l2l-host ARGS` in `cwd`, asserts success and returns the run directory it reports.
pub fn run_ok(args: &[&str], cwd: &Path) -> PathBuf {
    let out = run_host(args, None, cwd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", describe(&out));
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("run finished: "))
        .unwrap_or_else(|| panic!("no `run finished:` line\n{}", describe(&out)));
    cwd.join(line)
}

/// Asserts that two runs recorded the same metrics (to 1e-6), row by row.
pub fn assert_same_metrics(a: &Path, b: &Path) {
    let (a, b) = (metrics(a), metrics(b));
    assert_eq!(a.len(), b.len(), "metric rows");
    for (x, y) in a.iter().zip(&b) {
        for (name, value) in x["values"].as_object().expect("metric values") {
            let other = y["values"][name].as_f64().expect("the same metric in both runs");
            assert!(
                (value.as_f64().expect("a number") - other).abs() < 1e-6,
                "{name}: {value} vs {other}"
            );
        }
    }
}

/// Writes an H×W float32 `.npy` raw file.
pub fn write_npy_f32(path: &Path, h: u64, w: u64, values: impl Iterator<Item = f32>) {
    use npyz::WriterBuilder;
    let file = std::fs::File::create(path).expect("creating a .npy file");
    let mut writer = npyz::WriteOptions::<f32>::new()
        .default_dtype()
        .shape(&[h, w])
        .writer(file)
        .begin_nd()
        .expect("a .npy header");
    writer.extend(values).expect("writing .npy values");
    writer.finish().expect("finishing a .npy file");
}
