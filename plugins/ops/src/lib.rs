//! Tensor helpers that several l2l plugins need, written once: CFA masks and per-position maps,
//! reflect padding, per-channel 2-D filtering, and the gradient check plugin tests use. Every tensor
//! function is differentiable in its tensor arguments and works on any device and float precision.
//!
//! Not a plugin: it registers nothing. Not for algorithms owned by one plugin.

pub mod gradcheck;

use l2l_plugin_api::{CfaPattern, PluginError, PluginResult};
use tch::Tensor;

/// Repeats a 2×2 block of per-position values `[..., 2, 2]` over an `h × w` plane (cropping the last
/// row or column for odd sizes), so a value per CFA position becomes a value per pixel.
pub fn tile_cfa_block(block: &Tensor, h: i64, w: i64) -> PluginResult<Tensor> {
    let reps_h = (h + 1) / 2;
    let reps_w = (w + 1) / 2;
    let dims = block.dim();
    let mut repeats = vec![1i64; dims - 2];
    repeats.extend([reps_h, reps_w]);
    Ok(block.f_repeat(&repeats)?.f_narrow(-2, 0, h)?.f_narrow(-1, 0, w)?)
}

/// Indicator masks `[1, 3, h, w]` of where the mosaic sampled R, G and B, in the kind and on the
/// device of `like`.
pub fn cfa_masks(pattern: CfaPattern, h: i64, w: i64, like: &Tensor) -> PluginResult<Tensor> {
    let mut block = [0f32; 12];
    for (position, colour) in pattern.colours().into_iter().enumerate() {
        block[colour * 4 + position] = 1.0;
    }
    let block = Tensor::from_slice(&block)
        .f_view([1, 3, 2, 2])?
        .f_to_kind(like.kind())?
        .f_to_device(like.device())?;
    tile_cfa_block(&block, h, w)
}

/// Pads the last two dimensions by mirroring about the edge pixels (scipy's `mirror`, torch's
/// `reflect`), which keeps the CFA phase of every padded pixel.
pub fn reflect_pad(x: &Tensor, pad: i64) -> PluginResult<Tensor> {
    let size = x.size();
    let (h, w) = (size[size.len() - 2], size[size.len() - 1]);
    if h <= pad || w <= pad {
        return Err(PluginError::Input(format!(
            "image {h}×{w} is too small for a {pad}-pixel reflect border (needs more than {pad} pixels per side)"
        )));
    }
    Ok(x.f_reflection_pad2d([pad, pad, pad, pad])?)
}

/// Filters each channel of `x` `[B, C, H, W]` with its own kernel (`kernels` `[C, kh, kw]`, odd sizes),
/// as a correlation over a reflect-padded border, so the output keeps the input's size.
pub fn filter_channels(x: &Tensor, kernels: &Tensor) -> PluginResult<Tensor> {
    let k = kernels.size();
    if k.len() != 3 || k[1] % 2 == 0 || k[1] != k[2] {
        return Err(PluginError::Input(format!("expected square odd-sized kernels [C, k, k], found {k:?}")));
    }
    let channels = k[0];
    let weight = kernels.f_unsqueeze(1)?.f_to_kind(x.kind())?.f_to_device(x.device())?;
    let padded = reflect_pad(x, k[1] / 2)?;
    Ok(padded.f_conv2d(&weight, None::<Tensor>, [1, 1], [0, 0], [1, 1], channels)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_mark_one_colour_per_pixel_in_the_pattern_order() {
        let like = Tensor::zeros([1], (tch::Kind::Float, tch::Device::Cpu));
        let masks = cfa_masks(CfaPattern::Grbg, 3, 5, &like).unwrap();
        assert_eq!(masks.size(), [1, 3, 3, 5]);
        // every pixel exactly one colour
        let total = masks.sum_dim_intlist([1i64].as_slice(), false, tch::Kind::Float);
        assert_eq!(total.min().double_value(&[]), 1.0);
        assert_eq!(total.max().double_value(&[]), 1.0);
        // GRBG: (0,0)=G, (0,1)=R, (1,0)=B, (1,1)=G, and the phase repeats at (2,4)=G
        assert_eq!(masks.double_value(&[0, 1, 0, 0]), 1.0);
        assert_eq!(masks.double_value(&[0, 0, 0, 1]), 1.0);
        assert_eq!(masks.double_value(&[0, 2, 1, 0]), 1.0);
        assert_eq!(masks.double_value(&[0, 1, 2, 4]), 1.0);
        assert_eq!(masks.double_value(&[0, 0, 2, 3]), 1.0);
    }

    #[test]
    fn filtering_a_constant_with_a_normalised_kernel_keeps_it_constant() {
        let x = Tensor::full([1, 2, 4, 5], 0.25, (tch::Kind::Double, tch::Device::Cpu));
        let kernels = Tensor::ones([2, 3, 3], (tch::Kind::Double, tch::Device::Cpu)) / 9.0;
        let y = filter_channels(&x, &kernels).unwrap();
        assert_eq!(y.size(), [1, 2, 4, 5]);
        assert!((y - 0.25).abs().max().double_value(&[]) < 1e-12);
    }

    #[test]
    fn too_small_images_are_refused() {
        let x = Tensor::zeros([1, 1, 1, 4], (tch::Kind::Float, tch::Device::Cpu));
        assert!(reflect_pad(&x, 1).unwrap_err().to_string().contains("too small"));
    }
}
