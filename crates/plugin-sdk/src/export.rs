//! What `plugin!` expands to and the host calls: the registry of a plugin's components, the root
//! module, and the adapters that put components behind the FFI types with every error and panic
//! caught. Not for plugin code.

use crate::config::{describe_config, parse_config};
use crate::error::{PluginError, PluginResult};
use crate::module::{BuildDataset, BuildStage, BuildTaskModel, Dataset, Module};
use abi_stable::{
    prefix_type::PrefixTypeTrait,
    sabi_trait::TD_Opaque,
    std_types::{RBox, ROption, RResult, RStr, RString, RVec},
};
pub use l2l_plugin_api::ffi::PluginRootRef;
use l2l_plugin_api::ffi::{
    ComponentInfo, ComponentKind, ConfigKeyInfo, DatasetBox, FfiDataset, FfiDatasetInfo, FfiDataset_TO, FfiDevice,
    FfiFloatKind, FfiModule, FfiModule_TO, FfiNamedTensor, FfiParameter, FfiSample, ImageKind, ModuleBox, PluginRoot,
    RawMetadata,
};
use l2l_plugin_api::tensor::TensorHandle;
use l2l_plugin_api::Band;
use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use tch::{Device, Kind};

pub use abi_stable;
pub use inventory;
/// Writes the library header abi_stable's loader looks for, naming `abi_stable` by the path given.
pub use plugin_sdk_derive::library_header;

/// How a registered component is built.
pub enum Builder {
    /// From the config text.
    Stage(fn(&str) -> PluginResult<Box<dyn Module>>),
    /// From the config text.
    Dataset(fn(&str) -> PluginResult<Box<dyn Dataset>>),
    /// From the config text and the class count.
    TaskModel(fn(&str, usize) -> PluginResult<Box<dyn Module>>),
}

/// One component, registered inside its plugin with `inventory::submit!` (which `plugin!` writes).
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
    /// Registers stage `S` under its name.
    pub const fn stage<S: BuildStage>() -> Self {
        Self {
            name: S::NAME,
            summary: S::SUMMARY,
            config_keys: describe_config::<S::Config>,
            builder: Builder::Stage(build_stage::<S>),
            input: S::INPUT,
            output: S::OUTPUT,
        }
    }

    /// Registers dataset `D` under its name.
    pub const fn dataset<D: BuildDataset>() -> Self {
        Self {
            name: D::NAME,
            summary: D::SUMMARY,
            config_keys: describe_config::<D::Config>,
            builder: Builder::Dataset(build_dataset::<D>),
            input: ImageKind::Any,
            output: ImageKind::Any,
        }
    }

    /// Registers task model `M` under its name.
    pub const fn task_model<M: BuildTaskModel>() -> Self {
        Self {
            name: M::NAME,
            summary: M::SUMMARY,
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
        guarded(|| {
            self.0.set_camera(&cameras);
            Ok(())
        })
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

/// The root module of the plugin `name` (`version`): what the library header hands the host.
pub fn root_module(name: &'static str, version: &'static str) -> PluginRootRef {
    install_panic_hook();
    PluginRoot {
        plugin_name: RStr::from_str(name),
        plugin_version: RStr::from_str(version),
        libtorch_version: RStr::from_str(l2l_plugin_api::LIBTORCH_VERSION),
        libtorch_tag: l2l_plugin_api::LIBTORCH_TAG,
        components: ffi_components,
        build_stage: ffi_build_stage,
        build_dataset: ffi_build_dataset,
        build_task_model: ffi_build_task_model,
        set_log_sink: l2l_plugin_api::logging::ffi_set_log_sink,
    }
    .leak_into_prefix()
}
