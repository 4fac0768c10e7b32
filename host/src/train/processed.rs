//! Frozen processing computed once: a static pipeline (or any processing that does not train, in
//! evaluation mode) gives every sample the same image every epoch, fold and experiment of a job, so
//! its output is kept per (pipeline, sample) and reused. Augmentation comes after processing (as in
//! the published method, whose data set processes the raw and whose model augments the processed
//! image), so a cached image is exactly what processing would give again.

use crate::config::StageSpec;
use crate::pipeline::Pipeline;
use anyhow::Result;
use l2l_plugin_api::RawMetadata;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use tch::{Device, Tensor};

/// Memory the cache may hold; beyond it, images are computed each time (and a note is logged once).
pub const BUDGET_BYTES: usize = 4 << 30;

/// Processed images of frozen pipelines, per pipeline and sample, on the CPU.
#[derive(Default)]
pub struct ProcessedCache {
    state: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    images: HashMap<(u64, usize), Tensor>,
    bytes: usize,
    full: bool,
}

/// A frozen pipeline's key in the cache: the same stages with the same settings share their images.
pub fn pipeline_key(stages: &[StageSpec]) -> u64 {
    let mut hasher = DefaultHasher::new();
    format!("{stages:?}").hash(&mut hasher);
    hasher.finish()
}

/// Which frozen pipeline a batch goes through, for [`ProcessedCache::forward`].
#[derive(Clone, Copy)]
pub struct Frozen<'c> {
    /// The job's cache.
    pub cache: &'c ProcessedCache,
    /// The pipeline's [`pipeline_key`].
    pub key: u64,
}

impl Frozen<'_> {
    /// `pipeline`'s output for the batch `raw` of dataset samples `indices` (on `device`), taken from
    /// the cache when every sample is there, else computed without gradient and kept.
    pub fn forward(
        &self,
        pipeline: &mut Pipeline,
        raw: &Tensor,
        cameras: &[RawMetadata],
        indices: &[usize],
        device: Device,
    ) -> Result<Tensor> {
        {
            let state = self
                .cache
                .state
                .lock()
                .map_err(|_| anyhow::anyhow!("the processed-image cache is poisoned"))?;
            let cached: Option<Vec<&Tensor>> = indices.iter().map(|i| state.images.get(&(self.key, *i))).collect();
            if let Some(images) = cached {
                return Ok(Tensor::f_stack(&images, 0)?.f_to_device(device)?);
            }
        }
        pipeline.set_camera(cameras)?;
        let output = tch::no_grad(|| pipeline.forward(raw))?;
        let mut state = self
            .cache
            .state
            .lock()
            .map_err(|_| anyhow::anyhow!("the processed-image cache is poisoned"))?;
        for (row, index) in indices.iter().enumerate() {
            if state.images.contains_key(&(self.key, *index)) {
                continue;
            }
            let image = output
                .f_get(row as i64)?
                .f_to_device(Device::Cpu)?
                .f_contiguous()?
                .f_detach()?
                .copy();
            let bytes = image.numel() * image.kind().elt_size_in_bytes();
            if state.bytes + bytes > BUDGET_BYTES {
                if !state.full {
                    tracing::info!(
                        "processed-image cache full ({} MiB): further images are processed each time",
                        BUDGET_BYTES >> 20
                    );
                    state.full = true;
                }
                break;
            }
            state.bytes += bytes;
            state.images.insert((self.key, *index), image);
        }
        Ok(output)
    }
}
