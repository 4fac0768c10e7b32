//! Running a chain of row-local stages on an image band by band.
//!
//! A stage whose output row `i` depends on input rows `i − r ..= i + r` only (its row reach `r`,
//! [`crate::plugins::RemoteModule::row_reach`]) gives the same rows whether it sees the whole image
//! or a band with `r` rows more on each side. So a chain of such stages can run on bands of the input,
//! each with the chain's total reach added on both sides (fewer at the image's top and bottom, where
//! the stages pad as they always do), and the bands' inner rows joined: the result equals the whole
//! image's, while every intermediate band — a few MB — stays in cache instead of each stage writing
//! and the next reading a full image (144 MB at 12 MP). Bands start at even rows, so stages that read
//! a row's parity (CFA sites: black level, demosaicing) see the image's, and every stage is told
//! where its band sits in the full image (`Module::forward_band`), so that stages whose values depend
//! on a pixel's position (vignetting) see the image's coordinates.

use crate::pipeline::run_stage_in_band;
use crate::plugins::RemoteModule;
use anyhow::{anyhow, Result};
use l2l_plugin_api::Band;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Mutex, PoisonError};
use tch::Tensor;

/// Output rows per band: a band of a 12-MP RGB image (4000 columns) with its reach is about 3 MB.
/// Even, as every band's first row is.
pub const BAND_ROWS: i64 = 64;

/// The total row reach of `stages`, or `None` when one of them must see the whole image.
pub fn chain_reach(stages: &[(String, RemoteModule)]) -> Result<Option<usize>> {
    let mut total = 0;
    for (_, stage) in stages {
        match stage.row_reach()? {
            Some(reach) => total += reach,
            None => return Ok(None),
        }
    }
    Ok(Some(total))
}

/// Runs `stages`, whose reaches add up to `reach` (see [`chain_reach`]), on `input` `[B, C, H, W]` in
/// bands of [`BAND_ROWS`] output rows; the result is the one running them on the whole image gives.
///
/// Without autograd: this is for inference (export). `workers` threads take the bands in turn, each
/// running every stage on its band (a stage serves one band at a time; while one worker runs a stage,
/// another can run a different one). Meant for one libtorch thread per operation
/// (`tch::set_num_threads(1)`), the parallelism being the bands'.
pub fn run_in_bands(
    stages: &mut [(String, RemoteModule)],
    reach: usize,
    input: &Tensor,
    workers: usize,
) -> Result<Tensor> {
    let size = input.size();
    if size.len() != 4 || size[2] == 0 {
        return Err(anyhow!("expected an image [B, C, H, W] with rows, found {size:?}"));
    }
    // bands start at even rows (BAND_ROWS is even; the reach is rounded up to even), so that stages
    // reading a row's parity (CFA sites) see the image's
    let (height, reach) = (size[2], (reach + reach % 2) as i64);
    let stages: Vec<Mutex<&mut (String, RemoteModule)>> = stages.iter_mut().map(Mutex::new).collect();
    let band_count = (height + BAND_ROWS - 1) / BAND_ROWS;
    // runs band `index` through every stage: its inner rows and where they go
    let run_band = |input: &Tensor, index: i64| -> Result<(Tensor, i64)> {
        let top = index * BAND_ROWS;
        let bottom = (top + BAND_ROWS).min(height);
        let (first, last) = ((top - reach).max(0), (bottom + reach).min(height));
        let mut band = input.f_narrow(2, first, last - first)?;
        let position = Band {
            first_row: first,
            full_height: height,
        };
        for stage in &stages {
            let mut stage = stage.lock().unwrap_or_else(PoisonError::into_inner);
            let (name, stage) = &mut **stage;
            // autograd's mode is per thread: every worker turns it off for itself
            band = tch::no_grad(|| run_stage_in_band(name, stage, &band, position))?;
        }
        Ok((band.f_narrow(2, top - first, bottom - top)?, top))
    };
    // the first band tells the output's channels
    let (inner, _) = run_band(input, 0)?;
    let s = inner.size();
    let output = Tensor::f_empty([s[0], s[1], height, s[3]], (inner.kind(), inner.device()))?;
    output.f_narrow(2, 0, s[2])?.f_copy_(&inner)?;
    let next = AtomicI64::new(1);
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..workers.max(1) {
            // tensors are not shared between threads: each worker has its own handles on them
            let (input, output) = (input.shallow_clone(), output.shallow_clone());
            let (run_band, next, failure) = (&run_band, &next, &failure);
            scope.spawn(move || loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= band_count || failure.lock().unwrap_or_else(PoisonError::into_inner).is_some() {
                    return;
                }
                let placed = run_band(&input, index).and_then(|(inner, top)| {
                    // bands cover disjoint rows of the output
                    output.f_narrow(2, top, inner.size()[2])?.f_copy_(&inner)?;
                    Ok(())
                });
                if let Err(error) = placed {
                    failure
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get_or_insert(error);
                }
            });
        }
    });
    match failure.into_inner().unwrap_or_else(PoisonError::into_inner) {
        Some(error) => Err(error),
        None => Ok(output),
    }
}
