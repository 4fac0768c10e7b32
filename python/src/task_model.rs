//! A config's task model (`[task_model]`: ResNet, UNet++ or a third party's network), built by its
//! plugin through the host's registry, with the same calls as one stage of a pipeline.

use crate::convert::override_assignments;
use crate::to_py;
use anyhow::anyhow;
use l2l_host::config;
use l2l_host::plugins::{Registry, RemoteModule};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3_tch::PyTensor;
use std::path::PathBuf;
use tch::Kind;

/// One task model.
#[pyclass(unsendable, module = "l2l._l2l")]
pub struct NativeTaskModel {
    model: RemoteModule,
}

#[pymethods]
impl NativeTaskModel {
    /// The `[task_model]` of a config file for `num_classes` outputs (its `weights` read as
    /// `l2l-host` reads them), with `--set`-style overrides.
    #[staticmethod]
    #[pyo3(signature = (path, overrides, plugin_dirs, device, num_classes))]
    fn from_config(
        path: PathBuf,
        overrides: &Bound<'_, PyDict>,
        plugin_dirs: Vec<PathBuf>,
        device: &str,
        num_classes: usize,
    ) -> PyResult<Self> {
        let assignments = override_assignments(overrides)?;
        let built = (|| {
            let loaded = config::load(&path, &assignments)?;
            let spec = loaded.task_model_spec()?.ok_or_else(|| {
                anyhow!(
                    "config {}: no [task_model] table (expected e.g. kind = \"resnet\")",
                    path.display()
                )
            })?;
            let mut dirs = plugin_dirs;
            dirs.extend(l2l_host::run::JobPlan::new(loaded.clone())?.plugin_dirs);
            let registry = Registry::discover(&dirs);
            let mut model = registry.build_task_model(
                &spec.kind,
                spec.plugin.as_deref(),
                &spec.config,
                num_classes,
                "config key `task_model`",
            )?;
            model.to(l2l_host::device::compute_device(device)?, Kind::Float)?;
            Ok(NativeTaskModel { model })
        })();
        built.map_err(to_py)
    }

    /// What the model is, for `repr`.
    fn label(&self) -> String {
        self.model.label().to_string()
    }

    /// The parameters as `(name, tensor, trainable)`: the plugin's own tensors.
    fn parameters(&self) -> PyResult<Vec<(String, PyTensor, bool)>> {
        let parameters = self.model.parameters().map_err(to_py)?;
        Ok(parameters
            .into_iter()
            .map(|p| (p.name, PyTensor(p.tensor), p.trainable))
            .collect())
    }

    /// The model's outputs (logits) for `input`.
    fn forward(&mut self, py: Python<'_>, input: PyTensor) -> PyResult<PyTensor> {
        let (model, input) = (&mut self.model, input.0);
        py.allow_threads(move || model.forward(&input))
            .map(PyTensor)
            .map_err(to_py)
    }

    /// Switches between training and evaluation behaviour (batch normalisation).
    fn set_train(&mut self, train: bool) -> PyResult<()> {
        self.model.set_train(train).map_err(to_py)
    }

    /// Moves the model to `device` in float32 or float64; parameters are new tensors afterwards.
    fn to(&mut self, device: &str, double: bool) -> PyResult<()> {
        let device = l2l_host::device::compute_device(device).map_err(to_py)?;
        self.model
            .to(device, if double { Kind::Double } else { Kind::Float })
            .map_err(to_py)
    }

    /// Copies of the model's state (parameters and batch-norm statistics).
    fn state(&self) -> PyResult<Vec<(String, PyTensor)>> {
        let state = self.model.state().map_err(to_py)?;
        Ok(state.into_iter().map(|(name, t)| (name, PyTensor(t))).collect())
    }

    /// Writes a whole state into the model, in place.
    fn load_state(&mut self, state: Vec<(String, PyTensor)>) -> PyResult<()> {
        self.model
            .load_state(state.into_iter().map(|(name, t)| (name, t.0)).collect())
            .map_err(to_py)
    }
}
