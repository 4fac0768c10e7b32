//! The stable ABI between `l2l-host` and its plugins: differentiable ISP stages, datasets and task
//! models, each built inside a plugin library from its config and used by the host through
//! abi_stable-checked types.
//!
//! Not for: algorithms (those live in the plugins and in `l2l-ops`), or the host's loading and
//! discovery (in `l2l-host`).
//!
//! A plugin is a `cdylib` crate that implements [`author::Module`] (stages, task models) or
//! [`author::Dataset`], registers each component with `inventory::submit!` and calls
//! [`export_plugin!`] once:
//!
//! ```ignore
//! inventory::submit! { ComponentRegistration::stage::<Gamma>("gamma", "display gamma x^(1/γ)") }
//! l2l_plugin_api::export_plugin!();
//! ```
//!
//! What is checked when the host loads a plugin: the abi_stable version, this crate's version
//! (semver-compatible), the layout of every type reachable from [`ffi::PluginRoot`], and the libtorch
//! version (see [`tensor`]).

pub mod author;
pub mod ffi;
pub mod logging;
pub mod tensor;

pub use author::{
    expect_mosaic, expect_rgb, parse_config, Band, BuildDataset, BuildStage, BuildTaskModel, CameraSource,
    ComponentConfig, ComponentRegistration, ConfigKey, Dataset, Module, Parameter, ParameterSet, PluginError,
    PluginResult, Sample,
};
/// `#[derive(ComponentConfig)]`: the config keys, docs and required flags from the struct's fields.
pub use component_config_derive::ComponentConfig;
pub use ffi::{CfaPattern, ComponentKind, ImageKind, RawMetadata};
pub use tensor::{TensorHandle, LIBTORCH_TAG, LIBTORCH_VERSION};

/// What [`export_plugin!`] expands to needs these; not for direct use.
#[doc(hidden)]
pub mod reexports {
    pub use abi_stable;
    pub use inventory;
}

/// `tracing`, as the plugin API forwards it to the host: plugins log with `l2l_plugin_api::tracing`'s
/// macros (or their own `tracing` of the same version) and `-v` / `L2L_LOG` apply to them, with the
/// plugin's crate name (`-` as `_`) as the target.
pub use tracing;

/// Exports the plugin's root module, naming the plugin after its crate. Call once, in `lib.rs`; the
/// plugin crate needs `abi_stable` as a direct dependency (the export attribute names it).
#[macro_export]
macro_rules! export_plugin {
    () => {
        /// The root module the host loads.
        #[$crate::reexports::abi_stable::export_root_module]
        pub fn l2l_plugin_root() -> $crate::ffi::PluginRootRef {
            use $crate::reexports::abi_stable::prefix_type::PrefixTypeTrait;
            $crate::author::install_panic_hook();
            $crate::ffi::PluginRoot {
                plugin_name: $crate::reexports::abi_stable::std_types::RStr::from_str(env!("CARGO_PKG_NAME")),
                plugin_version: $crate::reexports::abi_stable::std_types::RStr::from_str(env!("CARGO_PKG_VERSION")),
                libtorch_version: $crate::reexports::abi_stable::std_types::RStr::from_str($crate::LIBTORCH_VERSION),
                libtorch_tag: $crate::LIBTORCH_TAG,
                components: $crate::author::ffi_components,
                build_stage: $crate::author::ffi_build_stage,
                build_dataset: $crate::author::ffi_build_dataset,
                build_task_model: $crate::author::ffi_build_task_model,
                set_log_sink: $crate::logging::ffi_set_log_sink,
            }
            .leak_into_prefix()
        }
    };
}

/// Implements [`Module::parameter_set`] and [`Module::parameter_set_mut`] for a module that keeps its
/// parameters in the field `$field`: `l2l_plugin_api::parameters_in!(params);` inside `impl Module`.
#[macro_export]
macro_rules! parameters_in {
    ($field:ident) => {
        fn parameter_set(&self) -> &$crate::ParameterSet {
            &self.$field
        }
        fn parameter_set_mut(&mut self) -> &mut $crate::ParameterSet {
            &mut self.$field
        }
    };
}
