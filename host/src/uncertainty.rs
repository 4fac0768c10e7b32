//! Bootstrap intervals for the experiments' verdicts (and the charts that draw them). A metric is a ratio of per-sample sums
//! (accuracy: correct / 1 per sample; IoU: intersection / union per image), so every number a report
//! states is recomputed on resampled data, at two levels: the training seeds (a seed's models — all its
//! folds — drawn with replacement, so that what training randomness does to the verdict is in the
//! interval), then the evaluated samples (each distinct sample drawn with replacement once per draw and
//! counted in every replicate that scored it: overlapping shuffle-split validation parts and a test part
//! shared by all models are not counted as independent). The same draw applies to every cell, pipeline
//! and corruption, so differences are paired. The statistic is recomputed on each draw — means over
//! replicates included — and the 2.5th and 97.5th percentiles of [`RESAMPLES`] draws bound its 95 %
//! interval. Seeded: a report is reproducible to the digit.

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
    /// "0.844 [0.801, 0.880]"; a statistic no resample moves is said so, not given a zero-width interval.
    pub fn show(&self) -> String {
        if self.low == self.high && self.low == self.value {
            format!(
                "{:.3} (the same on every resample: no seed or sample disagrees)",
                self.value
            )
        } else {
            format!("{:.3} [{:.3}, {:.3}]", self.value, self.low, self.high)
        }
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

/// One replicate's evaluation: the training seed its model trained with, and the samples (dataset
/// indices, in outcome order) it was scored on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unit {
    /// Which training seed (0-based): replicates of one seed are drawn together.
    pub seed: usize,
    /// The scored samples, in the order of the replicate's outcomes.
    pub samples: Vec<usize>,
}

impl Unit {
    /// Replicates of one seed on disjoint samples, `sizes[r]` each: results recorded before replicates
    /// named their samples (every fold then resampled on its own, as before).
    pub fn disjoint(sizes: &[usize]) -> Vec<Unit> {
        let mut next = 0;
        sizes
            .iter()
            .map(|&n| {
                next += n;
                Unit {
                    seed: 0,
                    samples: (next - n..next).collect(),
                }
            })
            .collect()
    }
}

/// One draw: per replicate, how often each of its samples counts, and how often the replicate's seed
/// was drawn.
pub struct Weights {
    samples: Vec<Vec<f64>>,
    multiplicity: Vec<f64>,
}

impl std::ops::Index<usize> for Weights {
    type Output = [f64];
    /// Replicate `r`'s sample counts.
    fn index(&self, r: usize) -> &[f64] {
        &self.samples[r]
    }
}

impl Weights {
    /// How often replicate `r`'s seed was drawn (0: left out of this draw).
    pub fn multiplicity(&self, r: usize) -> f64 {
        self.multiplicity[r]
    }
}

/// The resamples of a set of replicates.
pub struct Bootstrap {
    /// The data as they are (every weight 1).
    identity: Weights,
    draws: Vec<Weights>,
}

impl Bootstrap {
    /// [`RESAMPLES`] draws over `units`, from `seed`.
    pub fn new(units: &[Unit], seed: u64) -> Bootstrap {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let seeds = units.iter().map(|u| u.seed + 1).max().unwrap_or(0);
        let mut distinct: Vec<usize> = units.iter().flat_map(|u| u.samples.iter().copied()).collect();
        distinct.sort_unstable();
        distinct.dedup();
        // each replicate's samples as positions in `distinct`, found once for every draw
        let positions: Vec<Vec<usize>> = units
            .iter()
            .map(|u| {
                u.samples
                    .iter()
                    .map(|s| distinct.binary_search(s).expect("listed above"))
                    .collect()
            })
            .collect();
        let draws = (0..RESAMPLES)
            .map(|_| {
                let mut drawn_seeds = vec![1.0; seeds];
                if seeds > 1 {
                    drawn_seeds = vec![0.0; seeds];
                    for _ in 0..seeds {
                        drawn_seeds[rng.gen_range(0..seeds)] += 1.0;
                    }
                }
                let mut counts = vec![0.0; distinct.len()];
                for _ in 0..distinct.len() {
                    counts[rng.gen_range(0..distinct.len())] += 1.0;
                }
                Weights {
                    samples: positions
                        .iter()
                        .map(|unit| unit.iter().map(|&p| counts[p]).collect())
                        .collect(),
                    multiplicity: units.iter().map(|u| drawn_seeds[u.seed]).collect(),
                }
            })
            .collect();
        Bootstrap {
            identity: Weights {
                samples: units.iter().map(|u| vec![1.0; u.samples.len()]).collect(),
                multiplicity: vec![1.0; units.len()],
            },
            draws,
        }
    }

    /// `statistic` (of a draw's weights) on the data and its 95 % interval over the draws. A
    /// statistic that is not finite on a draw (a ratio over a zero) is left out of the interval.
    pub fn estimate(&self, statistic: impl Fn(&Weights) -> f64) -> Estimate {
        let value = statistic(&self.identity);
        let mut values: Vec<f64> = self.draws.iter().map(&statistic).filter(|v| v.is_finite()).collect();
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

/// Mean over replicates of the metric of `per_replicate[r]` (one outcome list per replicate) under
/// `weights`, each replicate counted as often as its seed was drawn; a replicate without outcomes
/// (not run) is left out.
pub fn mean_over_replicates(per_replicate: &[Vec<Outcome>], weights: &Weights) -> f64 {
    let (mut sum, mut count) = (0.0, 0.0);
    for (r, outcomes) in per_replicate.iter().enumerate().filter(|(_, o)| !o.is_empty()) {
        let m = weights.multiplicity(r);
        if m > 0.0 {
            sum += m * weighted_metric(outcomes, &weights[r]);
            count += m;
        }
    }
    sum / count.max(1.0)
}

/// Mean and sample standard deviation (0 for fewer than two values) of values (over folds, seeds, …).
pub fn mean_and_std(values: &[f64]) -> (f64, f64) {
    let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
    let var = if values.len() > 1 {
        values.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (values.len() - 1) as f64
    } else {
        0.0
    };
    (mean, var.sqrt())
}

/// The sample standard deviation over seeds of each seed's mean metric (its replicates' mean): the
/// spread training randomness alone gives; 0 with one seed. `seed_of[r]` is replicate r's seed.
pub fn between_seed_sd(per_replicate: &[Vec<Outcome>], seed_of: &[usize]) -> f64 {
    let seeds = seed_of.iter().map(|s| s + 1).max().unwrap_or(0);
    let means: Vec<f64> = (0..seeds)
        .filter_map(|seed| {
            let metrics: Vec<f64> = per_replicate
                .iter()
                .zip(seed_of)
                .filter(|(o, s)| **s == seed && !o.is_empty())
                .map(|(o, _)| weighted_metric(o, &vec![1.0; o.len()]))
                .collect();
            (!metrics.is_empty()).then(|| metrics.iter().sum::<f64>() / metrics.len() as f64)
        })
        .collect();
    mean_and_std(&means).1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcomes(correct: usize, total: usize) -> Vec<Outcome> {
        (0..total).map(|i| [f64::from(u8::from(i < correct)), 1.0]).collect()
    }

    /// Replicates `r` of seed `seeds[r]`, each scored on samples `0..n`.
    fn on_the_same_samples(seeds: &[usize], n: usize) -> Vec<Unit> {
        seeds
            .iter()
            .map(|&seed| Unit {
                seed,
                samples: (0..n).collect(),
            })
            .collect()
    }

    /// An accuracy of 0.8 on 400 samples: the bootstrap interval is the binomial one,
    /// p ± 1.96 √(p(1 − p)/n) = 0.8 ± 0.0392, to the bootstrap's own noise.
    #[test]
    fn a_proportions_interval_is_the_binomial_one() {
        let data = vec![outcomes(320, 400)];
        let estimate = Bootstrap::new(&Unit::disjoint(&[400]), 7).estimate(|w| mean_over_replicates(&data, w));
        let half_width = 1.96 * (0.8f64 * 0.2 / 400.0).sqrt();
        assert!((estimate.value - 0.8).abs() < 1e-12);
        assert!((estimate.low - (0.8 - half_width)).abs() < 0.006, "{estimate:?}");
        assert!((estimate.high - (0.8 + half_width)).abs() < 0.006, "{estimate:?}");
    }

    /// Certain outcomes have no spread, and the report says so instead of a zero-width interval; a
    /// paired difference of identical cells is exactly 0.
    #[test]
    fn degenerate_and_paired_cases_are_exact() {
        let all = vec![outcomes(50, 50), outcomes(50, 50)];
        let bootstrap = Bootstrap::new(&on_the_same_samples(&[0, 1], 50), 1);
        let certain = bootstrap.estimate(|w| mean_over_replicates(&all, w));
        assert_eq!((certain.value, certain.low, certain.high), (1.0, 1.0, 1.0));
        assert_eq!(
            certain.show(),
            "1.000 (the same on every resample: no seed or sample disagrees)"
        );
        let some = vec![outcomes(30, 50), outcomes(30, 50)];
        let difference = bootstrap.estimate(|w| mean_over_replicates(&some, w) - mean_over_replicates(&some, w));
        assert_eq!((difference.low, difference.high), (0.0, 0.0));
        // a difference of 10 of 50 samples, all in the same direction, is 0.2 on every draw's
        // expectation but varies with how often those samples are drawn
        let better = vec![outcomes(40, 50), outcomes(40, 50)];
        let gain = bootstrap.estimate(|w| mean_over_replicates(&better, w) - mean_over_replicates(&some, w));
        assert!(
            (gain.value - 0.2).abs() < 1e-12 && gain.low > 0.08 && gain.high < 0.32,
            "{gain:?}"
        );
        assert!(!gain.contains(0.0));
    }

    /// Two seeds whose models disagree completely — one right on every sample, one wrong on every
    /// sample — have mean 0.5; drawing the seeds gives (1, 1), (2, 0) or (0, 2) copies with
    /// probabilities ½, ¼, ¼, i.e. 0.5, 1 or 0: the 95 % interval is [0, 1] in closed form, where
    /// resampling samples alone would report 0.5 with no spread at all. With the seeds agreeing
    /// (both half right, on the same samples) the interval is the samples' only.
    #[test]
    fn outcomes_that_differ_between_seeds_widen_the_interval() {
        let units = on_the_same_samples(&[0, 1], 40);
        let bootstrap = Bootstrap::new(&units, 11);
        let disagreeing = vec![outcomes(40, 40), outcomes(0, 40)];
        let estimate = bootstrap.estimate(|w| mean_over_replicates(&disagreeing, w));
        assert_eq!((estimate.value, estimate.low, estimate.high), (0.5, 0.0, 1.0));
        assert_eq!(between_seed_sd(&disagreeing, &[0, 1]), 0.5f64.sqrt());
        let agreeing = vec![outcomes(20, 40), outcomes(20, 40)];
        let narrower = bootstrap.estimate(|w| mean_over_replicates(&agreeing, w));
        assert_eq!(narrower.value, 0.5);
        assert!(narrower.high - narrower.low < 0.4, "{narrower:?}");
        assert_eq!(between_seed_sd(&agreeing, &[0, 1]), 0.0);
    }

    /// Replicates that scored the same samples (overlapping shuffle splits, a shared test part) draw
    /// those samples once: two identical copies of one replicate give the interval of one, not the
    /// narrower one of twice the samples.
    #[test]
    fn shared_samples_are_not_counted_as_independent() {
        let data = vec![outcomes(30, 50), outcomes(30, 50)];
        let shared = Bootstrap::new(&on_the_same_samples(&[0, 0], 50), 5).estimate(|w| mean_over_replicates(&data, w));
        let one = Bootstrap::new(&Unit::disjoint(&[50]), 5).estimate(|w| mean_over_replicates(&data[..1], w));
        let disjoint = Bootstrap::new(&Unit::disjoint(&[50, 50]), 5).estimate(|w| mean_over_replicates(&data, w));
        let width = |e: Estimate| e.high - e.low;
        assert!((width(shared) - width(one)).abs() < 0.03, "{shared:?} vs {one:?}");
        assert!(width(disjoint) < width(shared) - 0.03, "{disjoint:?} vs {shared:?}");
    }

    #[test]
    fn the_same_seed_gives_the_same_interval() {
        let data = vec![outcomes(12, 20), outcomes(15, 20)];
        let a = Bootstrap::new(&Unit::disjoint(&[20, 20]), 3).estimate(|w| mean_over_replicates(&data, w));
        let b = Bootstrap::new(&Unit::disjoint(&[20, 20]), 3).estimate(|w| mean_over_replicates(&data, w));
        assert_eq!(a, b);
        assert!((a.value - 0.675).abs() < 1e-12);
    }
}
