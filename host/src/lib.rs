//! The l2l host: finds and loads plugins, assembles pipelines from configs and runs jobs on them.
//!
//! Modules depend one way: `config` → `plugins` → `data`, `datasets`, `pipeline` → `train` →
//! `experiments` → `run`, `export`, `bench`; `imageio`, `tracking` and `chart` are leaves. The binary (`main.rs`) only parses the command line and wires these together.
//!
//! Not for: image algorithms (plugins) or the ABI's definition (`l2l-plugin-api`).

pub mod bands;
pub mod bench;
pub mod chart;
pub mod config;
pub mod corruptions;
pub mod cuda;
pub mod data;
pub mod datasets;
pub mod experiments;
pub mod export;
pub mod imageio;
pub mod pipeline;
pub mod plugins;
pub mod run;
pub mod sweep;
pub mod tracking;
pub mod trust;
pub mod train;
