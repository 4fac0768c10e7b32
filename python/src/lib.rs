//! `l2l._l2l`: the native half of the `l2l` Python package. It reuses the host library for
//! everything — plugin discovery and trust checks (`Registry`), config loading and overrides
//! (`config::load`), stage building and the stage contract (`Pipeline`), data sets (`datasets::open`),
//! checkpoints — and only converts between Python values and the host's types. Tensors cross as the
//! same libtorch tensors (pyo3-tch), so autograd graphs, parameters and storage are shared with
//! PyTorch. The torch modules themselves are written in Python (`l2l/__init__.py`).

mod convert;
mod dataset;
mod pipeline;
mod task_model;

use l2l_host::plugins::inspect::kind_word;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::path::PathBuf;

create_exception!(
    l2l,
    L2LError,
    PyException,
    "An error of l2l (config, plugin, stage contract, data), with the one-line message `l2l-host` prints."
);

/// An anyhow error as [`L2LError`], its context chain on one line as `l2l-host` prints it.
pub(crate) fn to_py(err: anyhow::Error) -> PyErr {
    L2LError::new_err(format!("{err:#}"))
}

/// Where `make build` puts the workspace's plugins in the checkout this package was built from: the
/// interpreter's folder (the host's default) holds none.
const CHECKOUT_PLUGINS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/debug");

/// The libtorch version this package (and every plugin it may load) was built against, for the
/// import-time check against `torch.__version__`.
#[pyfunction]
fn libtorch_version() -> &'static str {
    l2l_plugin_api::LIBTORCH_VERSION
}

/// Every component of every plugin found (what `l2l-host plugins list` prints, and what each stage
/// takes and gives); refused plugin files raise, as they make that command fail.
#[pyfunction]
#[pyo3(signature = (plugin_dirs = Vec::new()))]
fn plugins(py: Python<'_>, plugin_dirs: Vec<PathBuf>) -> PyResult<Vec<Bound<'_, PyDict>>> {
    let registry = l2l_host::plugins::Registry::discover(&plugin_dirs);
    if !registry.refused().is_empty() {
        return Err(L2LError::new_err(l2l_host::plugins::inspect::describe_refusals(
            registry.refused(),
        )));
    }
    let mut rows = Vec::new();
    for plugin in registry.plugins() {
        for component in &plugin.components {
            let row = PyDict::new(py);
            row.set_item("plugin", &plugin.name)?;
            row.set_item("kind", component.kind.as_str())?;
            row.set_item("component", component.name.as_str())?;
            row.set_item("version", &plugin.version)?;
            row.set_item("takes", kind_word(component.input))?;
            row.set_item("gives", kind_word(component.output))?;
            row.set_item("file", &plugin.file)?;
            rows.push(row);
        }
    }
    Ok(rows)
}

#[pymodule]
fn _l2l(m: &Bound<'_, PyModule>) -> PyResult<()> {
    l2l_host::console::init_logging(0, false);
    let checkout_plugins = PathBuf::from(CHECKOUT_PLUGINS);
    l2l_host::plugins::set_program_dirs(vec![checkout_plugins.canonicalize().unwrap_or(checkout_plugins)]);
    m.add("L2LError", m.py().get_type::<L2LError>())?;
    m.add_function(wrap_pyfunction!(libtorch_version, m)?)?;
    m.add_function(wrap_pyfunction!(plugins, m)?)?;
    m.add_class::<pipeline::NativePipeline>()?;
    m.add_class::<dataset::NativeDataset>()?;
    m.add_class::<task_model::NativeTaskModel>()?;
    Ok(())
}
