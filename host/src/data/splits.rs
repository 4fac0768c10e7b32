//! Which samples train, which validate and which are held out, for every fold and training seed.
//!
//! Two ways to make folds: the published one, scikit-learn's `StratifiedShuffleSplit` (classification:
//! every class split in the same proportion) and `ShuffleSplit` (segmentation) — `n_splits` independent
//! seeded shuffles, each cut at `train_size`, whose validation parts overlap — and `kfold`
//! (`StratifiedKFold` / `KFold` with shuffling): `n_splits` disjoint validation folds, each sample
//! validated exactly once. An optional test part (`test_fraction`, stratified for classification) is cut
//! off first, with its own seed, and never trains or validates: the folds are made from the rest, and
//! every model is scored on it. Each fold is repeated once per training seed (a replicate); the split
//! itself depends on `seed` only, so every seed trains on the same samples.

use anyhow::{bail, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How the folds are made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SplitKind {
    /// `n_splits` independent shuffles cut at `train_size` (the published runs); validation parts
    /// overlap between folds.
    #[default]
    Shuffle,
    /// `n_splits` disjoint validation folds covering the samples (train on the other folds).
    Kfold,
}

/// What decides the splits of a training: the `[job]` keys, gathered.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitPlan {
    /// Shuffle splits or k-fold.
    pub kind: SplitKind,
    /// Folds.
    pub n_splits: usize,
    /// Fraction that trains in a shuffle split (k-fold trains on the other folds).
    pub train_size: f64,
    /// Fraction held out as the test part (0: none).
    pub test_fraction: f64,
    /// Seed of the test part and the folds.
    pub seed: u64,
    /// The training seeds: each fold trains once per seed.
    pub training_seeds: Vec<u64>,
}

/// One replicate: a fold's samples and the training seed it trains with (each list sorted).
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Samples to train on.
    pub train: Vec<usize>,
    /// Samples to validate on (every epoch's curves).
    pub validation: Vec<usize>,
    /// The held-out test part, the same for every replicate (empty without one).
    pub test: Vec<usize>,
    /// The fold (0 .. n_splits).
    pub fold: usize,
    /// Which training seed (0 .. number of seeds).
    pub seed_index: usize,
    /// The training seed: shuffles, augmentation and the task model's initialisation.
    pub seed: u64,
}

impl Split {
    /// The samples a finished model is scored on: the test part where there is one, else validation.
    pub fn scored(&self) -> &[usize] {
        if self.test.is_empty() {
            &self.validation
        } else {
            &self.test
        }
    }
}

/// Every replicate of `plan` over `len` samples (`labels`: each sample's class, for stratifying), seed
/// by seed, fold by fold within a seed.
pub fn plan_splits(len: usize, labels: Option<&[usize]>, plan: &SplitPlan) -> Result<Vec<Split>> {
    if plan.n_splits == 0 {
        bail!("config key `job.n_splits`: expected at least 1 fold");
    }
    if plan.training_seeds.is_empty() {
        bail!("config key `job.seeds`: expected at least one training seed");
    }
    if !(0.0..1.0).contains(&plan.test_fraction) {
        bail!(
            "config key `job.test_fraction`: expected a fraction in [0, 1), found {}",
            plan.test_fraction
        );
    }
    let all: Vec<usize> = (0..len).collect();
    let (pool, test) = if plan.test_fraction > 0.0 {
        // the test part's own seed: changing the folds' seed leaves it where it is
        let mut rng = ChaCha8Rng::seed_from_u64(plan.seed ^ TEST_PART_SALT);
        let (rest, test) = cut(&all, labels, 1.0 - plan.test_fraction, &mut rng)
            .map_err(|e| e.context("config key `job.test_fraction`"))?;
        (rest, test)
    } else {
        (all, Vec::new())
    };
    let folds = match plan.kind {
        SplitKind::Shuffle => {
            if !(plan.train_size > 0.0 && plan.train_size < 1.0) {
                bail!("train_size must be in (0, 1), found {}", plan.train_size);
            }
            let mut rng = ChaCha8Rng::seed_from_u64(plan.seed);
            (0..plan.n_splits)
                .map(|_| cut(&pool, labels, plan.train_size, &mut rng))
                .collect::<Result<Vec<_>>>()?
        }
        SplitKind::Kfold => kfold(&pool, labels, plan.n_splits, plan.seed)?,
    };
    Ok(plan
        .training_seeds
        .iter()
        .enumerate()
        .flat_map(|(seed_index, &seed)| {
            let test = &test;
            folds.iter().enumerate().map(move |(fold, (train, validation))| Split {
                train: train.clone(),
                validation: validation.clone(),
                test: test.clone(),
                fold,
                seed_index,
                seed,
            })
        })
        .collect())
}

/// Mixed into the seed of the test part, so that it is not the first fold's cut.
const TEST_PART_SALT: u64 = 0x7E57_9A27;

/// One seeded cut of `pool` (sorted sides): `keep` of it on the first side, by class when `labels`
/// are given (at least one sample of every class with two or more on each side), else overall.
fn cut(pool: &[usize], labels: Option<&[usize]>, keep: f64, rng: &mut ChaCha8Rng) -> Result<(Vec<usize>, Vec<usize>)> {
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for members in groups(pool, labels)? {
        let mut order = members;
        order.shuffle(rng);
        let at = ((order.len() as f64 * keep).round() as usize).clamp(1, order.len() - 1);
        first.extend_from_slice(&order[..at]);
        second.extend_from_slice(&order[at..]);
    }
    first.sort_unstable();
    second.sort_unstable();
    Ok((first, second))
}

/// `pool` by class (each of at least 2 samples), or whole (at least 2 samples) without labels.
fn groups(pool: &[usize], labels: Option<&[usize]>) -> Result<Vec<Vec<usize>>> {
    let Some(labels) = labels else {
        if pool.len() < 2 {
            bail!("a split needs at least 2 samples, the dataset has {}", pool.len());
        }
        return Ok(vec![pool.to_vec()]);
    };
    let mut by_class: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &index in pool {
        by_class.entry(labels[index]).or_default().push(index);
    }
    if let Some((class, members)) = by_class.iter().find(|(_, m)| m.len() < 2) {
        bail!(
            "class {class} has {} sample(s); a stratified split needs at least 2 of every class",
            members.len()
        );
    }
    Ok(by_class.into_values().collect())
}

/// `k` disjoint validation folds over `pool` (each class dealt round-robin from a seeded shuffle, so
/// every fold keeps the class proportions), each trained on the other folds.
fn kfold(pool: &[usize], labels: Option<&[usize]>, k: usize, seed: u64) -> Result<Vec<(Vec<usize>, Vec<usize>)>> {
    if k < 2 {
        bail!("config key `job.n_splits`: k-fold needs at least 2 folds, found {k}");
    }
    if pool.len() < k {
        bail!(
            "config key `job.n_splits`: {k} folds of {} samples; expected at most one fold per sample",
            pool.len()
        );
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut folds = vec![Vec::new(); k];
    let mut next = 0;
    let groups = match labels {
        Some(_) => groups(pool, labels)?,
        None => vec![pool.to_vec()],
    };
    for members in groups {
        let mut order = members;
        order.shuffle(&mut rng);
        for index in order {
            folds[next % k].push(index);
            next += 1;
        }
    }
    Ok((0..k)
        .map(|f| {
            let mut validation = folds[f].clone();
            let mut train: Vec<usize> = (0..k).filter(|&g| g != f).flat_map(|g| folds[g].clone()).collect();
            validation.sort_unstable();
            train.sort_unstable();
            (train, validation)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(kind: SplitKind, n_splits: usize, test_fraction: f64, seeds: &[u64]) -> SplitPlan {
        SplitPlan {
            kind,
            n_splits,
            train_size: 0.75,
            test_fraction,
            seed: 7,
            training_seeds: seeds.to_vec(),
        }
    }

    #[test]
    fn stratified_shuffle_splits_keep_class_proportions_and_differ_by_seed() {
        let labels: Vec<usize> = (0..100).map(|i| if i < 80 { 0 } else { 1 }).collect();
        let splits = plan_splits(100, Some(&labels), &plan(SplitKind::Shuffle, 3, 0.0, &[7])).unwrap();
        assert_eq!(splits.len(), 3);
        for split in &splits {
            assert_eq!(split.train.len(), 75);
            assert_eq!(split.train.iter().filter(|&&i| labels[i] == 1).count(), 15);
            let mut all: Vec<usize> = split.train.iter().chain(&split.validation).copied().collect();
            all.sort_unstable();
            assert_eq!(all, (0..100).collect::<Vec<_>>(), "every sample exactly once");
            assert!(split.test.is_empty() && split.scored() == split.validation.as_slice());
        }
        assert_ne!(splits[0], splits[1]);
        let other = SplitPlan {
            seed: 8,
            ..plan(SplitKind::Shuffle, 3, 0.0, &[7])
        };
        assert_ne!(splits, plan_splits(100, Some(&labels), &other).unwrap());
    }

    #[test]
    fn kfold_folds_are_disjoint_cover_the_samples_and_keep_class_proportions() {
        let labels: Vec<usize> = (0..90).map(|i| i % 3).collect();
        let splits = plan_splits(90, Some(&labels), &plan(SplitKind::Kfold, 5, 0.0, &[0])).unwrap();
        let mut seen = vec![0; 90];
        for split in &splits {
            assert_eq!(split.validation.len(), 18);
            for class in 0..3 {
                assert_eq!(split.validation.iter().filter(|&&i| labels[i] == class).count(), 6);
            }
            for &i in &split.validation {
                seen[i] += 1;
                assert!(!split.train.contains(&i), "sample {i} trains and validates");
            }
            assert_eq!(split.train.len() + split.validation.len(), 90);
        }
        assert!(
            seen.iter().all(|&n| n == 1),
            "each sample validated exactly once: {seen:?}"
        );
        // without labels too, and refused with one fold
        let plain = plan_splits(11, None, &plan(SplitKind::Kfold, 3, 0.0, &[0])).unwrap();
        let mut all: Vec<usize> = plain.iter().flat_map(|s| s.validation.clone()).collect();
        all.sort_unstable();
        assert_eq!(all, (0..11).collect::<Vec<_>>());
        let err = plan_splits(11, None, &plan(SplitKind::Kfold, 1, 0.0, &[0]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least 2 folds"), "{err}");
    }

    #[test]
    fn the_test_part_is_held_out_of_every_fold_and_seed_and_stays_put() {
        let labels: Vec<usize> = (0..100).map(|i| i % 4).collect();
        let splits = plan_splits(100, Some(&labels), &plan(SplitKind::Kfold, 3, 0.2, &[1, 2])).unwrap();
        assert_eq!(splits.len(), 6, "3 folds × 2 seeds");
        let test = splits[0].test.clone();
        assert_eq!(test.len(), 20);
        for class in 0..4 {
            assert_eq!(test.iter().filter(|&&i| labels[i] == class).count(), 5, "stratified");
        }
        for split in &splits {
            assert_eq!(split.test, test);
            assert_eq!(split.scored(), test.as_slice());
            assert!(split.train.iter().chain(&split.validation).all(|i| !test.contains(i)));
        }
        // seed by seed, fold by fold; the same samples for every seed
        let order: Vec<(usize, usize, u64)> = splits.iter().map(|s| (s.seed_index, s.fold, s.seed)).collect();
        assert_eq!(
            order,
            [(0, 0, 1), (0, 1, 1), (0, 2, 1), (1, 0, 2), (1, 1, 2), (1, 2, 2)]
        );
        assert_eq!(splits[0].validation, splits[3].validation);
        // other folds (another seed of the splits), the same test part
        let reseeded = SplitPlan {
            seed: 8,
            ..plan(SplitKind::Kfold, 3, 0.2, &[1])
        };
        let moved = plan_splits(100, Some(&labels), &reseeded).unwrap();
        assert_ne!(moved[0].validation, splits[0].validation);
        assert_ne!(moved[0].test, test, "the test part follows `seed` too");
    }

    #[test]
    fn splits_refuse_what_cannot_be_split() {
        let err = plan_splits(3, Some(&[0, 0, 1]), &plan(SplitKind::Shuffle, 1, 0.0, &[0]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("class 1 has 1 sample"), "{err}");
        let bad = SplitPlan {
            train_size: 1.0,
            ..plan(SplitKind::Shuffle, 1, 0.0, &[0])
        };
        assert!(plan_splits(10, None, &bad)
            .unwrap_err()
            .to_string()
            .contains("train_size"));
        let split = &plan_splits(10, None, &plan(SplitKind::Shuffle, 1, 0.0, &[0])).unwrap()[0];
        assert_eq!((split.train.len(), split.validation.len()), (8, 2));
        let err = plan_splits(10, None, &plan(SplitKind::Shuffle, 1, 1.0, &[0]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("job.test_fraction"), "{err}");
    }
}
