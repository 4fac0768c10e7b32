//! Drift synthesis (`[job] kind = "drift_synthesis"`): train behind each of several pipelines, test
//! every trained model behind every pipeline; the matrix of the metric and the drop matrix (diagonal
//! minus entry) show how much a change of processing costs the model, next to the common-corruption
//! baseline.

mod config;
pub mod corruptions;
mod report;
mod run;
mod statistics;

pub use config::{CorruptionBaseline, DriftSynthesisConfig};
pub use report::{write_report, DriftResults};
pub use run::{check, run, trainings};
pub use statistics::{CorruptedOutcomes, DriftRaw, DriftStatistics, IntensityOutcomes};
