//! Drift forensics (`[job] kind = "forensics"`): a model trained behind a parametrized pipeline at its
//! defaults is frozen; the pipeline's parameters (all, or one stage's) are searched for values that
//! raise the task loss while the output stays close to the default output:
//! −task_loss + w · distance(adversarial output, default output).

mod config;
mod images;
mod report;
mod run;
mod search;

pub use config::{Distance, ForensicsConfig};
pub use report::{AttackedParameter, ForensicsResult, ParameterAttribution};
pub use run::{check, run, training};
