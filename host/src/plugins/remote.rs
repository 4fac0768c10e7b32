//! Safe handles on what plugins build: modules (stages, task models) and datasets, with every call's
//! error named by the component's label.

use super::load::into_result;
use abi_stable::std_types::{RString, RVec};
use anyhow::{anyhow, bail, Result};
use l2l_plugin_api::ffi::{ComponentInfo, DatasetBox, FfiDevice, FfiFloatKind, FfiNamedTensor, ModuleBox, RawMetadata};
use l2l_plugin_api::{Band, ImageKind, TensorHandle};
use tch::{Device, Kind, Tensor};

/// A parameter of a plugin module, shared with it: gradients computed in the host land on the plugin's
/// tensor and in-place updates from the host are what the plugin computes with.
pub struct SharedParameter {
    /// The parameter's name within its module.
    pub name: String,
    /// The plugin's tensor.
    pub tensor: Tensor,
    /// Whether the config asks for it to be learned.
    pub trainable: bool,
    /// The range its component declares for it (the config key of the same name), if any.
    pub bounds: Option<(f64, f64)>,
}

impl SharedParameter {
    /// Puts the values back inside [`SharedParameter::bounds`] (in place, without gradient): the
    /// projection after each optimiser step that keeps a search or a training where the stage says
    /// its parameter is valid.
    pub fn project(&self) -> Result<()> {
        if let Some((min, max)) = self.bounds {
            let mut tensor = self.tensor.shallow_clone();
            tch::no_grad(|| tensor.f_clamp_(min, max).map(drop))?;
        }
        Ok(())
    }
}

/// A stage or task model living in a plugin.
pub struct RemoteModule {
    inner: ModuleBox,
    label: String,
    input: ImageKind,
    output: ImageKind,
    /// Config keys with a declared range: name, min, max.
    ranges: Vec<(String, f64, f64)>,
}

fn handle_to_tensor(handle: TensorHandle, label: &str) -> Result<Tensor> {
    handle.into_tensor().map_err(|e| anyhow!("{label}: {e}"))
}

impl RemoteModule {
    /// Wraps a module a plugin built, with what its component declares: what it takes and gives, and
    /// the ranges of its config keys.
    pub(super) fn new(inner: ModuleBox, label: String, info: &ComponentInfo) -> RemoteModule {
        let ranges = info
            .config_keys
            .iter()
            .filter(|k| k.min.is_finite() || k.max.is_finite())
            .map(|k| (k.name.to_string(), k.min, k.max))
            .collect();
        RemoteModule {
            inner,
            label,
            input: info.input,
            output: info.output,
            ranges,
        }
    }

    /// What the module takes and gives, as its component declares (`Any` for task models).
    pub fn image_kinds(&self) -> (ImageKind, ImageKind) {
        (self.input, self.output)
    }

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

    /// Runs the module on `input`, a band of a larger image (see [`Band`]).
    pub fn forward_band(&mut self, input: &Tensor, band: Band) -> Result<Tensor> {
        let (first_row, full_height) = (band.first_row as u64, band.full_height as u64);
        let output = into_result(
            self.inner
                .forward_band(TensorHandle::share(input), first_row, full_height),
        )
        .map_err(|e| anyhow!("{}: {e}", self.label))?;
        handle_to_tensor(output, &self.label)
    }

    /// The module's parameters, shared with it. Fetch again after [`RemoteModule::to`].
    pub fn parameters(&self) -> Result<Vec<SharedParameter>> {
        let params = into_result(self.inner.parameters()).map_err(|e| anyhow!("{}: {e}", self.label))?;
        params
            .into_iter()
            .map(|p| {
                let name = p.name.into_string();
                let bounds = self
                    .ranges
                    .iter()
                    .find(|(key, _, _)| *key == name)
                    .map(|(_, min, max)| (*min, *max));
                Ok(SharedParameter {
                    tensor: handle_to_tensor(p.tensor, &self.label)?,
                    trainable: p.trainable,
                    bounds,
                    name,
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
    pub(super) fn new(inner: DatasetBox, label: String) -> Self {
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
