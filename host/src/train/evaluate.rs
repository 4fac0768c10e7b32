//! Evaluating a frozen model behind a processing on some samples, optionally with a change to the
//! processed images in between (the corruption baseline).

use super::metrics::{self, Accumulator, Task};
use crate::data::{Loader, LoaderOptions};
use crate::pipeline::Pipeline;
use crate::plugins::{RemoteDataset, RemoteModule};
use anyhow::Result;
use std::sync::Arc;
use tch::{Device, Tensor};

/// A change applied to processed images before the task model sees them (a corruption).
pub type ImageTransform<'t> = &'t dyn Fn(&Tensor) -> Result<Tensor>;

/// Evaluates `model` behind `processing` on the samples `indices` without gradient (both must be in
/// evaluation mode), `transform` applied between them when given.
#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    processing: &mut Pipeline,
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
            processing.set_camera(&batch.cameras)?;
            let mut processed = processing.forward(&raw)?;
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
