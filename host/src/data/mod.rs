//! From a dataset plugin to batches: train/validation splits, and a loader that decodes samples on
//! worker threads ahead of the consumer, so training does not wait on I/O.
//!
//! Splits follow scikit-learn's `StratifiedShuffleSplit` (classification: every class split in the same
//! proportion) and `ShuffleSplit` (segmentation): `n_splits` independent seeded shuffles, each cut at
//! `train_size`.

pub mod datasets;

use crate::plugins::RemoteDataset;
use anyhow::{anyhow, bail, Result};
use l2l_plugin_api::RawMetadata;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use tch::Tensor;

/// One train/validation split, as sample indices (each list sorted).
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    /// Samples to train on.
    pub train: Vec<usize>,
    /// Samples to validate on.
    pub validation: Vec<usize>,
}

fn check_train_size(train_size: f64, n_splits: usize) -> Result<()> {
    if !(train_size > 0.0 && train_size < 1.0) {
        bail!("train_size must be in (0, 1), found {train_size}");
    }
    if n_splits == 0 {
        bail!("n_splits must be at least 1");
    }
    Ok(())
}

/// `n_splits` seeded shuffles of `0..len`, each cut so that `train_size` of the samples train (at
/// least one sample on each side).
pub fn shuffle_splits(len: usize, n_splits: usize, train_size: f64, seed: u64) -> Result<Vec<Split>> {
    check_train_size(train_size, n_splits)?;
    if len < 2 {
        bail!("a split needs at least 2 samples, the dataset has {len}");
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Ok((0..n_splits)
        .map(|_| {
            let mut order: Vec<usize> = (0..len).collect();
            order.shuffle(&mut rng);
            let cut = ((len as f64 * train_size).round() as usize).clamp(1, len - 1);
            sorted_split(&order[..cut], &order[cut..])
        })
        .collect())
}

/// `n_splits` seeded stratified shuffles: each class is cut so that `train_size` of it trains (at
/// least one sample of every class with two or more on each side), so both sides keep the class
/// proportions.
pub fn stratified_splits(labels: &[usize], n_splits: usize, train_size: f64, seed: u64) -> Result<Vec<Split>> {
    check_train_size(train_size, n_splits)?;
    let mut by_class: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (index, &label) in labels.iter().enumerate() {
        by_class.entry(label).or_default().push(index);
    }
    if let Some((class, members)) = by_class.iter().find(|(_, m)| m.len() < 2) {
        bail!(
            "class {class} has {} sample(s); a stratified split needs at least 2 of every class",
            members.len()
        );
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Ok((0..n_splits)
        .map(|_| {
            let (mut train, mut validation) = (Vec::new(), Vec::new());
            for members in by_class.values() {
                let mut order = members.clone();
                order.shuffle(&mut rng);
                let cut = ((order.len() as f64 * train_size).round() as usize).clamp(1, order.len() - 1);
                train.extend_from_slice(&order[..cut]);
                validation.extend_from_slice(&order[cut..]);
            }
            sorted_split(&train, &validation)
        })
        .collect())
}

fn sorted_split(train: &[usize], validation: &[usize]) -> Split {
    let (mut train, mut validation) = (train.to_vec(), validation.to_vec());
    train.sort_unstable();
    validation.sort_unstable();
    Split { train, validation }
}

/// A batch of samples.
pub struct Batch {
    /// `[B, 1, H, W]` mosaics in [0, 1].
    pub raw: Tensor,
    /// `[B]` class indices or `[B, H, W]` masks (int64).
    pub target: Tensor,
    /// Each sample's camera parameters.
    pub cameras: Vec<RawMetadata>,
    /// Each sample's index in the dataset.
    pub indices: Vec<usize>,
}

/// How a [`Loader`] reads.
#[derive(Debug, Clone)]
pub struct LoaderOptions {
    /// Samples per batch.
    pub batch_size: usize,
    /// Decoding threads.
    pub workers: usize,
    /// Batches decoded ahead of the consumer.
    pub prefetch: usize,
    /// Shuffle the samples with this seed (per epoch: pass seed + epoch); `None` keeps their order.
    pub shuffle_seed: Option<u64>,
    /// Leave out a last batch smaller than `batch_size`.
    pub drop_last: bool,
}

impl Default for LoaderOptions {
    fn default() -> Self {
        Self {
            batch_size: 8,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            prefetch: 4,
            shuffle_seed: None,
            drop_last: false,
        }
    }
}

/// Where the workers are: the next batch to claim, how many the consumer has taken, whether to stop.
struct Progress {
    next_claim: usize,
    consumed: usize,
    stop: bool,
}

/// Batches of a dataset's samples, in order, decoded by worker threads at most `prefetch` batches ahead.
pub struct Loader {
    batches: usize,
    next: usize,
    progress: Arc<(Mutex<Progress>, Condvar)>,
    results: mpsc::Receiver<(usize, Result<Batch>)>,
    waiting: BTreeMap<usize, Result<Batch>>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl Loader {
    /// Starts loading the samples `indices` of `dataset`.
    pub fn new(dataset: Arc<RemoteDataset>, mut indices: Vec<usize>, options: &LoaderOptions) -> Result<Self> {
        if options.batch_size == 0 || options.workers == 0 || options.prefetch == 0 {
            bail!("batch size, workers and prefetch must each be at least 1");
        }
        if let Some(&bad) = indices.iter().find(|&&i| i >= dataset.len()) {
            bail!(
                "{}: sample {bad} is out of range ({} samples)",
                dataset.label(),
                dataset.len()
            );
        }
        if let Some(seed) = options.shuffle_seed {
            indices.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        }
        let mut chunks: Vec<Vec<usize>> = indices.chunks(options.batch_size).map(<[usize]>::to_vec).collect();
        if options.drop_last && chunks.last().is_some_and(|c| c.len() < options.batch_size) {
            chunks.pop();
        }
        let chunks = Arc::new(chunks);
        let progress = Arc::new((
            Mutex::new(Progress {
                next_claim: 0,
                consumed: 0,
                stop: false,
            }),
            Condvar::new(),
        ));
        let (sender, results) = mpsc::channel();
        let prefetch = options.prefetch;
        let workers = (0..options.workers.min(chunks.len().max(1)))
            .map(|_| {
                let (dataset, chunks, progress, sender) =
                    (dataset.clone(), chunks.clone(), progress.clone(), sender.clone());
                std::thread::spawn(move || loop {
                    let claimed = {
                        let (lock, wake) = &*progress;
                        let mut state = lock.lock().unwrap_or_else(|p| p.into_inner());
                        while !state.stop
                            && state.next_claim < chunks.len()
                            && state.next_claim >= state.consumed + prefetch
                        {
                            state = wake.wait(state).unwrap_or_else(|p| p.into_inner());
                        }
                        if state.stop || state.next_claim >= chunks.len() {
                            break;
                        }
                        state.next_claim += 1;
                        state.next_claim - 1
                    };
                    if sender.send((claimed, collate(&dataset, &chunks[claimed]))).is_err() {
                        break;
                    }
                })
            })
            .collect();
        Ok(Self {
            batches: chunks.len(),
            next: 0,
            progress,
            results,
            waiting: BTreeMap::new(),
            workers,
        })
    }

    /// Number of batches this loader yields.
    pub fn len(&self) -> usize {
        self.batches
    }

    /// Whether it yields none.
    pub fn is_empty(&self) -> bool {
        self.batches == 0
    }
}

impl Iterator for Loader {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if self.next >= self.batches {
            return None;
        }
        let batch = loop {
            if let Some(batch) = self.waiting.remove(&self.next) {
                break batch;
            }
            match self.results.recv() {
                Ok((index, batch)) => {
                    self.waiting.insert(index, batch);
                }
                Err(_) => break Err(anyhow!("the loader's workers stopped before batch {}", self.next)),
            }
        };
        self.next += 1;
        let (lock, wake) = &*self.progress;
        lock.lock().unwrap_or_else(|p| p.into_inner()).consumed = self.next;
        wake.notify_all();
        Some(batch)
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        let (lock, wake) = &*self.progress;
        lock.lock().unwrap_or_else(|p| p.into_inner()).stop = true;
        wake.notify_all();
        // unblock workers waiting to send by draining, then wait for them
        while self.results.try_recv().is_ok() {}
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

/// Reads the samples `indices` and stacks them into a batch; every sample must have one size.
fn collate(dataset: &RemoteDataset, indices: &[usize]) -> Result<Batch> {
    let samples = indices.iter().map(|&i| dataset.sample(i)).collect::<Result<Vec<_>>>()?;
    let first = samples[0].raw.size();
    if let Some((i, s)) = indices.iter().zip(&samples).find(|(_, s)| s.raw.size() != first) {
        bail!(
            "{}: sample {i} is {:?} but sample {} is {first:?}; a batch needs one size",
            dataset.label(),
            s.raw.size(),
            indices[0]
        );
    }
    let raws: Vec<&Tensor> = samples.iter().map(|s| &s.raw).collect();
    let targets: Vec<&Tensor> = samples.iter().map(|s| &s.target).collect();
    Ok(Batch {
        raw: Tensor::f_stack(&raws, 0)?.f_unsqueeze(1)?,
        target: Tensor::f_stack(&targets, 0)?,
        cameras: samples.iter().map(|s| s.metadata).collect(),
        indices: indices.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_splits_keep_class_proportions_and_differ_by_seed() {
        let labels: Vec<usize> = (0..100).map(|i| if i < 80 { 0 } else { 1 }).collect();
        let splits = stratified_splits(&labels, 3, 0.75, 7).unwrap();
        assert_eq!(splits.len(), 3);
        for split in &splits {
            assert_eq!(split.train.len(), 75);
            assert_eq!(split.train.iter().filter(|&&i| labels[i] == 1).count(), 15);
            let mut all: Vec<usize> = split.train.iter().chain(&split.validation).copied().collect();
            all.sort_unstable();
            assert_eq!(all, (0..100).collect::<Vec<_>>(), "every sample exactly once");
        }
        assert_ne!(splits[0], splits[1]);
        assert_eq!(splits, stratified_splits(&labels, 3, 0.75, 7).unwrap(), "seeded");
        assert_ne!(splits, stratified_splits(&labels, 3, 0.75, 8).unwrap());
    }

    #[test]
    fn splits_refuse_what_cannot_be_split() {
        let err = stratified_splits(&[0, 0, 1], 1, 0.5, 0).unwrap_err().to_string();
        assert!(err.contains("class 1 has 1 sample"), "{err}");
        assert!(shuffle_splits(10, 1, 1.0, 0)
            .unwrap_err()
            .to_string()
            .contains("train_size"));
        let split = &shuffle_splits(10, 1, 0.8, 0).unwrap()[0];
        assert_eq!((split.train.len(), split.validation.len()), (8, 2));
    }
}
