//! The l2l host: finds and loads plugins, assembles pipelines from configs and runs jobs on them.
//!
//! Modules depend one way (a module uses only those listed before it; `tests/module_graph.rs`
//! checks that no file and no folder imports in a circle, here and in every library crate):
//! - leaves: `imageio`, `trust`, `cuda`, `console` (logging to stderr), `uncertainty` (bootstrap
//!   intervals over per-sample outcomes);
//! - `device` (which device, whether usable) → `config` (the loader and the top-level shape, component
//!   and pipeline specs) → `plugins` (discovery, loading, handles) → `pipeline` (stages built, checked
//!   to fit, run) → `bands`, `data` (splits and the loader; `data::datasets` opens a data set),
//!   `tracking`;
//! - `train` (the job context, the training engine and its config) → `experiments` (one folder per
//!   experiment: config, run, report; drift synthesis keeps its corruptions) → `run` (`[job]` planned
//!   and dispatched; the pipeline job and its test chart) → `sweep`;
//! - `export` (with its sharing planner) and `bench` use `config`, `plugins`, `pipeline` (and `bands`,
//!   `train::optim`);
//! - `serve` (the browser workbench) uses `config`, `plugins`, `pipeline`, `data`, `train`, `run`.
//!
//! The binary (`main.rs`, `cli/`) only parses the command line and hands each subcommand to one
//! function. Not for: image algorithms (plugins) or the ABI's definition (`l2l-plugin-api`).

pub mod bands;
pub mod bench;
pub mod config;
pub mod console;
pub mod cuda;
pub mod data;
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
