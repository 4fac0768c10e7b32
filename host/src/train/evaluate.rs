//! Evaluating a frozen model behind a processing on some samples, optionally with a change to the
//! processed images in between (the corruption baseline).

use super::metrics::{self, Accumulator, Task};
use super::processed::Frozen;
use crate::data::{Loader, LoaderOptions};
use crate::pipeline::Pipeline;
use crate::plugins::{RemoteDataset, RemoteModule};
use anyhow::Result;
use std::sync::Arc;
use tch::{Device, Tensor};

/// A change applied to processed images before the task model sees them (a corruption).
pub type ImageTransform<'t> = &'t dyn Fn(&Tensor) -> Result<Tensor>;

/// Evaluates `model` behind `processing` on the samples `indices` without gradient (both must be in
/// evaluation mode), `transform` applied between them when given; a `frozen` processing's images come
/// from (and go to) the job's cache.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    processing: &mut Pipeline,
    frozen: Option<Frozen<'_>>,
    model: &mut RemoteModule,
    dataset: &Arc<RemoteDataset>,
    indices: &[usize],
    task: &Task,
    options: &LoaderOptions,
    device: Device,
    transform: Option<ImageTransform<'_>>,
) -> Result<Accumulator> {
    let mut accumulator = Accumulator::new(task);
    for batch in Loader::new(dataset.clone(), indices.to_vec(), options)? {
        let batch = batch?;
        let raw = batch.raw.f_to_device(device)?;
        let target = batch.target.f_to_device(device)?;
        tch::no_grad(|| -> Result<()> {
            let mut processed = match frozen {
                Some(frozen) => frozen.forward(processing, &raw, &batch.cameras, &batch.indices, device)?,
                None => {
                    processing.set_camera(&batch.cameras)?;
                    processing.forward(&raw)?
                }
            };
            if let Some(transform) = transform {
                processed = transform(&processed)?;
            }
            let logits = model.forward(&processed)?;
            let loss = metrics::loss(task, &logits, &target)?;
            accumulator.add(&logits, &target, loss.f_double_value(&[])?)
        })?;
    }
    Ok(accumulator)
}
