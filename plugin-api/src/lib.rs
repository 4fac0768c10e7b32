//! The stable ABI between `l2l-host` and its plugins: the abi_stable-checked types a plugin library
//! exports (its root module, its components, their config keys), the libtorch tensor handle, and the
//! log forwarding. Small on purpose: every change here is a new plugin API version.
//!
//! Not for: writing plugins (the traits, config parsing, registration and the `plugin!` macro are
//! `l2l-plugin-sdk`), algorithms (`l2l-ops`, the plugins), or loading (`l2l-host`).
//!
//! What is checked when the host loads a plugin: the abi_stable version, this crate's version
//! (semver-compatible), the layout of every type reachable from [`ffi::PluginRoot`], and the libtorch
//! version (see [`tensor`]).

pub mod band;
pub mod ffi;
pub mod logging;
pub mod tensor;

pub use band::Band;
pub use ffi::{CfaPattern, ComponentKind, ImageKind, RawMetadata};
pub use tensor::{TensorHandle, LIBTORCH_TAG, LIBTORCH_VERSION};
