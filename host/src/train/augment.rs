//! Geometric augmentation of processed images, applied identically to their masks: `weak` flips and
//! turns by multiples of 90° (exact, no resampling); `strong` adds a rotation by any angle and a
//! scale, resampled bilinearly (masks by nearest neighbour, outside the image zero).

use super::config::Augmentation;
use anyhow::Result;
use rand::Rng;
use tch::{Kind, Tensor};

/// Augments every sample of `images` `[B, C, H, W]` (and `masks` `[B, H, W]`) with its own draw.
pub fn augment(
    images: &Tensor,
    masks: Option<&Tensor>,
    kind: Augmentation,
    rng: &mut impl Rng,
) -> Result<(Tensor, Option<Tensor>)> {
    if kind == Augmentation::None {
        return Ok((images.shallow_clone(), masks.map(Tensor::shallow_clone)));
    }
    let size = images.size();
    let square = size[2] == size[3];
    let (mut out_images, mut out_masks) = (Vec::new(), Vec::new());
    for b in 0..size[0] {
        let mut image = images.f_narrow(0, b, 1)?;
        let mut mask = masks
            .map(|m| m.f_narrow(0, b, 1))
            .transpose()?
            .map(|m| m.f_unsqueeze(1))
            .transpose()?;
        let mut both = |f: &dyn Fn(&Tensor) -> Result<Tensor, tch::TchError>| -> Result<()> {
            image = f(&image)?;
            if let Some(m) = &mask {
                mask = Some(f(m)?);
            }
            Ok(())
        };
        if rng.gen_bool(0.5) {
            both(&|t| t.f_flip([3]))?;
        }
        if rng.gen_bool(0.5) {
            both(&|t| t.f_flip([2]))?;
        }
        let turns = if square {
            rng.gen_range(0..4)
        } else {
            2 * rng.gen_range(0..2)
        };
        if turns > 0 {
            both(&|t| t.f_rot90(turns, [2, 3]))?;
        }
        if kind == Augmentation::Strong {
            let angle: f64 = rng.gen_range(-std::f64::consts::PI..std::f64::consts::PI);
            let scale: f64 = rng.gen_range(0.8f64.ln()..1.25f64.ln()).exp();
            let (s, c) = angle.sin_cos();
            let theta = Tensor::from_slice(&[c / scale, -s / scale, 0.0, s / scale, c / scale, 0.0])
                .f_view([1, 2, 3])?
                .f_to_kind(images.kind())?
                .f_to_device(images.device())?;
            let grid = Tensor::f_affine_grid_generator(&theta, image.size(), false)?;
            image = image.f_grid_sampler(&grid, 0, 0, false)?;
            if let Some(m) = &mask {
                let resampled = m.f_to_kind(images.kind())?.f_grid_sampler(&grid, 1, 0, false)?;
                mask = Some(resampled.f_round()?.f_to_kind(Kind::Int64)?);
            }
        }
        out_images.push(image);
        if let Some(m) = mask {
            out_masks.push(m.f_squeeze_dim(1)?);
        }
    }
    let masks = if out_masks.is_empty() {
        None
    } else {
        Some(Tensor::f_cat(&out_masks, 0)?)
    };
    Ok((Tensor::f_cat(&out_images, 0)?, masks))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn masks_move_with_their_images() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        // blocks of 4×4 pixels; the mask marks exactly the bright ones
        let image =
            Tensor::rand([4, 3, 4, 4], (Kind::Float, tch::Device::Cpu)).upsample_nearest2d([16, 16], None, None);
        let mask = image.select(1, 0).gt(0.5).to_kind(Kind::Int64);
        for kind in [Augmentation::Weak, Augmentation::Strong] {
            let (a, m) = augment(&image, Some(&mask), kind, &mut rng).unwrap();
            let m = m.unwrap();
            assert_eq!(a.size(), [4, 3, 16, 16]);
            let agree = a
                .select(1, 0)
                .gt(0.5)
                .to_kind(Kind::Int64)
                .eq_tensor(&m)
                .to_kind(Kind::Float)
                .mean(Kind::Float)
                .double_value(&[]);
            // weak is exact; strong resamples, so edges may differ
            let needed = if kind == Augmentation::Weak { 1.0 } else { 0.8 };
            assert!(agree >= needed, "{kind:?}: {agree}");
        }
        let (same, _) = augment(&image, None, Augmentation::None, &mut rng).unwrap();
        assert!(same.equal(&image));
    }
}
