//! A processing pipeline built by the host (`l2l_host::pipeline::Pipeline`), run stage by stage from
//! Python: the Python `Stage` modules call [`NativePipeline::forward_stage`] and register the tensors
//! of [`NativePipeline::parameters`] as their `nn.Parameter`s (the same tensors the plugins compute
//! with).

use crate::convert::{camera_from_dict, override_assignments, toml_table};
use crate::to_py;
use anyhow::{anyhow, Context};
use l2l_host::config::{self, PipelineSpec};
use l2l_host::pipeline::{run_stage, Pipeline};
use l2l_host::plugins::Registry;
use l2l_host::train::checkpoint;
use l2l_plugin_api::ImageKind;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use pyo3_tch::PyTensor;
use std::path::PathBuf;
use tch::{Device, Kind};

/// The stages of one pipeline, built by their plugins.
#[pyclass(unsendable, module = "l2l._l2l")]
pub struct NativePipeline {
    pipeline: Pipeline,
    names: Vec<String>,
}

/// Builds the stages of `spec`, the first taking `input`.
fn build(
    spec: &PipelineSpec,
    plugin_dirs: &[PathBuf],
    device: &str,
    input: ImageKind,
) -> anyhow::Result<NativePipeline> {
    let device = l2l_host::device::compute_device(device).context("device")?;
    let registry = Registry::discover(plugin_dirs);
    let pipeline = Pipeline::build_taking(&registry, &spec.stages, device, input)?;
    Ok(NativePipeline {
        pipeline,
        names: spec.names().iter().map(|n| n.to_string()).collect(),
    })
}

impl NativePipeline {
    fn stage_index(&self, index: usize) -> PyResult<usize> {
        if index < self.names.len() {
            Ok(index)
        } else {
            Err(pyo3::exceptions::PyIndexError::new_err(format!(
                "stage {index} of a pipeline of {}",
                self.names.len()
            )))
        }
    }
}

#[pymethods]
impl NativePipeline {
    /// The pipeline of a config file (`pipeline` and `[stages.*]`, includes and `plugin_dirs`
    /// resolved as `l2l-host` resolves them), with `--set`-style overrides; like the host's, it
    /// takes raw mosaics.
    #[staticmethod]
    #[pyo3(signature = (path, overrides, plugin_dirs, device))]
    fn from_config(
        path: PathBuf,
        overrides: &Bound<'_, PyDict>,
        plugin_dirs: Vec<PathBuf>,
        device: &str,
    ) -> PyResult<Self> {
        let assignments = override_assignments(overrides)?;
        let built = (|| {
            let loaded = config::load(&path, &assignments)?;
            let mut dirs = plugin_dirs;
            dirs.extend(l2l_host::run::JobPlan::new(loaded.clone())?.plugin_dirs);
            build(&loaded.pipeline()?, &dirs, device, ImageKind::Mosaic)
        })();
        built.map_err(to_py)
    }

    /// A pipeline of `(name, table)` pairs in order, each table a stage's config table (`kind`,
    /// optional `plugin`, the component's keys); its input is whatever the first stage takes.
    #[staticmethod]
    #[pyo3(signature = (stages, plugin_dirs, device))]
    fn from_stages(stages: &Bound<'_, PyList>, plugin_dirs: Vec<PathBuf>, device: &str) -> PyResult<Self> {
        let mut names = Vec::new();
        let mut tables = toml::Table::new();
        for item in stages.iter() {
            let (name, table): (String, Bound<'_, PyDict>) = item.extract()?;
            if names.contains(&name) {
                return Err(to_py(anyhow!(
                    "config key `pipeline`: stage name `{name}` is used twice"
                )));
            }
            let table = toml_table(&table, &format!("stages.{name}"))?;
            tables.insert(name.clone(), toml::Value::Table(table));
            names.push(name);
        }
        let built = PipelineSpec::from_tables(&names, &tables)
            .and_then(|spec| build(&spec, &plugin_dirs, device, ImageKind::Any));
        built.map_err(to_py)
    }

    /// The stage names, in order.
    fn names(&self) -> Vec<String> {
        self.names.clone()
    }

    /// What stage `index` is, for `repr`: its label (config key, component, plugin).
    fn label(&self, index: usize) -> PyResult<String> {
        let index = self.stage_index(index)?;
        Ok(self.pipeline.stages()[index].1.label().to_string())
    }

    /// Stage `index`'s parameters as `(name, tensor, trainable)`: the plugin's own tensors (fetch
    /// again after `to`).
    fn parameters(&self, index: usize) -> PyResult<Vec<(String, PyTensor, bool)>> {
        let index = self.stage_index(index)?;
        let parameters = self.pipeline.stages()[index].1.parameters().map_err(to_py)?;
        Ok(parameters
            .into_iter()
            .map(|p| (p.name, PyTensor(p.tensor), p.trainable))
            .collect())
    }

    /// Runs stage `index` on `input` and holds its output to the stage contract, as the host does.
    fn forward_stage(&mut self, py: Python<'_>, index: usize, input: PyTensor) -> PyResult<PyTensor> {
        let index = self.stage_index(index)?;
        let (name, stage) = &mut self.pipeline.stages_mut()[index];
        let input = input.0;
        py.allow_threads(move || run_stage(name, stage, &input))
            .map(PyTensor)
            .map_err(to_py)
    }

    /// Tells every stage the camera of each sample of the next batches (an empty list: none).
    fn set_camera(&mut self, cameras: &Bound<'_, PyList>) -> PyResult<()> {
        let cameras = cameras
            .iter()
            .enumerate()
            .map(|(i, camera)| camera_from_dict(camera.downcast::<PyDict>()?, &format!("camera[{i}]")))
            .collect::<PyResult<Vec<_>>>()?;
        self.pipeline.set_camera(&cameras).map_err(to_py)
    }

    /// Switches every stage between training and evaluation behaviour.
    fn set_train(&mut self, train: bool) -> PyResult<()> {
        self.pipeline.set_train(train).map_err(to_py)
    }

    /// Moves stage `index`'s tensors to `device` (`cpu`, `cuda`, `cuda:N`) in float32 or float64;
    /// its parameters are new tensors afterwards.
    fn to_stage(&mut self, index: usize, device: &str, double: bool) -> PyResult<()> {
        let index = self.stage_index(index)?;
        let moved = (|| {
            let device: Device = l2l_host::device::compute_device(device)?;
            let kind = if double { Kind::Double } else { Kind::Float };
            self.pipeline.stages_mut()[index].1.to(device, kind)
        })();
        moved.map_err(to_py)
    }

    /// Copies of stage `index`'s state (parameters and buffers), named as in l2l checkpoints after
    /// the stage's name.
    fn stage_state(&self, index: usize) -> PyResult<Vec<(String, PyTensor)>> {
        let index = self.stage_index(index)?;
        let state = self.pipeline.stages()[index].1.state().map_err(to_py)?;
        Ok(state.into_iter().map(|(name, t)| (name, PyTensor(t))).collect())
    }

    /// Writes a whole state of stage `index` (as [`NativePipeline::stage_state`] names it) into the
    /// stage, in place.
    fn load_stage_state(&mut self, index: usize, state: Vec<(String, PyTensor)>) -> PyResult<()> {
        let index = self.stage_index(index)?;
        let state: Vec<_> = state.into_iter().map(|(name, t)| (name, t.0)).collect();
        self.pipeline.stages_mut()[index].1.load_state(state).map_err(to_py)
    }

    /// Saves the state as an l2l checkpoint (safetensors, written atomically), for
    /// `l2l-host process --state FILE`.
    fn save(&self, path: PathBuf) -> PyResult<()> {
        let state = self.pipeline.state().map_err(to_py)?;
        checkpoint::save(&path, &state).map_err(to_py)
    }

    /// Restores the state from an l2l checkpoint: one [`NativePipeline::save`] wrote, or a training
    /// run's fold checkpoint (its `processor` section).
    fn load(&mut self, path: PathBuf) -> PyResult<()> {
        let state = checkpoint::pipeline_state(&path).map_err(to_py)?;
        self.pipeline.load_state(&state).map_err(to_py)
    }
}
