//! Writing an l2l plugin: implement [`Module`] + [`BuildStage`] (a stage), [`Module`] +
//! [`BuildTaskModel`] (a task model) or [`Dataset`] + [`BuildDataset`] (a data set), give its config a
//! `#[derive(ComponentConfig)]`, and name every component once in [`plugin!`]:
//!
//! ```ignore
//! l2l_plugin_sdk::plugin! { stages: [Gamma, Clip], datasets: [Folder] }
//! ```
//!
//! A plugin's `Cargo.toml` names this crate, `tch` and `serde`; the stable interface the host checks
//! when it loads the library (FFI types, tensor handles, logging) is `l2l-plugin-api`, which this
//! crate builds on and which plugin code never needs to name.
//!
//! Not for: the host's side of loading (in `l2l-host`), or algorithms (in `l2l-ops`).

// the derive names `::l2l_plugin_sdk`, this crate's own tests included
extern crate self as l2l_plugin_sdk;

pub mod camera;
pub mod config;
pub mod error;
#[doc(hidden)]
pub mod export;
pub mod module;

pub use camera::{CameraSource, CfaKeys};
pub use config::{parse_config, ComponentConfig, ConfigKey};
pub use error::{PluginError, PluginResult};
pub use l2l_plugin_api::{Band, CfaPattern, ImageKind, RawMetadata};
pub use module::{
    expect_mosaic, expect_rgb, BuildDataset, BuildStage, BuildTaskModel, Dataset, Module, Parameter, ParameterSet,
    Sample,
};
/// `#[derive(ComponentConfig)]`: the config keys, docs, required flags, ranges and choices from the
/// struct's fields; `#[derive(Choices)]`: the words an enum key takes.
pub use plugin_sdk_derive::{Choices, ComponentConfig};

/// `tracing`, as the plugin API forwards it to the host: plugins log with `l2l_plugin_sdk::tracing`'s
/// macros (or their own `tracing` of the same version) and `-v` / `L2L_LOG` apply to them, with the
/// plugin's crate name (`-` as `_`) as the target.
pub use tracing;

/// Registers the plugin's components and exports the library's root module, naming the plugin
/// after its crate. Once per plugin, in `lib.rs`; each list is optional, in this order:
/// `plugin! { stages: [A, B], datasets: [C], task_models: [D] }`.
#[macro_export]
macro_rules! plugin {
    ($(stages: [$($stage:ty),* $(,)?])? $(,)? $(datasets: [$($dataset:ty),* $(,)?])? $(,)? $(task_models: [$($model:ty),* $(,)?])? $(,)?) => {
        $($(
            $crate::export::inventory::submit! { $crate::export::ComponentRegistration::stage::<$stage>() }
        )*)?
        $($(
            $crate::export::inventory::submit! { $crate::export::ComponentRegistration::dataset::<$dataset>() }
        )*)?
        $($(
            $crate::export::inventory::submit! { $crate::export::ComponentRegistration::task_model::<$model>() }
        )*)?

        /// The root module the host loads.
        fn l2l_plugin_root() -> $crate::export::PluginRootRef {
            $crate::export::root_module(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
        }
        $crate::export::library_header!($crate::export::abi_stable, l2l_plugin_root, $crate::export::PluginRootRef);
    };
}

/// Declares that a module reads camera parameters from the data, kept in its [`CameraSource`] field
/// `$field`: `l2l_plugin_sdk::camera_in!(camera);` inside `impl Module`.
#[macro_export]
macro_rules! camera_in {
    ($field:ident) => {
        fn camera_source(&mut self) -> ::core::option::Option<&mut $crate::CameraSource> {
            ::core::option::Option::Some(&mut self.$field)
        }
    };
}

/// Implements [`Module::parameter_set`] and [`Module::parameter_set_mut`] for a module that keeps its
/// parameters in the field `$field`: `l2l_plugin_sdk::parameters_in!(params);` inside `impl Module`.
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
