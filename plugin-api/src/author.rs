//! The plugin author's side: plain-Rust traits over `tch` tensors, registration with `inventory`, and
//! the adapters that put them behind the FFI types with every error and panic caught.

use crate::ffi::{
    CfaPattern, ComponentInfo, ComponentKind, ConfigKeyInfo, DatasetBox, FfiDataset, FfiDatasetInfo, FfiDataset_TO,
    FfiDevice, FfiFloatKind, FfiModule, FfiModule_TO, FfiNamedTensor, FfiParameter, FfiSample, ImageKind, ModuleBox,
    RawMetadata,
};
use crate::tensor::TensorHandle;
use abi_stable::{
    sabi_trait::TD_Opaque,
    std_types::{RBox, ROption, RResult, RStr, RString, RVec},
};
use serde::{de::DeserializeOwned, Serialize};
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use tch::{Device, Kind, Tensor};

/// Why a plugin call failed; becomes the error text the host shows.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The component's config is wrong (unknown key, wrong type, value out of range).
    #[error("{0}")]
    Config(String),
    /// The input tensor is not what the component accepts (shape, dtype, values).
    #[error("{0}")]
    Input(String),
    /// A libtorch operation failed (shown by its first line: libtorch appends a C++ backtrace).
    #[error("libtorch: {}", first_line(.0))]
    Torch(#[from] tch::TchError),
    /// A tensor crossing the boundary was refused.
    #[error("{0}")]
    Handle(#[from] crate::tensor::HandleError),
    /// Restoring state failed (missing, unknown or mis-shaped tensors).
    #[error("{0}")]
    State(String),
    /// A data file is missing, corrupt or inconsistent with the others (the message names it).
    #[error("{0}")]
    Data(String),
}

fn first_line(err: &tch::TchError) -> String {
    err.to_string().lines().next().unwrap_or("").to_string()
}

/// Shorthand for plugin results.
pub type PluginResult<T> = Result<T, PluginError>;

/// A learnable tensor of a module, with its name and whether its config asks for it to be learned.
pub struct Parameter {
    /// Unique within the module; the key in saved state.
    pub name: String,
    /// The leaf tensor the module computes with.
    pub tensor: Tensor,
    /// `requires_grad` of the tensor follows this.
    pub trainable: bool,
}

/// The named parameters of a module: what most stages keep, and what gives them state, device moves
/// and sharing for free.
#[derive(Default)]
pub struct ParameterSet {
    entries: Vec<Parameter>,
}

impl ParameterSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a parameter holding a copy of `values` (float32, CPU), learnable if `trainable`.
    pub fn add(&mut self, name: &str, values: &Tensor, trainable: bool) -> PluginResult<()> {
        let tensor = values
            .f_to_kind(Kind::Float)?
            .f_detach_copy()?
            .set_requires_grad(trainable);
        self.entries.push(Parameter {
            name: name.to_string(),
            tensor,
            trainable,
        });
        Ok(())
    }

    /// The tensor of parameter `name`.
    pub fn get(&self, name: &str) -> PluginResult<&Tensor> {
        self.entries
            .iter()
            .find(|p| p.name == name)
            .map(|p| &p.tensor)
            .ok_or_else(|| PluginError::State(format!("no parameter named `{name}`")))
    }

    /// All parameters in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &Parameter> {
        self.entries.iter()
    }

    /// Replaces every tensor by a copy on `device` in `kind`, keeping names and trainable flags.
    pub fn to(&mut self, device: Device, kind: Kind) -> PluginResult<()> {
        for p in &mut self.entries {
            let moved = p.tensor.f_detach()?.f_to_device(device)?.f_to_kind(kind)?;
            p.tensor = moved.f_detach_copy()?.set_requires_grad(p.trainable);
        }
        Ok(())
    }

    /// Copies of every parameter, for saving.
    pub fn state(&self) -> PluginResult<Vec<(String, Tensor)>> {
        self.entries
            .iter()
            .map(|p| Ok((p.name.clone(), p.tensor.f_detach_copy()?)))
            .collect()
    }

    /// Writes the given values into the parameters of those names, in place (autograd leaves stay the
    /// same tensors); the others keep theirs. For initial weights that cover part of a network.
    pub fn load_some(&mut self, state: Vec<(String, Tensor)>) -> PluginResult<()> {
        for (name, value) in state {
            let p = self
                .entries
                .iter_mut()
                .find(|p| p.name == name)
                .ok_or_else(|| PluginError::State(format!("unknown parameter `{name}` in state")))?;
            if p.tensor.size() != value.size() {
                return Err(PluginError::State(format!(
                    "parameter `{name}`: expected shape {:?}, found {:?}",
                    p.tensor.size(),
                    value.size()
                )));
            }
            let value = value.f_to_device(p.tensor.device())?.f_to_kind(p.tensor.kind())?;
            tch::no_grad(|| p.tensor.f_copy_(&value))?;
        }
        Ok(())
    }

    /// Writes saved values into the parameters in place (autograd leaves stay the same tensors).
    pub fn load_state(&mut self, state: Vec<(String, Tensor)>) -> PluginResult<()> {
        if state.len() != self.entries.len() {
            let names: Vec<&str> = state.iter().map(|(n, _)| n.as_str()).collect();
            return Err(PluginError::State(format!(
                "expected {} tensors ({}), found {} ({})",
                self.entries.len(),
                self.entries
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                state.len(),
                names.join(", ")
            )));
        }
        self.load_some(state)
    }
}

/// A differentiable module: what every stage and task model implements.
///
/// Only `forward` and access to the [`ParameterSet`] are required; modules with buffers or
/// train/eval behaviour (batch norm) override the rest.
pub trait Module: Send {
    /// Computes the output; must be differentiable in `input` and in the trainable parameters.
    fn forward(&mut self, input: &Tensor) -> PluginResult<Tensor>;
    /// The module's parameters.
    fn parameter_set(&self) -> &ParameterSet;
    /// The module's parameters, for moves and restores.
    fn parameter_set_mut(&mut self) -> &mut ParameterSet;

    /// Switches train/eval behaviour; a no-op for modules without any.
    fn set_train(&mut self, _train: bool) {}
    /// Everything to save.
    fn state(&self) -> PluginResult<Vec<(String, Tensor)>> {
        self.parameter_set().state()
    }
    /// Restores what `state` wrote.
    fn load_state(&mut self, state: Vec<(String, Tensor)>) -> PluginResult<()> {
        self.parameter_set_mut().load_state(state)
    }
    /// Moves every tensor to `device` in `kind`.
    fn to(&mut self, device: Device, kind: Kind) -> PluginResult<()> {
        self.parameter_set_mut().to(device, kind)
    }
    /// Takes the camera metadata of the next batches (one per sample); only stages configured to
    /// read camera parameters from the data use it.
    fn set_camera(&mut self, _cameras: &[RawMetadata]) -> PluginResult<()> {
        Ok(())
    }
    /// How far the output reaches into the input along the image's rows: `Some(r)` when output row
    /// `i` depends on input rows `i − r ..= i + r` only (any columns; rows beyond the image's edge as
    /// the module pads them) and on nothing else of the input. The host may then run the module on
    /// horizontal bands of an image, each with `r` more rows on both sides, and join the bands — export
    /// does, so that a pipeline's intermediate images stay in cache. Bands start at even rows, so a
    /// result that depends on a row's parity (a CFA pattern) is fine; a module whose result depends
    /// on the whole image (a norm, a Fourier transform) or changes its size (packing) keeps the
    /// default, `None`.
    fn row_reach(&self) -> Option<usize> {
        None
    }
    /// Runs the module on rows `band.first_row ..` of an image `band.full_height` rows high, as
    /// export's bands do for a module with a row reach. The default forgets where the band is and
    /// calls `forward`: right for every module whose values do not depend on where a pixel is. A
    /// module whose values do (vignetting, lens distortion, anything computed from the pixel's
    /// coordinates) either overrides this, taking the band's rows as rows `first_row ..` of the
    /// full image, or keeps `row_reach` at `None` and is never banded.
    fn forward_band(&mut self, input: &Tensor, band: Band) -> PluginResult<Tensor> {
        let _ = band;
        self.forward(input)
    }
}

/// Where a band sits in the full image: its first row, and the full image's height (its width is the
/// band's). The whole image is the band `{ first_row: 0, full_height: H }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Band {
    /// The full image's row of the band's first row.
    pub first_row: i64,
    /// The full image's height.
    pub full_height: i64,
}

/// A sample as a dataset plugin produces it.
pub struct Sample {
    /// H×W float mosaic in [0, 1] (scaled by the white level, black level not subtracted).
    pub raw: Tensor,
    /// Class index (int64 scalar) or H×W int64 mask.
    pub target: Tensor,
    /// The camera's parameters for this sample.
    pub metadata: RawMetadata,
}

/// A source of raw samples.
pub trait Dataset: Send + Sync {
    /// Sorted class names for classification, `None` for segmentation.
    fn class_names(&self) -> Option<Vec<String>>;
    /// Number of samples.
    fn len(&self) -> usize;
    /// Whether there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The sample at `index`.
    fn sample(&self, index: usize) -> PluginResult<Sample>;
    /// The class index of every sample, when known without decoding (classification).
    fn labels(&self) -> Option<Vec<usize>> {
        None
    }
    /// Problems met while opening that did not stop it (skipped files), for the host to report.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
}

/// One config key of a component: its name, what it means and whether a config must set it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConfigKey {
    /// The key in the component's TOML table.
    pub name: &'static str,
    /// What it means (the field's doc comment).
    pub doc: &'static str,
    /// Whether a config must set it.
    pub required: bool,
    /// The smallest value the key's numbers may take (and, for a learnable parameter of the same
    /// name, what forensics and training keep it at or above).
    pub min: Option<f64>,
    /// The largest value the key's numbers may take (likewise for the parameter).
    pub max: Option<f64>,
}

/// A component's config: a serde struct (use `#[serde(deny_unknown_fields, default)]`) whose
/// `Default` is the documented default. Derive it (`#[derive(ComponentConfig)]`): the keys then come
/// from the fields and their doc comments, so the documented keys are the accepted ones.
pub trait ComponentConfig: DeserializeOwned + Serialize + Default {
    /// Every key, in the order `plugins inspect` shows them.
    const KEYS: &'static [ConfigKey];
}

/// A stage that can be built from its config.
pub trait BuildStage: Module + Sized + 'static {
    /// Its config.
    type Config: ComponentConfig;
    /// What it takes: checked against the previous stage's output when a pipeline is built.
    const INPUT: ImageKind;
    /// What it gives (`Any`: the kind it was given).
    const OUTPUT: ImageKind;
    /// Builds the stage, validating the config's values.
    fn build(config: Self::Config) -> PluginResult<Self>;
}

/// A dataset that can be built from its config.
pub trait BuildDataset: Dataset + Sized + 'static {
    /// Its config.
    type Config: ComponentConfig;
    /// Opens the dataset.
    fn build(config: Self::Config) -> PluginResult<Self>;
}

/// A task model that can be built from its config and the dataset's class count.
pub trait BuildTaskModel: Module + Sized + 'static {
    /// Its config.
    type Config: ComponentConfig;
    /// Builds the network.
    fn build(config: Self::Config, num_classes: usize) -> PluginResult<Self>;
}

/// How a registered component is built.
pub enum Builder {
    /// From the config text.
    Stage(fn(&str) -> PluginResult<Box<dyn Module>>),
    /// From the config text.
    Dataset(fn(&str) -> PluginResult<Box<dyn Dataset>>),
    /// From the config text and the class count.
    TaskModel(fn(&str, usize) -> PluginResult<Box<dyn Module>>),
}

/// One component, registered inside its plugin with `inventory::submit!`.
pub struct ComponentRegistration {
    name: &'static str,
    summary: &'static str,
    config_keys: fn() -> Vec<ConfigKeyInfo>,
    builder: Builder,
    input: ImageKind,
    output: ImageKind,
}

inventory::collect!(ComponentRegistration);

impl ComponentRegistration {
    /// Registers stage `S` under `name`.
    pub const fn stage<S: BuildStage>(name: &'static str, summary: &'static str) -> Self {
        Self {
            name,
            summary,
            config_keys: describe_config::<S::Config>,
            builder: Builder::Stage(build_stage::<S>),
            input: S::INPUT,
            output: S::OUTPUT,
        }
    }

    /// Registers dataset `D` under `name`.
    pub const fn dataset<D: BuildDataset>(name: &'static str, summary: &'static str) -> Self {
        Self {
            name,
            summary,
            config_keys: describe_config::<D::Config>,
            builder: Builder::Dataset(build_dataset::<D>),
            input: ImageKind::Any,
            output: ImageKind::Any,
        }
    }

    /// Registers task model `M` under `name`.
    pub const fn task_model<M: BuildTaskModel>(name: &'static str, summary: &'static str) -> Self {
        Self {
            name,
            summary,
            config_keys: describe_config::<M::Config>,
            builder: Builder::TaskModel(build_task_model::<M>),
            input: ImageKind::Any,
            output: ImageKind::Any,
        }
    }

    fn kind(&self) -> ComponentKind {
        match self.builder {
            Builder::Stage(_) => ComponentKind::Stage,
            Builder::Dataset(_) => ComponentKind::Dataset,
            Builder::TaskModel(_) => ComponentKind::TaskModel,
        }
    }
}

/// Parses a component's config from TOML text, with the short serde message on failure.
pub fn parse_config<C: ComponentConfig>(text: &str) -> PluginResult<C> {
    let table: toml::Table = toml::from_str(text).map_err(|e| PluginError::Config(e.message().trim().to_string()))?;
    for key in C::KEYS.iter().filter(|k| k.min.is_some() || k.max.is_some()) {
        if let Some(value) = table.get(key.name) {
            check_range(key, value)?;
        }
    }
    toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| PluginError::Config(e.message().trim().to_string()))
}

/// Every number in `value` (a number, or arrays of them) lies in the key's declared range.
fn check_range(key: &ConfigKey, value: &toml::Value) -> PluginResult<()> {
    let number = match value {
        toml::Value::Float(x) => *x,
        toml::Value::Integer(i) => *i as f64,
        toml::Value::Array(items) => return items.iter().try_for_each(|item| check_range(key, item)),
        _ => return Ok(()),
    };
    let (min, max) = (key.min.unwrap_or(f64::NEG_INFINITY), key.max.unwrap_or(f64::INFINITY));
    if number >= min && number <= max {
        Ok(())
    } else {
        Err(PluginError::Config(format!(
            "{}: expected values in [{min}, {max}], found {number}",
            key.name
        )))
    }
}

fn describe_config<C: ComponentConfig>() -> Vec<ConfigKeyInfo> {
    let defaults = toml::Table::try_from(C::default()).unwrap_or_default();
    C::KEYS
        .iter()
        .map(|key| ConfigKeyInfo {
            name: key.name.into(),
            default: defaults.get(key.name).map(|v| v.to_string()).unwrap_or_default().into(),
            doc: key.doc.into(),
            required: key.required,
            min: key.min.unwrap_or(f64::NEG_INFINITY),
            max: key.max.unwrap_or(f64::INFINITY),
        })
        .collect()
}

fn build_stage<S: BuildStage>(text: &str) -> PluginResult<Box<dyn Module>> {
    Ok(Box::new(S::build(parse_config(text)?)?))
}

fn build_dataset<D: BuildDataset>(text: &str) -> PluginResult<Box<dyn Dataset>> {
    Ok(Box::new(D::build(parse_config(text)?)?))
}

fn build_task_model<M: BuildTaskModel>(text: &str, num_classes: usize) -> PluginResult<Box<dyn Module>> {
    Ok(Box::new(M::build(parse_config(text)?, num_classes)?))
}

thread_local! {
    /// Where the plugin's panic hook leaves the location and message of the last panic.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Replaces this plugin's panic hook (each plugin has its own copy of std) with one that records the
/// panic for the error message instead of printing it. Called once when the plugin is loaded.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_string());
        LAST_PANIC.with(|last| *last.borrow_mut() = Some(format!("panicked{location}: {message}")));
    }));
}

/// Runs `f`, turning its error or its panic into the error text that crosses the boundary.
fn guarded<T>(f: impl FnOnce() -> PluginResult<T>) -> RResult<T, RString> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => RResult::ROk(value),
        Ok(Err(err)) => RResult::RErr(err.to_string().into()),
        Err(_) => {
            let what = LAST_PANIC
                .with(|last| last.borrow_mut().take())
                .unwrap_or_else(|| "panicked".to_string());
            RResult::RErr(what.into())
        }
    }
}

fn device_of(device: FfiDevice) -> Device {
    if device.cuda_index < 0 {
        Device::Cpu
    } else {
        Device::Cuda(device.cuda_index as usize)
    }
}

fn kind_of(kind: FfiFloatKind) -> Kind {
    match kind {
        FfiFloatKind::Float32 => Kind::Float,
        FfiFloatKind::Float64 => Kind::Double,
    }
}

/// Puts a [`Module`] behind [`FfiModule`].
struct ModuleAdapter(Box<dyn Module>);

impl FfiModule for ModuleAdapter {
    fn forward(&mut self, input: TensorHandle) -> RResult<TensorHandle, RString> {
        guarded(|| {
            let input = input.into_tensor()?;
            Ok(TensorHandle::new(self.0.forward(&input)?))
        })
    }

    fn parameters(&self) -> RResult<RVec<FfiParameter>, RString> {
        guarded(|| {
            Ok(self
                .0
                .parameter_set()
                .iter()
                .map(|p| FfiParameter {
                    name: p.name.as_str().into(),
                    tensor: TensorHandle::share(&p.tensor),
                    trainable: p.trainable,
                })
                .collect())
        })
    }

    fn set_train(&mut self, train: bool) -> RResult<(), RString> {
        guarded(|| {
            self.0.set_train(train);
            Ok(())
        })
    }

    fn state(&self) -> RResult<RVec<FfiNamedTensor>, RString> {
        guarded(|| {
            Ok(self
                .0
                .state()?
                .into_iter()
                .map(|(name, t)| FfiNamedTensor {
                    name: name.into(),
                    tensor: TensorHandle::new(t),
                })
                .collect())
        })
    }

    fn load_state(&mut self, state: RVec<FfiNamedTensor>) -> RResult<(), RString> {
        guarded(|| {
            let state = state
                .into_iter()
                .map(|n| Ok((n.name.into_string(), n.tensor.into_tensor()?)))
                .collect::<PluginResult<Vec<_>>>()?;
            self.0.load_state(state)
        })
    }

    fn to(&mut self, device: FfiDevice, kind: FfiFloatKind) -> RResult<(), RString> {
        guarded(|| self.0.to(device_of(device), kind_of(kind)))
    }

    fn set_camera(&mut self, cameras: RVec<RawMetadata>) -> RResult<(), RString> {
        guarded(|| self.0.set_camera(&cameras))
    }

    fn row_reach(&self) -> RResult<ROption<u64>, RString> {
        guarded(|| Ok(self.0.row_reach().map(|r| r as u64).into()))
    }

    fn forward_band(
        &mut self,
        input: TensorHandle,
        first_row: u64,
        full_height: u64,
    ) -> RResult<TensorHandle, RString> {
        guarded(|| {
            let input = input.into_tensor()?;
            let band = Band {
                first_row: first_row as i64,
                full_height: full_height as i64,
            };
            Ok(TensorHandle::new(self.0.forward_band(&input, band)?))
        })
    }
}

/// Puts a [`Dataset`] behind [`FfiDataset`].
struct DatasetAdapter(Box<dyn Dataset>);

impl FfiDataset for DatasetAdapter {
    fn info(&self) -> FfiDatasetInfo {
        let class_names = self
            .0
            .class_names()
            .map(|names| names.into_iter().map(RString::from).collect());
        FfiDatasetInfo {
            class_names: ROption::from(class_names),
            len: self.0.len(),
            labels: self
                .0
                .labels()
                .unwrap_or_default()
                .into_iter()
                .map(|l| l as u32)
                .collect(),
            warnings: self.0.warnings().into_iter().map(RString::from).collect(),
        }
    }

    fn sample(&self, index: usize) -> RResult<FfiSample, RString> {
        guarded(|| {
            let sample = self.0.sample(index)?;
            Ok(FfiSample {
                raw: TensorHandle::new(sample.raw),
                target: TensorHandle::new(sample.target),
                metadata: sample.metadata,
            })
        })
    }
}

fn find(name: &str, kind: ComponentKind) -> PluginResult<&'static ComponentRegistration> {
    inventory::iter::<ComponentRegistration>
        .into_iter()
        .find(|r| r.name == name && r.kind() == kind)
        .ok_or_else(|| PluginError::Config(format!("this plugin has no {} named `{name}`", kind.as_str())))
}

/// The root module's `components`.
pub extern "C" fn ffi_components() -> RResult<RVec<ComponentInfo>, RString> {
    guarded(|| {
        Ok(inventory::iter::<ComponentRegistration>
            .into_iter()
            .map(|r| ComponentInfo {
                kind: r.kind(),
                name: r.name.into(),
                summary: r.summary.into(),
                config_keys: (r.config_keys)().into(),
                input: r.input,
                output: r.output,
            })
            .collect())
    })
}

/// The root module's `build_stage`.
pub extern "C" fn ffi_build_stage(name: RStr<'_>, config: RStr<'_>) -> RResult<ModuleBox, RString> {
    guarded(|| match find(name.as_str(), ComponentKind::Stage)?.builder {
        Builder::Stage(build) => Ok(FfiModule_TO::from_ptr(
            RBox::new(ModuleAdapter(build(config.as_str())?)),
            TD_Opaque,
        )),
        _ => unreachable!("`find` matched the kind"),
    })
}

/// The root module's `build_dataset`.
pub extern "C" fn ffi_build_dataset(name: RStr<'_>, config: RStr<'_>) -> RResult<DatasetBox, RString> {
    guarded(|| match find(name.as_str(), ComponentKind::Dataset)?.builder {
        Builder::Dataset(build) => Ok(FfiDataset_TO::from_ptr(
            RBox::new(DatasetAdapter(build(config.as_str())?)),
            TD_Opaque,
        )),
        _ => unreachable!("`find` matched the kind"),
    })
}

/// The root module's `build_task_model`.
pub extern "C" fn ffi_build_task_model(
    name: RStr<'_>,
    config: RStr<'_>,
    num_classes: usize,
) -> RResult<ModuleBox, RString> {
    guarded(|| match find(name.as_str(), ComponentKind::TaskModel)?.builder {
        Builder::TaskModel(build) => Ok(FfiModule_TO::from_ptr(
            RBox::new(ModuleAdapter(build(config.as_str(), num_classes)?)),
            TD_Opaque,
        )),
        _ => unreachable!("`find` matched the kind"),
    })
}

/// Checks that a mosaic batch is `[B, 1, H, W]` floating point, the shape stages before demosaicing
/// take, and at least one 2×2 CFA block in size (less holds no colour to interpolate from).
pub fn expect_mosaic(input: &Tensor, stage: &str) -> PluginResult<()> {
    let size = input.size();
    if size.len() != 4 || size[1] != 1 || !input.is_floating_point() {
        return Err(PluginError::Input(format!(
            "{stage}: expected a raw mosaic batch [B, 1, H, W] of floats, found {:?} {:?}",
            size,
            input.kind()
        )));
    }
    if size[2] < 2 || size[3] < 2 {
        return Err(PluginError::Input(format!(
            "{stage}: expected a mosaic of at least 2×2 pixels (one CFA block), found {}×{}",
            size[2], size[3]
        )));
    }
    Ok(())
}

/// Checks that an image batch is `[B, 3, H, W]` floating point, the shape stages after demosaicing take.
pub fn expect_rgb(input: &Tensor, stage: &str) -> PluginResult<()> {
    let size = input.size();
    if size.len() != 4 || size[1] != 3 || !input.is_floating_point() {
        return Err(PluginError::Input(format!(
            "{stage}: expected an RGB batch [B, 3, H, W] of floats, found {:?} {:?}",
            size,
            input.kind()
        )));
    }
    Ok(())
}

/// The camera metadata a stage last received, for stages whose config says `from_metadata = true`.
#[derive(Default)]
pub struct CameraSource {
    from_metadata: bool,
    cameras: Vec<RawMetadata>,
}

impl CameraSource {
    /// A source that reads metadata when `from_metadata`, and ignores it otherwise.
    pub fn new(from_metadata: bool) -> Self {
        Self {
            from_metadata,
            cameras: Vec::new(),
        }
    }

    /// Whether the stage takes its camera parameters from the data.
    pub fn from_metadata(&self) -> bool {
        self.from_metadata
    }

    /// Keeps `cameras` when reading from metadata.
    pub fn set(&mut self, cameras: &[RawMetadata]) {
        if self.from_metadata {
            self.cameras = cameras.to_vec();
        }
    }

    /// One row per sample of a batch of `batch`, built from each sample's metadata by `values`, as a
    /// `[batch, N]` tensor in `like`'s kind and device; an error when no metadata (or metadata for
    /// another batch size) was given.
    pub fn per_sample(
        &self,
        stage: &str,
        batch: i64,
        like: &Tensor,
        values: impl Fn(&RawMetadata) -> Vec<f32>,
    ) -> PluginResult<Tensor> {
        if self.cameras.len() as i64 != batch {
            return Err(PluginError::Input(format!(
                "{stage}: from_metadata is set, so every sample needs camera metadata: expected {batch}, found {} (inputs without metadata, such as .npy mosaics, need the values in the config)",
                self.cameras.len()
            )));
        }
        let rows: Vec<f32> = self.cameras.iter().flat_map(&values).collect();
        let width = rows.len() as i64 / batch.max(1);
        Ok(Tensor::from_slice(&rows)
            .f_view([batch, width])?
            .f_to_kind(like.kind())?
            .f_to_device(like.device())?)
    }

    /// `configured`, or the batch's one CFA pattern when reading from metadata.
    pub fn cfa_pattern_or(&self, stage: &str, configured: CfaPattern) -> PluginResult<CfaPattern> {
        if self.from_metadata {
            self.cfa_pattern(stage)
        } else {
            Ok(configured)
        }
    }

    /// The one CFA pattern of the batch's samples, or an error if they differ or none was given.
    pub fn cfa_pattern(&self, stage: &str) -> PluginResult<CfaPattern> {
        let first = self.cameras.first().ok_or_else(|| {
            PluginError::Input(format!(
                "{stage}: the CFA pattern comes from the metadata, but none was given"
            ))
        })?;
        if let Some(other) = self.cameras.iter().find(|c| c.cfa_pattern != first.cfa_pattern) {
            return Err(PluginError::Input(format!(
                "{stage}: one batch mixes CFA patterns ({:?} and {:?}); batch samples of one pattern",
                first.cfa_pattern, other.cfa_pattern
            )));
        }
        Ok(first.cfa_pattern)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtorch_errors_are_one_line() {
        let err: PluginError = Tensor::zeros([2], (Kind::Float, Device::Cpu))
            .f_view([3])
            .unwrap_err()
            .into();
        let text = err.to_string();
        assert!(
            text.starts_with("libtorch: ") && text.contains("invalid for input of size 2"),
            "{text}"
        );
        assert_eq!(text.lines().count(), 1, "{text}");
    }

    #[test]
    fn camera_values_are_refused_without_metadata_and_mixed_patterns_are_refused() {
        let like = Tensor::zeros([1], (Kind::Float, Device::Cpu));
        let mut camera = CameraSource::new(true);
        let err = camera
            .per_sample("white_balance", 2, &like, |c| c.white_balance.to_vec())
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected 2, found 0"), "{err}");
        let metadata = RawMetadata {
            cfa_pattern: CfaPattern::Rggb,
            black_level: [0.0; 4],
            white_balance: [2.0, 1.0, 1.5],
            colour_matrix: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
            intensity: 100.0,
        };
        camera.set(&[
            metadata,
            RawMetadata {
                cfa_pattern: CfaPattern::Bggr,
                ..metadata
            },
        ]);
        let gains = camera
            .per_sample("white_balance", 2, &like, |c| c.white_balance.to_vec())
            .unwrap();
        assert_eq!(gains.size(), [2, 3]);
        assert!(camera
            .cfa_pattern("demosaic")
            .unwrap_err()
            .to_string()
            .contains("mixes CFA patterns"));
        // a source not reading metadata ignores it
        let mut fixed = CameraSource::new(false);
        fixed.set(&[metadata]);
        assert_eq!(
            fixed.cfa_pattern_or("demosaic", CfaPattern::Gbrg).unwrap(),
            CfaPattern::Gbrg
        );
    }
}
