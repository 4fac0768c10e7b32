//! From a dataset plugin to batches: train/validation/test splits ([`splits`]), and a loader that
//! decodes samples on worker threads ahead of the consumer, so training does not wait on I/O.

pub mod datasets;
pub mod splits;

pub use splits::{Split, SplitKind, SplitPlan};

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
