//! Bootstrap intervals for the experiments' verdicts (and the charts that draw them). A metric is a ratio of per-sample sums
//! (accuracy: correct / 1 per sample; IoU: intersection / union per image), so every number a report
//! states is recomputed on resampled validation samples: each fold's samples are drawn with
//! replacement (the same draw for every cell, pipeline and corruption that saw those samples, so
//! differences are paired), the statistic is recomputed — means over folds included — and the 2.5th
//! and 97.5th percentiles of [`RESAMPLES`] draws bound its 95 % interval. Seeded: a report is
//! reproducible to the digit.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// One sample's part of the main metric: numerator and denominator — correct (0 or 1) and 1 for
/// accuracy, intersection and union (pixels) for IoU — so that the metric of any set of samples is
/// Σ numerators / Σ denominators (what the bootstrap resamples).
pub type Outcome = [f64; 2];

/// Bootstrap draws per interval.
pub const RESAMPLES: usize = 2000;

/// A statistic with its 95 % bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// On the samples as they are.
    pub value: f64,
    /// 2.5th percentile over resamples.
    pub low: f64,
    /// 97.5th percentile over resamples.
    pub high: f64,
}

impl Estimate {
    /// "0.844 [0.801, 0.880]".
    pub fn show(&self) -> String {
        format!("{:.3} [{:.3}, {:.3}]", self.value, self.low, self.high)
    }

    /// Whether the interval holds `x`: then the data do not tell the statistic from `x`.
    pub fn contains(&self, x: f64) -> bool {
        self.low <= x && x <= self.high
    }
}

/// The metric of outcomes with each sample counted `weights[s]` times; 1 when nothing is counted in
/// the denominator (no sample, or masks and predictions all empty — as the metrics do).
pub fn weighted_metric(outcomes: &[Outcome], weights: &[f64]) -> f64 {
    let (mut numerator, mut denominator) = (0.0, 0.0);
    for (outcome, weight) in outcomes.iter().zip(weights) {
        numerator += weight * outcome[0];
        denominator += weight * outcome[1];
    }
    if denominator > 0.0 {
        numerator / denominator
    } else {
        1.0
    }
}

/// The resamples of a set of folds: per draw, per fold, how often each validation sample was drawn.
pub struct Bootstrap {
    /// The samples as they are (every weight 1).
    identity: Vec<Vec<f64>>,
    draws: Vec<Vec<Vec<f64>>>,
}

impl Bootstrap {
    /// [`RESAMPLES`] draws for folds of `fold_sizes` validation samples, from `seed`.
    pub fn new(fold_sizes: &[usize], seed: u64) -> Bootstrap {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let draws = (0..RESAMPLES)
            .map(|_| {
                fold_sizes
                    .iter()
                    .map(|&n| {
                        let mut counts = vec![0.0; n];
                        for _ in 0..n {
                            counts[rng.gen_range(0..n)] += 1.0;
                        }
                        counts
                    })
                    .collect()
            })
            .collect();
        Bootstrap {
            identity: fold_sizes.iter().map(|&n| vec![1.0; n]).collect(),
            draws,
        }
    }

    /// `statistic` (of per-fold sample weights) on the samples and its 95 % interval over the draws.
    /// A statistic that is not finite on a draw (a ratio over a zero) is left out of the interval.
    pub fn estimate(&self, statistic: impl Fn(&[Vec<f64>]) -> f64) -> Estimate {
        let value = statistic(&self.identity);
        let mut values: Vec<f64> = self
            .draws
            .iter()
            .map(|w| statistic(w))
            .filter(|v| v.is_finite())
            .collect();
        values.sort_by(f64::total_cmp);
        let (low, high) = if values.is_empty() {
            (f64::NAN, f64::NAN)
        } else {
            (percentile(&values, 0.025), percentile(&values, 0.975))
        };
        Estimate { value, low, high }
    }
}

/// The `q` quantile of sorted `values`, interpolated linearly between order statistics.
fn percentile(values: &[f64], q: f64) -> f64 {
    let position = q * (values.len() - 1) as f64;
    let (below, above) = (position.floor() as usize, position.ceil() as usize);
    values[below] + (values[above] - values[below]) * (position - below as f64)
}

/// Mean over folds of the metric of `per_fold[f]` (one outcome list per fold) under `weights`; a
/// fold without outcomes (not run) is left out.
pub fn mean_over_folds(per_fold: &[Vec<Outcome>], weights: &[Vec<f64>]) -> f64 {
    let run: Vec<f64> = per_fold
        .iter()
        .zip(weights)
        .filter(|(o, _)| !o.is_empty())
        .map(|(o, w)| weighted_metric(o, w))
        .collect();
    run.iter().sum::<f64>() / run.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcomes(correct: usize, total: usize) -> Vec<Outcome> {
        (0..total).map(|i| [f64::from(u8::from(i < correct)), 1.0]).collect()
    }

    /// An accuracy of 0.8 on 400 samples: the bootstrap interval is the binomial one,
    /// p ± 1.96 √(p(1 − p)/n) = 0.8 ± 0.0392, to the bootstrap's own noise.
    #[test]
    fn a_proportions_interval_is_the_binomial_one() {
        let data = vec![outcomes(320, 400)];
        let estimate = Bootstrap::new(&[400], 7).estimate(|w| mean_over_folds(&data, w));
        let half_width = 1.96 * (0.8f64 * 0.2 / 400.0).sqrt();
        assert!((estimate.value - 0.8).abs() < 1e-12);
        assert!((estimate.low - (0.8 - half_width)).abs() < 0.006, "{estimate:?}");
        assert!((estimate.high - (0.8 + half_width)).abs() < 0.006, "{estimate:?}");
    }

    /// Certain outcomes have no spread; a paired difference of identical cells is exactly 0.
    #[test]
    fn degenerate_and_paired_cases_are_exact() {
        let all = vec![outcomes(50, 50)];
        let bootstrap = Bootstrap::new(&[50], 1);
        assert_eq!(
            bootstrap.estimate(|w| mean_over_folds(&all, w)),
            Estimate {
                value: 1.0,
                low: 1.0,
                high: 1.0
            }
        );
        let some = vec![outcomes(30, 50)];
        let difference = bootstrap.estimate(|w| mean_over_folds(&some, w) - mean_over_folds(&some, w));
        assert_eq!((difference.low, difference.high), (0.0, 0.0));
        // a difference of 10 of 50 samples, all in the same direction, is 0.2 on every draw's
        // expectation but varies with how often those samples are drawn
        let better = vec![outcomes(40, 50)];
        let gain = bootstrap.estimate(|w| mean_over_folds(&better, w) - mean_over_folds(&some, w));
        assert!(
            (gain.value - 0.2).abs() < 1e-12 && gain.low > 0.08 && gain.high < 0.32,
            "{gain:?}"
        );
        assert!(!gain.contains(0.0));
    }

    #[test]
    fn the_same_seed_gives_the_same_interval() {
        let data = vec![outcomes(12, 20), outcomes(15, 20)];
        let a = Bootstrap::new(&[20, 20], 3).estimate(|w| mean_over_folds(&data, w));
        let b = Bootstrap::new(&[20, 20], 3).estimate(|w| mean_over_folds(&data, w));
        assert_eq!(a, b);
        assert!((a.value - 0.675).abs() < 1e-12);
    }
}
