//! The experiments users come for, each a `[job]` kind of `l2l-host run` and a folder here with its
//! config, run and report:
//!
//! - **drift synthesis** ([`drift_synthesis`]): train behind each of several pipelines, test every
//!   trained model behind every pipeline; the matrix of the metric and the drop matrix.
//! - **drift forensics** ([`forensics`]): a model trained behind a parametrized pipeline at its
//!   defaults is frozen; the pipeline's parameters are searched for values that raise the task loss
//!   while the output stays close to the default output.
//! - **drift optimisation** ([`optimisation`]): the same task model trained with each processing mode;
//!   validation curves over folds.
//! - **the suite** ([`suite`]): several of them on one job context, with one report.
//!
//! This file holds what they share: the metric matrices and their statistics over folds; the
//! bootstrap intervals every verdict carries are computed by [`crate::uncertainty`].
//! Results go to a new experiment directory: `results.json`, PNG plots and `report.md`.

pub mod drift_synthesis;
pub mod forensics;
pub mod optimisation;
pub mod suite;

use crate::train::metrics::PredictionSummary;
use crate::uncertainty::mean_and_std;
use std::path::Path;

/// A matrix of a metric over folds: rows = training pipeline, columns = test pipeline.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DriftMatrix {
    /// Row and column names (pipeline file stems).
    pub train: Vec<String>,
    /// Column names.
    pub test: Vec<String>,
    /// The metric.
    pub metric: String,
    /// Mean over folds.
    pub mean: Vec<Vec<f64>>,
    /// Standard deviation over folds (0 with one fold).
    pub std: Vec<Vec<f64>>,
}

impl DriftMatrix {
    /// Drop of row i's model when tested behind column j instead of its own pipeline: mean[i][i] −
    /// mean[i][j] (only where the test pipeline of the diagonal exists).
    pub fn drops(&self) -> Vec<Vec<Option<f64>>> {
        self.mean
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let own = self.test.iter().position(|t| *t == self.train[i]).map(|j| row[j]);
                row.iter().map(|v| own.map(|own| own - v)).collect()
            })
            .collect()
    }

    /// The mean of the off-diagonal drops.
    pub fn mean_drop(&self) -> Option<f64> {
        let drops: Vec<f64> = self
            .drops()
            .iter()
            .enumerate()
            .flat_map(|(i, row)| {
                let own = self.train[i].clone();
                row.iter()
                    .zip(&self.test)
                    .filter(move |(_, t)| **t != own)
                    .filter_map(|(d, _)| *d)
                    .collect::<Vec<_>>()
            })
            .collect();
        (!drops.is_empty()).then(|| drops.iter().sum::<f64>() / drops.len() as f64)
    }
}

/// A pipeline's name: its file's stem.
pub fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A drift matrix from per-fold values (mean and sample standard deviation over folds).
pub fn matrix_from_values(
    train: Vec<String>,
    test: Vec<String>,
    metric: String,
    values: &[Vec<Vec<f64>>],
) -> DriftMatrix {
    DriftMatrix {
        train,
        test,
        metric,
        mean: values
            .iter()
            .map(|row| row.iter().map(|v| mean_and_std(v).0).collect())
            .collect(),
        std: values
            .iter()
            .map(|row| row.iter().map(|v| mean_and_std(v).1).collect())
            .collect(),
    }
}

/// "one class (index 2) for every sample in 3 of 4 models", when any replicate collapsed.
pub fn collapsed(summaries: &[PredictionSummary]) -> Option<String> {
    let collapsed: Vec<String> = summaries.iter().filter_map(PredictionSummary::collapse).collect();
    let first = collapsed.first()?;
    Some(format!("{first} in {} of {} models", collapsed.len(), summaries.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_are_the_diagonal_minus_the_entry() {
        let matrix = DriftMatrix {
            train: vec!["a".into(), "b".into()],
            test: vec!["a".into(), "b".into(), "c".into()],
            metric: "accuracy".into(),
            mean: vec![vec![0.9, 0.7, 0.8], vec![0.6, 0.95, 0.5]],
            std: vec![vec![0.0; 3]; 2],
        };
        let drops = matrix.drops();
        assert_eq!(drops[0][0], Some(0.0));
        assert!((drops[0][1].unwrap() - 0.2).abs() < 1e-12);
        assert!((drops[1][2].unwrap() - 0.45).abs() < 1e-12);
        // off-diagonal: 0.2, 0.1, 0.35, 0.45
        assert!((matrix.mean_drop().unwrap() - 0.275).abs() < 1e-12);
    }
}
