//! The l2l host: finds and loads plugins, assembles pipelines from configs and runs jobs on them.
//!
//! Modules depend one way (a module uses only those listed before it; `tests/module_graph.rs`
//! checks that no file and no folder imports in a circle, here and in every library crate):
//! - leaves: `imageio`, `trust`, `cuda`, `chart`, `corruptions`, `console` (logging to stderr),
//!   `uncertainty` (bootstrap intervals over per-sample outcomes);
//! - `device` (which device, whether usable) → `config` (the loader and the top-level shape, component
//!   and pipeline specs) → `plugins` (discovery, loading, handles) → `pipeline` (stages built, checked
//!   to fit, run) → `bands`, `data`, `datasets`, `tracking`;
//! - `train` (the job context, the training engine and its config) → `experiments` (one folder per
//!   experiment: config, run, report) → `run` (`[job]` parsed and dispatched) → `sweep`;
//! - `export` and `bench` use `config`, `plugins`, `pipeline` (and `bands`, `train::optim`);
//! - `serve` (the browser workbench) uses `config`, `plugins`, `pipeline`, `datasets`, `train`, `run`.
//!
//! The binary (`main.rs`, `cli/`) only parses the command line and hands each subcommand to one
//! function. Not for: image algorithms (plugins) or the ABI's definition (`l2l-plugin-api`).

pub mod bands;
pub mod bench;
pub mod chart;
pub mod config;
pub mod console;
pub mod corruptions;
pub mod cuda;
pub mod data;
pub mod datasets;
pub mod device;
pub mod download;
pub mod experiments;
pub mod export;
pub mod imageio;
pub mod pipeline;
pub mod plugins;
pub mod predict;
pub mod run;
pub mod serve;
pub mod sweep;
pub mod tracking;
pub mod train;
pub mod trust;
pub mod uncertainty;
