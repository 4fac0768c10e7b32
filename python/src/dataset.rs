//! A config's data set, opened by its plugin through the host (`l2l_host::data::datasets::open`), read
//! sample by sample from Python.

use crate::convert::{camera_dict, override_assignments};
use crate::to_py;
use l2l_host::config;
use l2l_host::plugins::{Registry, RemoteDataset};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3_tch::PyTensor;
use std::path::PathBuf;

/// An opened data set.
#[pyclass(module = "l2l._l2l")]
pub struct NativeDataset {
    dataset: RemoteDataset,
}

#[pymethods]
impl NativeDataset {
    /// The `[dataset]` of a config file (paths relative to it, as `l2l-host` reads them), with
    /// `--set`-style overrides.
    #[staticmethod]
    #[pyo3(signature = (path, overrides, plugin_dirs))]
    fn from_config(path: PathBuf, overrides: &Bound<'_, PyDict>, plugin_dirs: Vec<PathBuf>) -> PyResult<Self> {
        let assignments = override_assignments(overrides)?;
        let opened = (|| {
            let loaded = config::load(&path, &assignments)?;
            let spec = l2l_host::data::datasets::spec(&loaded)?;
            let mut dirs = plugin_dirs;
            dirs.extend(l2l_host::run::JobPlan::new(loaded.clone())?.plugin_dirs);
            l2l_host::data::datasets::open(&Registry::discover(&dirs), &spec, &[])
        })();
        opened.map(|dataset| NativeDataset { dataset }).map_err(to_py)
    }

    fn __len__(&self) -> usize {
        self.dataset.len()
    }

    /// Class names (classification) or `None` (segmentation).
    fn class_names(&self) -> Option<Vec<String>> {
        self.dataset.class_names().map(<[String]>::to_vec)
    }

    /// Who the data set is, for `repr`.
    fn label(&self) -> String {
        self.dataset.label().to_string()
    }

    /// Sample `index`: the H×W mosaic in [0, 1], the target (class index or H×W mask) and the
    /// camera dict.
    fn sample<'py>(&self, py: Python<'py>, index: usize) -> PyResult<(PyTensor, PyTensor, Bound<'py, PyDict>)> {
        if index >= self.dataset.len() {
            return Err(pyo3::exceptions::PyIndexError::new_err(format!(
                "sample {index} of a data set of {}",
                self.dataset.len()
            )));
        }
        let sample = py.allow_threads(|| self.dataset.sample(index)).map_err(to_py)?;
        let camera = camera_dict(py, &sample.metadata)?;
        Ok((PyTensor(sample.raw), PyTensor(sample.target), camera))
    }
}
