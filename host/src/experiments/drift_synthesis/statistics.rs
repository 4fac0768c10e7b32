//! A drift synthesis's verdicts with their bootstrap intervals ([`crate::uncertainty`]):
//! every cell, every drop, the mean pipeline-drift drop, each corruption's drop and the ratio of the
//! two. Every fold's validation samples are resampled once per draw and the draw applies to every
//! cell (all models of a fold are evaluated on the same samples), so drops and the ratio are paired.

use crate::train::config::Augmentation;
use crate::train::metrics::PredictionSummary;
use crate::uncertainty::{
    between_seed_sd, mean_over_replicates, weighted_metric, Bootstrap, Estimate, Outcome, Unit, Weights,
};
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// The per-fold values and per-sample outcomes behind a drift matrix, kept in `results.json` so that
/// sweeps can merge cells and recompute the intervals.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DriftRaw {
    /// The replicates trained (fold `r % n_splits` of training seed `r / n_splits`).
    pub folds: Vec<usize>,
    /// Per replicate (in `folds` order): its seed and the samples it was scored on, in outcome order
    /// (empty in results recorded before replicates named them: folds are then resampled apart).
    #[serde(default)]
    pub units: Vec<Unit>,
    /// Per training pipeline, per test pipeline, per replicate: the scored pass's truths and
    /// predictions in counts (baselines, collapsed models).
    #[serde(default)]
    pub summaries: Vec<Vec<Vec<PredictionSummary>>>,
    /// Whether the models were scored on a held-out test part (else on each fold's validation part).
    #[serde(default)]
    pub scored_on_test: bool,
    /// Per training pipeline, per test pipeline, the metric of each fold (in `folds` order).
    pub values: Vec<Vec<Vec<f64>>>,
    /// Per training pipeline, per test pipeline, per fold, each validation sample's outcome (in the
    /// fold's sample order, the same for every cell).
    #[serde(default)]
    pub outcomes: Vec<Vec<Vec<Vec<Outcome>>>>,
    /// The corruption baseline's outcomes, one entry per corruption and severity.
    #[serde(default)]
    pub corrupted: Vec<CorruptedOutcomes>,
    /// Intensity drift's outcomes, one entry per test intensity.
    #[serde(default)]
    pub intensities: Vec<IntensityOutcomes>,
    /// The augmentation the models trained with.
    pub augmentation: Augmentation,
}

/// Every model's outcomes behind its own pipeline on the validation samples at one light intensity.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct IntensityOutcomes {
    /// Percent of full.
    pub intensity: f64,
    /// Per training pipeline, per replicate, each scored sample's outcome.
    pub outcomes: Vec<Vec<Vec<Outcome>>>,
    /// Per training pipeline, per replicate: the pass's truths and predictions in counts.
    #[serde(default)]
    pub summaries: Vec<Vec<PredictionSummary>>,
}

/// Every model's outcomes behind its own pipeline with one corruption at one severity.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CorruptedOutcomes {
    /// The corruption's name.
    pub corruption: String,
    /// 1 to 5.
    pub severity: usize,
    /// Per training pipeline, per fold, each validation sample's outcome.
    pub outcomes: Vec<Vec<Vec<Outcome>>>,
}

/// The intervals of a drift synthesis.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DriftStatistics {
    /// Per training and test pipeline: the metric's mean over folds (`None`: no results, a sweep's
    /// missing job).
    pub cells: Vec<Vec<Option<Estimate>>>,
    /// Diagonal − cell, where the row's own pipeline is tested.
    pub drops: Vec<Vec<Option<Estimate>>>,
    /// The mean off-diagonal drop.
    pub mean_drop: Option<Estimate>,
    /// Per corruption: clean − corrupted on the model's own pipeline, mean over severities, pipelines
    /// and folds.
    pub corruption_drops: Vec<(String, Estimate)>,
    /// The mean over corruptions.
    pub mean_corruption_drop: Option<Estimate>,
    /// Mean corruption drop ÷ mean pipeline-drift drop.
    pub ratio: Option<Estimate>,
    /// Per test intensity, per training pipeline: the metric behind its own pipeline (mean over folds).
    #[serde(default)]
    pub intensities: Vec<(f64, Vec<Option<Estimate>>)>,
    /// Per training and test pipeline: the standard deviation between training seeds of each seed's
    /// mean over folds (0 with one seed).
    #[serde(default)]
    pub seed_sd: Vec<Vec<Option<f64>>>,
    /// How many training seeds the replicates came from.
    #[serde(default)]
    pub seeds: usize,
}

/// The bootstrap intervals of `raw`'s per-sample outcomes; `train` and `test` name the pipelines
/// (a row's own pipeline is the test column of the same name).
pub fn statistics(train: &[String], test: &[String], raw: &DriftRaw, seed: u64) -> Result<DriftStatistics> {
    let outcomes = &raw.outcomes;
    // a sweep's missing job leaves a fold of a row empty: folds are resampled where they exist
    let present = |i: usize, j: usize| {
        outcomes
            .get(i)
            .and_then(|row| row.get(j))
            .is_some_and(|cell| cell.iter().any(|f| !f.is_empty()))
    };
    let folds = outcomes.iter().flatten().map(Vec::len).max().unwrap_or(0);
    let fold_sizes: Vec<usize> = (0..folds)
        .map(|f| {
            outcomes
                .iter()
                .flatten()
                .find_map(|c| c.get(f).filter(|o| !o.is_empty()).map(Vec::len))
                .unwrap_or(0)
        })
        .collect();
    if fold_sizes.iter().all(|&n| n == 0) {
        bail!("no per-sample outcomes to resample");
    }
    let units = if raw.units.is_empty() {
        Unit::disjoint(&fold_sizes)
    } else {
        raw.units.clone()
    };
    if units.len() != folds
        || units
            .iter()
            .zip(&fold_sizes)
            .any(|(u, &n)| n != 0 && u.samples.len() != n)
    {
        bail!("the replicates' sample lists do not match their outcomes");
    }
    for cell in outcomes.iter().flatten() {
        if cell
            .iter()
            .enumerate()
            .any(|(f, o)| !o.is_empty() && o.len() != fold_sizes[f])
        {
            bail!("the cells were not evaluated on the same validation samples");
        }
    }
    let bootstrap = Bootstrap::new(&units, seed);
    let own: Vec<Option<usize>> = train.iter().map(|t| test.iter().position(|c| c == t)).collect();
    let cell = |i: usize, j: usize, w: &Weights| mean_over_replicates(&outcomes[i][j], w);

    let cells = (0..train.len())
        .map(|i| {
            (0..test.len())
                .map(|j| present(i, j).then(|| bootstrap.estimate(|w| cell(i, j, w))))
                .collect()
        })
        .collect();
    let drops = (0..train.len())
        .map(|i| {
            (0..test.len())
                .map(|j| {
                    own[i]
                        .filter(|&d| present(i, d) && present(i, j))
                        .map(|d| bootstrap.estimate(|w| cell(i, d, w) - cell(i, j, w)))
                })
                .collect()
        })
        .collect();
    let off_diagonal: Vec<(usize, usize, usize)> = (0..train.len())
        .flat_map(|i| {
            let own_pipeline = own[i];
            (0..test.len()).filter_map(move |j| own_pipeline.filter(|d| *d != j).map(|d| (i, d, j)))
        })
        .filter(|&(i, d, j)| present(i, d) && present(i, j))
        .collect();
    let mean_drift = |w: &Weights| {
        off_diagonal
            .iter()
            .map(|&(i, d, j)| cell(i, d, w) - cell(i, j, w))
            .sum::<f64>()
            / off_diagonal.len() as f64
    };
    let mean_drop = (!off_diagonal.is_empty()).then(|| bootstrap.estimate(mean_drift));

    // per corruption, its severities' outcomes
    let mut names: Vec<String> = raw.corrupted.iter().map(|c| c.corruption.clone()).collect();
    names.dedup();
    let corruption_drop = |name: &str, w: &Weights| -> f64 {
        let (mut sum, mut count) = (0.0, 0.0);
        for corrupted in raw.corrupted.iter().filter(|c| c.corruption == name) {
            for (i, per_fold) in corrupted.outcomes.iter().enumerate() {
                let Some(d) = own[i].filter(|&d| present(i, d)) else {
                    continue;
                };
                for (f, outcomes) in per_fold.iter().enumerate().filter(|(_, o)| !o.is_empty()) {
                    let m = w.multiplicity(f);
                    if m > 0.0 {
                        sum += m * (weighted_metric(&raw.outcomes[i][d][f], &w[f]) - weighted_metric(outcomes, &w[f]));
                        count += m;
                    }
                }
            }
        }
        sum / count.max(1.0)
    };
    let corruption_drops: Vec<(String, Estimate)> = names
        .iter()
        .map(|n| (n.clone(), bootstrap.estimate(|w| corruption_drop(n, w))))
        .collect();
    let mean_corruption = |w: &Weights| names.iter().map(|n| corruption_drop(n, w)).sum::<f64>() / names.len() as f64;
    let mean_corruption_drop = (!names.is_empty()).then(|| bootstrap.estimate(mean_corruption));
    let ratio = (mean_corruption_drop.is_some() && mean_drop.is_some())
        .then(|| bootstrap.estimate(|w| mean_corruption(w) / mean_drift(w)));
    let intensities = raw
        .intensities
        .iter()
        .map(|at| {
            (
                at.intensity,
                at.outcomes
                    .iter()
                    .map(|per_fold| {
                        (!per_fold.iter().all(Vec::is_empty))
                            .then(|| bootstrap.estimate(|w| mean_over_replicates(per_fold, w)))
                    })
                    .collect(),
            )
        })
        .collect();
    let seed_of: Vec<usize> = units.iter().map(|u| u.seed).collect();
    let seed_sd = (0..train.len())
        .map(|i| {
            (0..test.len())
                .map(|j| present(i, j).then(|| between_seed_sd(&outcomes[i][j], &seed_of)))
                .collect()
        })
        .collect();
    Ok(DriftStatistics {
        cells,
        drops,
        mean_drop,
        corruption_drops,
        mean_corruption_drop,
        ratio,
        intensities,
        seed_sd,
        seeds: seed_of.iter().map(|s| s + 1).max().unwrap_or(0),
    })
}
