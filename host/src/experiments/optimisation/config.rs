//! The optimisation comparison's `[job]` table.

use crate::train::config::{default_output_dir, ProcessingMode, TrainConfig};
use serde::Deserialize;
use std::path::PathBuf;

/// A drift-optimisation experiment: `[job] kind = "optimisation"`, the modes, and `[job.train]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimisationConfig {
    /// The processing modes to compare (default: parametrized, static, neural_network, none).
    #[serde(default = "default_modes")]
    pub modes: Vec<ProcessingMode>,
    /// The fixed pipeline of `static`.
    pub static_pipeline: PathBuf,
    /// The learnable pipeline of `parametrized`.
    pub parametrized_pipeline: PathBuf,
    /// Keys of the `processor_nn` stage of `neural_network` (default: its defaults, CFA from metadata).
    #[serde(default)]
    pub neural_processor: Option<toml::Table>,
    /// How each mode trains (its `mode` is set per run).
    pub train: TrainConfig,
    /// Parent of the experiment directory.
    #[serde(default = "default_output_dir")]
    pub output_dir: PathBuf,
    /// The experiment directory is named `NAME-N`.
    #[serde(default = "default_optimisation_name")]
    pub name: String,
}

fn default_modes() -> Vec<ProcessingMode> {
    vec![
        ProcessingMode::Parametrized,
        ProcessingMode::Static,
        ProcessingMode::NeuralNetwork,
        ProcessingMode::None,
    ]
}
fn default_optimisation_name() -> String {
    "optimisation".into()
}
