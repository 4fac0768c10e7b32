//! Drift optimisation (`[job] kind = "optimisation"`): the same task model trained with each
//! processing mode (parametrized, static, neural_network, none) on the same data and folds;
//! validation curves, mean ± std over folds.

mod config;
mod report;
mod run;

pub use config::OptimisationConfig;
pub use report::ModeCurve;
pub use run::{check, run, trainings};
