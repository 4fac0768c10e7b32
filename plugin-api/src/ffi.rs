//! The types that cross the plugin boundary, checked for layout by abi_stable when a plugin loads.
//!
//! Plugin authors never touch these: they implement the traits of `l2l-plugin-sdk`, and the host uses
//! them through its own safe wrappers. Every fallible call returns `RResult<_, RString>`; a plugin's
//! panics are caught on its side and come back as errors. The root module and the two trait objects
//! are prefix types, so fields and methods can be added at the end without breaking built plugins.

// `sabi_trait` generates impls inside a const block, which this lint flags; the code is abi_stable's.
#![allow(non_local_definitions)]

use crate::tensor::TensorHandle;
use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, ROption, RResult, RStr, RString, RVec},
    StableAbi,
};
use plugin_sdk_derive::Choices;

/// What a component is to the host.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentKind {
    /// A differentiable ISP stage: tensor in, tensor out, learnable parameters.
    Stage,
    /// A source of raw mosaics with targets and camera metadata.
    Dataset,
    /// A network that turns processed images into predictions.
    TaskModel,
}

impl ComponentKind {
    /// The word used in listings and configs.
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentKind::Stage => "stage",
            ComponentKind::Dataset => "dataset",
            ComponentKind::TaskModel => "task-model",
        }
    }
}

/// One config key of a component, as `plugins inspect` shows it.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct ConfigKeyInfo {
    /// The key in the component's TOML table.
    pub name: RString,
    /// Its default, written as TOML (empty when the key is required or unset by default).
    pub default: RString,
    /// What it means.
    pub doc: RString,
    /// Whether a config must set it.
    pub required: bool,
    /// The smallest value its numbers may take (−∞ when unbounded); a learnable parameter of the
    /// same name is kept at or above it.
    pub min: f64,
    /// The largest value its numbers may take (+∞ when unbounded).
    pub max: f64,
    /// The words a text key takes; empty for free text and numbers.
    pub choices: RVec<RString>,
}

/// What a stage takes or gives, so that a pipeline whose stages do not fit together is refused when it
/// is built, before anything runs.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// A raw Bayer mosaic `[B, 1, H, W]`.
    Mosaic,
    /// Three colour channels `[B, 3, H, W]`: RGB, or YUV where a stage's `colour_space` says so.
    Rgb,
    /// A mosaic's 2×2 blocks as half-size colour pixels `[B, 3, H/2, W/2]`.
    Packed,
    /// As an input: any of the above; as an output: the kind the stage was given.
    Any,
}

impl ImageKind {
    /// The words `validate` and `plugins inspect` use.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageKind::Mosaic => "mosaic [B, 1, H, W]",
            ImageKind::Rgb => "RGB [B, 3, H, W]",
            ImageKind::Packed => "packed [B, 3, H/2, W/2]",
            ImageKind::Any => "any",
        }
    }
}

/// One component a plugin provides.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct ComponentInfo {
    /// Stage, dataset or task model.
    pub kind: ComponentKind,
    /// The name configs use (`kind = "..."`).
    pub name: RString,
    /// One line on what it does.
    pub summary: RString,
    /// Its config keys.
    pub config_keys: RVec<ConfigKeyInfo>,
    /// What a stage takes (`Any` for datasets and task models).
    pub input: ImageKind,
    /// What a stage gives (`Any` for datasets and task models).
    pub output: ImageKind,
}

/// A named tensor, for parameters' state.
#[repr(C)]
#[derive(StableAbi)]
pub struct FfiNamedTensor {
    /// The parameter's or buffer's name.
    pub name: RString,
    /// Its value (owned by the receiver).
    pub tensor: TensorHandle,
}

/// A learnable parameter: a reference to the plugin's own tensor (same storage, same autograd leaf).
#[repr(C)]
#[derive(StableAbi)]
pub struct FfiParameter {
    /// The parameter's name, unique within its module.
    pub name: RString,
    /// The plugin's tensor itself, shared.
    pub tensor: TensorHandle,
    /// Whether the module's config asks for it to be learned.
    pub trainable: bool,
}

/// Where tensors live.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub struct FfiDevice {
    /// -1 for the CPU, else the CUDA device index.
    pub cuda_index: i64,
}

/// The floating-point precision of a module's parameters.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FfiFloatKind {
    /// 32-bit floats, the default.
    Float32,
    /// 64-bit floats, for gradient checks.
    Float64,
}

/// The colour filter array layout of a Bayer mosaic, named by its top-left 2×2 block, row by row.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, Choices)]
#[serde(rename_all = "UPPERCASE")]
pub enum CfaPattern {
    /// R G / G B
    Rggb,
    /// B G / G R
    Bggr,
    /// G R / B G
    Grbg,
    /// G B / R G
    Gbrg,
}

impl CfaPattern {
    /// The colour (0 = R, 1 = G, 2 = B) at each position of the 2×2 block, row-major.
    pub fn colours(self) -> [usize; 4] {
        match self {
            CfaPattern::Rggb => [0, 1, 1, 2],
            CfaPattern::Bggr => [2, 1, 1, 0],
            CfaPattern::Grbg => [1, 0, 2, 1],
            CfaPattern::Gbrg => [1, 2, 0, 1],
        }
    }

    /// Parses "RGGB", "BGGR", "GRBG" or "GBRG" (any case).
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_uppercase().as_str() {
            "RGGB" => Some(CfaPattern::Rggb),
            "BGGR" => Some(CfaPattern::Bggr),
            "GRBG" => Some(CfaPattern::Grbg),
            "GBRG" => Some(CfaPattern::Gbrg),
            _ => None,
        }
    }
}

/// Camera metadata of one raw sample, in the units of the mosaic (scaled to [0, 1] by the white level).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq)]
pub struct RawMetadata {
    /// The mosaic's CFA layout.
    pub cfa_pattern: CfaPattern,
    /// Black level per position of the 2×2 CFA block, row-major (not subtracted from the mosaic).
    pub black_level: [f32; 4],
    /// White-balance gains for R, G, B.
    pub white_balance: [f32; 3],
    /// Camera RGB → linear sRGB, row-major 3×3.
    pub colour_matrix: [f32; 9],
    /// The exposure the sample was taken at, in percent of full (the Raw-Microscopy scales).
    pub intensity: f32,
}

/// What a dataset asks of the task model.
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct FfiDatasetInfo {
    /// Class names for classification (sorted); `None` for segmentation.
    pub class_names: ROption<RVec<RString>>,
    /// Number of samples.
    pub len: usize,
    /// The class index of every sample (classification), so that splits need not decode the data;
    /// empty for segmentation, or when the dataset cannot tell without decoding.
    pub labels: RVec<u32>,
    /// What went wrong while opening but did not stop it (files skipped with `skip_invalid`).
    pub warnings: RVec<RString>,
}

/// One raw sample with its target.
#[repr(C)]
#[derive(StableAbi)]
pub struct FfiSample {
    /// H×W float mosaic in [0, 1], black level included.
    pub raw: TensorHandle,
    /// A class index (int64 scalar) or an H×W mask (int64, 0/1).
    pub target: TensorHandle,
    /// The camera's parameters for this sample.
    pub metadata: RawMetadata,
}

/// A differentiable module across the boundary: every stage and every task model is one.
#[sabi_trait]
pub trait FfiModule: Send {
    /// Runs the module; the input is owned by the callee, the output by the caller.
    fn forward(&mut self, input: TensorHandle) -> RResult<TensorHandle, RString>;
    /// The learnable parameters, shared with the module.
    fn parameters(&self) -> RResult<RVec<FfiParameter>, RString>;
    /// Switches between training and evaluation behaviour.
    fn set_train(&mut self, train: bool) -> RResult<(), RString>;
    /// Everything needed to restore the module: parameters and buffers, as copies.
    fn state(&self) -> RResult<RVec<FfiNamedTensor>, RString>;
    /// Restores values written by `state`.
    fn load_state(&mut self, state: RVec<FfiNamedTensor>) -> RResult<(), RString>;
    /// Moves parameters to a device and precision; parameters must be fetched again afterwards.
    fn to(&mut self, device: FfiDevice, kind: FfiFloatKind) -> RResult<(), RString>;
    /// The camera metadata of the samples of the next batches, one per sample, for stages whose
    /// config takes camera parameters from the data.
    fn set_camera(&mut self, cameras: RVec<RawMetadata>) -> RResult<(), RString>;
    /// `Some(r)`: output row `i` depends on input rows `i − r ..= i + r` only, so the module may be run
    /// on horizontal bands of an image, each starting at an even row (see `Module::row_reach`).
    fn row_reach(&self) -> RResult<ROption<u64>, RString>;
    /// Runs the module on a band: rows `first_row ..` of an image `full_height` rows high (see
    /// `Module::forward_band`).
    #[sabi(last_prefix_field)]
    fn forward_band(&mut self, input: TensorHandle, first_row: u64, full_height: u64)
        -> RResult<TensorHandle, RString>;
}

/// A dataset across the boundary.
#[sabi_trait]
pub trait FfiDataset: Send + Sync {
    /// Task, classes and length.
    fn info(&self) -> FfiDatasetInfo;
    /// The sample at `index` (0-based, below `info().len`).
    #[sabi(last_prefix_field)]
    fn sample(&self, index: usize) -> RResult<FfiSample, RString>;
}

/// An owned module object from a plugin.
pub type ModuleBox = FfiModule_TO<'static, RBox<()>>;
/// An owned dataset object from a plugin.
pub type DatasetBox = FfiDataset_TO<'static, RBox<()>>;

/// The root module every plugin exports: who it is and how to build its components.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginRootRef)))]
#[sabi(missing_field(panic))]
pub struct PluginRoot {
    /// The plugin's crate name.
    pub plugin_name: RStr<'static>,
    /// The plugin's crate version.
    pub plugin_version: RStr<'static>,
    /// The libtorch the plugin was built against.
    pub libtorch_version: RStr<'static>,
    /// [`crate::LIBTORCH_TAG`] of that libtorch.
    pub libtorch_tag: u64,
    /// Every component the plugin registered.
    pub components: extern "C" fn() -> RResult<RVec<ComponentInfo>, RString>,
    /// Builds a stage from its name and config (a TOML table, as text).
    pub build_stage: extern "C" fn(RStr<'_>, RStr<'_>) -> RResult<ModuleBox, RString>,
    /// Builds a dataset from its name and config.
    pub build_dataset: extern "C" fn(RStr<'_>, RStr<'_>) -> RResult<DatasetBox, RString>,
    /// Builds a task model from its name, config and the dataset's class count.
    pub build_task_model: extern "C" fn(RStr<'_>, RStr<'_>, usize) -> RResult<ModuleBox, RString>,
    /// Hands the plugin the host's log sink and the target to log under (the plugin's name): from
    /// then on the plugin's `tracing` events go to the host's subscriber (each plugin library has its
    /// own copy of `tracing`'s dispatcher).
    #[sabi(last_prefix_field)]
    pub set_log_sink: extern "C" fn(FfiLogSink, RStr<'_>),
}

/// The host's logging, as plain functions a plugin can call: whether an event of a level is wanted
/// for a target (the plugin's name), and the event itself. Levels: 1 error, 2 warn, 3 info, 4 debug,
/// 5 trace.
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct FfiLogSink {
    /// Whether the host's filter lets an event of `level` for `target` through.
    pub enabled: extern "C" fn(level: u8, target: RStr<'_>) -> bool,
    /// Logs `message` at `level` for `target`.
    pub log: extern "C" fn(level: u8, target: RStr<'_>, message: RStr<'_>),
}

impl RootModule for PluginRootRef {
    declare_root_module_statics! {PluginRootRef}
    const BASE_NAME: &'static str = "l2l_plugin";
    const NAME: &'static str = "l2l plugin API";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}
