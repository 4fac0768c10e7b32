//! The images a search is fitted on and scored on, how they are compared (SSIM in the default output's
//! range), and the figures of the strongest attacks.

use super::report::ForensicsResult;
use crate::pipeline::Pipeline;
use crate::plugins::RemoteModule;
use crate::train::metrics::{self, Task};
use crate::uncertainty::Outcome;
use anyhow::{bail, Result};
use std::path::Path;
use tch::Tensor;

/// Held-out images shown per figure.
pub(super) const EXAMPLES: i64 = 4;

/// For every group, the search with the largest held-out drop: its held-out images behind the default
/// processing (top row) and behind the values found (bottom row), both mapped to [0, 1] with the default
/// output's range (so brightness and colour changes show), as `attack_<group>.png`; `(group, file)`.
pub(super) fn strongest_attack_figures(
    dir: &Path,
    searches: &[(&String, f64, Option<f64>)],
    results: &[ForensicsResult],
    default: &Tensor,
    attacked: &[Tensor],
) -> Result<Vec<(String, String)>> {
    let mut figures = Vec::new();
    let mut groups: Vec<&String> = searches.iter().map(|(g, _, _)| *g).collect();
    groups.dedup();
    for group in groups {
        let Some(k) = (0..results.len())
            .filter(|&k| searches[k].0 == group)
            .max_by(|&a, &b| results[a].drop.value.total_cmp(&results[b].drop.value))
        else {
            continue;
        };
        let row = |images: &Tensor| -> Result<Tensor> {
            let tiles: Vec<Tensor> = (0..images.size()[0]).map(|i| images.get(i)).collect();
            Ok(Tensor::f_cat(&tiles, 2)?)
        };
        let image = Tensor::f_cat(&[row(default)?, row(&attacked[k])?], 1)?;
        let file = format!("attack_{group}.png");
        crate::imageio::write_image(&dir.join(&file), &image, 8)?;
        figures.push((group.clone(), file));
    }
    Ok(figures)
}

/// The images one search is fitted on and those its result is scored on: the first `fit` of the
/// model's scored samples, then the next `held` (all that are left when fewer) — never the same image.
pub(super) fn attack_sets(pool: &[usize], fit: usize, held: usize) -> Result<(Vec<usize>, Vec<usize>)> {
    let fit = fit.max(1);
    if pool.len() <= fit {
        bail!(
            "config key `job.samples`: {fit} images to fit the attack on leave none of the model's {} scored images to score it on; expected fewer",
            pool.len()
        );
    }
    let rest = &pool[fit..];
    Ok((pool[..fit].to_vec(), rest[..held.clamp(1, rest.len())].to_vec()))
}

/// One set of attacked images on the device.
pub(super) struct AttackSet<'b> {
    /// The raw mosaics.
    pub(super) raw: Tensor,
    /// Their targets.
    pub(super) target: Tensor,
    /// Their cameras.
    pub(super) cameras: &'b [l2l_plugin_api::RawMetadata],
}

impl<'b> AttackSet<'b> {
    /// The batch's images, targets and cameras, on `device`.
    pub(super) fn new(batch: &'b crate::data::Batch, device: tch::Device) -> Result<Self> {
        Ok(AttackSet {
            raw: batch.raw.f_to_device(device)?,
            target: batch.target.f_to_device(device)?,
            cameras: &batch.cameras,
        })
    }

    /// The model's outcomes behind `pipeline` on these images, and the pipeline's output.
    pub(super) fn evaluate(
        &self,
        pipeline: &mut Pipeline,
        model: &mut RemoteModule,
        task: &Task,
    ) -> Result<(Vec<Outcome>, Tensor)> {
        tch::no_grad(|| -> Result<(Vec<Outcome>, Tensor)> {
            pipeline.set_camera(self.cameras)?;
            let output = pipeline.forward(&self.raw)?;
            let logits = model.forward(&output)?;
            let mut accumulator = metrics::Accumulator::new(task);
            accumulator.add(&logits, &self.target, 0.0)?;
            Ok((accumulator.outcomes, output))
        })
    }
}

/// The default output's range, so that SSIM compares images in [0, 1] whatever the pipeline ends with.
pub(super) struct Normaliser {
    low: Tensor,
    span: Tensor,
}

impl Normaliser {
    /// The range of `reference`.
    pub(super) fn of(reference: &Tensor) -> Result<Self> {
        let (low, high) = (reference.f_min()?, reference.f_max()?);
        let span = high.f_sub(&low)?.f_clamp_min(1e-12)?;
        Ok(Normaliser { low, span })
    }

    /// `t` mapped by the reference's range.
    pub(super) fn apply(&self, t: &Tensor) -> Result<Tensor> {
        Ok(t.f_sub(&self.low)?.f_div(&self.span)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The images an attack is scored on are never those it was fitted on.
    #[test]
    fn held_out_images_are_never_fitted_on() {
        let pool: Vec<usize> = (100..140).collect();
        let (fit, held) = attack_sets(&pool, 16, 16).unwrap();
        assert_eq!((fit.len(), held.len()), (16, 16));
        assert!(held.iter().all(|i| !fit.contains(i)));
        // fewer left than asked: all that are left
        let (fit, held) = attack_sets(&pool, 30, 16).unwrap();
        assert_eq!((fit.len(), held.len()), (30, 10));
        assert!(held.iter().all(|i| !fit.contains(i)));
        let err = attack_sets(&pool, 40, 16).unwrap_err().to_string();
        assert!(err.contains("job.samples") && err.contains("leave none"), "{err}");
    }
}
