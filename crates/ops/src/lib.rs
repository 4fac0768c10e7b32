//! Tensor helpers that several l2l plugins need, written once: CFA masks and per-position maps,
//! reflect padding, per-channel 2-D filtering; with the `testing` feature (plugins' dev-dependencies only)
//! also the gradient and band checks and the reference fixtures their tests use. Every tensor
//! function is differentiable in its tensor arguments and works on any device and float precision.
//!
//! Not a plugin: it registers nothing. Not for algorithms owned by one plugin.

#[cfg(feature = "testing")]
pub mod bandcheck;
pub mod cpu;
#[cfg(feature = "testing")]
pub mod gradcheck;
mod padding;
#[cfg(feature = "testing")]
pub mod reference;

use l2l_plugin_sdk::{CfaPattern, PluginError, PluginResult};
use padding::padded_indices;
pub use padding::Padding;
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

/// Which of the four positions of the 2×2 CFA block (row-major) hold each kind of sample: what
/// demosaicers select their estimates by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CfaSites {
    /// Red samples.
    pub red: [bool; 4],
    /// Green samples (two per block).
    pub green: [bool; 4],
    /// Blue samples.
    pub blue: [bool; 4],
    /// Green samples in the rows that hold red (their columns hold blue).
    pub green_in_red_rows: [bool; 4],
    /// Green samples in the rows that hold blue (their columns hold red).
    pub green_in_blue_rows: [bool; 4],
}

impl CfaSites {
    /// The sites of `pattern`.
    pub fn of(pattern: CfaPattern) -> Self {
        let colours = pattern.colours();
        let where_colour = |c: usize| colours.map(|x| x == c);
        let red_row = colours.iter().position(|&c| c == 0).unwrap_or(0) / 2;
        let green = where_colour(1);
        let mut green_in_red_rows = [false; 4];
        let mut green_in_blue_rows = [false; 4];
        for p in 0..4 {
            green_in_red_rows[p] = green[p] && p / 2 == red_row;
            green_in_blue_rows[p] = green[p] && p / 2 != red_row;
        }
        CfaSites {
            red: where_colour(0),
            green,
            blue: where_colour(2),
            green_in_red_rows,
            green_in_blue_rows,
        }
    }
}

/// A boolean `[1, 1, h, w]` mask, true at the pixels whose 2×2-block position is set in `sites`, on
/// `like`'s device: the condition of a `where` that picks per CFA site.
pub fn site_mask(sites: [bool; 4], h: i64, w: i64, like: &Tensor) -> PluginResult<Tensor> {
    let block = Tensor::from_slice(&sites.map(u8::from))
        .f_view([1, 1, 2, 2])?
        .f_to_device(like.device())?;
    Ok(tile_cfa_block(&block, h, w)?.f_to_kind(tch::Kind::Bool)?)
}

/// Each 2×2 CFA block of a mosaic `[B, 1, H, W]` as one RGB pixel — red, the mean of the two greens,
/// blue — giving `[B, 3, H/2, W/2]` with no interpolation; `stage` names the caller in errors.
pub fn pack_cfa(input: &Tensor, pattern: CfaPattern, stage: &str) -> PluginResult<Tensor> {
    let size = input.size();
    if size.len() != 4 || size[1] != 1 || size[2] % 2 != 0 || size[3] % 2 != 0 {
        return Err(PluginError::Input(format!(
            "{stage}: expected a mosaic [B, 1, H, W] with even height and width (whole 2×2 CFA blocks), found {size:?}"
        )));
    }
    let mut weights = [0f32; 12];
    for (position, colour) in pattern.colours().into_iter().enumerate() {
        weights[colour * 4 + position] = if colour == 1 { 0.5 } else { 1.0 };
    }
    let weights = Tensor::from_slice(&weights).f_view([3, 4])?;
    mix_channels(&input.f_pixel_unshuffle(2)?, &weights)
}

/// Mean structural similarity of two image batches `[B, C, H, W]` with values in [0, 1] (Wang et al.,
/// "Image Quality Assessment: From Error Visibility to Structural Similarity", 2004): an 11×11 Gaussian
/// window of σ = 1.5, C1 = 0.01², C2 = 0.03², population covariances, averaged over every window that
/// lies inside the image and over channels and samples — scikit-image's `structural_similarity` with
/// `gaussian_weights=True, use_sample_covariance=False, data_range=1`. Differentiable in both.
pub fn ssim(a: &Tensor, b: &Tensor) -> PluginResult<Tensor> {
    let size = a.size();
    if size.len() != 4 || b.size() != size || size[2] < 11 || size[3] < 11 {
        return Err(PluginError::Input(format!(
            "ssim: expected two batches [B, C, H, W] of one size, at least 11×11, found {:?} and {:?}",
            size,
            b.size()
        )));
    }
    let channels = size[1];
    let line = gaussian_kernel(&Tensor::from(1.5f64).f_to_kind(a.kind())?.f_to_device(a.device())?, 5)?;
    let window = line
        .f_unsqueeze(1)?
        .f_matmul(&line.f_unsqueeze(0)?)?
        .f_expand([channels, 1, 11, 11], false)?
        .f_contiguous()?;
    let filter = |x: &Tensor| x.f_conv2d::<Tensor>(&window, None, [1, 1], [0, 0], [1, 1], channels);
    let (mu_a, mu_b) = (filter(a)?, filter(b)?);
    let var_a = filter(&a.f_square()?)?.f_sub(&mu_a.f_square()?)?;
    let var_b = filter(&b.f_square()?)?.f_sub(&mu_b.f_square()?)?;
    let covariance = filter(&a.f_mul(b)?)?.f_sub(&mu_a.f_mul(&mu_b)?)?;
    let (c1, c2) = (0.01f64.powi(2), 0.03f64.powi(2));
    let numerator = mu_a
        .f_mul(&mu_b)?
        .f_mul_scalar(2.0)?
        .f_add_scalar(c1)?
        .f_mul(&covariance.f_mul_scalar(2.0)?.f_add_scalar(c2)?)?;
    let denominator = mu_a
        .f_square()?
        .f_add(&mu_b.f_square()?)?
        .f_add_scalar(c1)?
        .f_mul(&var_a.f_add(&var_b)?.f_add_scalar(c2)?)?;
    Ok(numerator.f_div(&denominator)?.f_mean(a.kind())?)
}

/// Whether libtorch records operations for autograd on this thread (false inside `no_grad`, as when
/// the host exports or evaluates): stages may then take cheaper paths that need no gradient.
pub fn grad_enabled() -> bool {
    // SAFETY: sets this thread's grad mode and puts the previous one back at once; no tensor is touched.
    unsafe {
        let previous = torch_sys::at_grad_set_enabled(1);
        torch_sys::at_grad_set_enabled(previous);
        previous != 0
    }
}

/// Pads the last two dimensions by `pad_h` rows and `pad_w` columns on each side.
pub fn pad(x: &Tensor, pad_h: i64, pad_w: i64, mode: Padding) -> PluginResult<Tensor> {
    let size = x.size();
    let (h, w) = (size[size.len() - 2], size[size.len() - 1]);
    if mode == Padding::Mirror && (h <= pad_h || w <= pad_w) {
        return Err(PluginError::Input(format!(
            "image {h}×{w} is too small for a mirrored border of {pad_h}×{pad_w} (needs more pixels than the border per side)"
        )));
    }
    // libtorch's own padding kernels where one fits; the symmetric mode from flipped edge slices
    // (several times faster than gathering rows and columns by index)
    match mode {
        Padding::Zero => return Ok(x.f_constant_pad_nd([pad_w, pad_w, pad_h, pad_h])?),
        Padding::Mirror if x.dim() == 4 => return Ok(x.f_reflection_pad2d([pad_w, pad_w, pad_h, pad_h])?),
        Padding::Nearest if x.dim() == 4 => return Ok(x.f_replication_pad2d([pad_w, pad_w, pad_h, pad_h])?),
        Padding::Symmetric if pad_h <= h && pad_w <= w => {
            let flip_edges = |t: &Tensor, axis: i64, n: i64, len: i64| -> PluginResult<Tensor> {
                if n == 0 {
                    return Ok(t.shallow_clone());
                }
                let before = t.f_narrow(axis, 0, n)?.f_flip([axis])?;
                let after = t.f_narrow(axis, len - n, n)?.f_flip([axis])?;
                Ok(Tensor::f_cat(&[before, t.shallow_clone(), after], axis)?)
            };
            return flip_edges(&flip_edges(x, -2, pad_h, h)?, -1, pad_w, w);
        }
        _ => {}
    }
    let device = x.device();
    let rows = Tensor::from_slice(&padded_indices(h, pad_h, pad_h, mode)).f_to_device(device)?;
    let cols = Tensor::from_slice(&padded_indices(w, pad_w, pad_w, mode)).f_to_device(device)?;
    let dims = x.dim() as i64;
    Ok(x.f_index_select(dims - 2, &rows)?.f_index_select(dims - 1, &cols)?)
}

/// `Σ_k weight_k · x[.., i + offset_k]` along `axis` (-1: columns, -2: rows), with mirrored borders:
/// a 1-D filter (scipy's `convolve1d(mode="mirror")` with the taps written as offsets), computed from
/// shifted views rather than a convolution, which is cheaper for a few taps.
pub fn shifted_sum(x: &Tensor, axis: i64, taps: &[(i64, f64)]) -> PluginResult<Tensor> {
    let reach = taps.iter().map(|(o, _)| o.abs()).max().unwrap_or(0);
    let len = x.size()[(x.dim() as i64 + axis) as usize];
    if !grad_enabled() && cpu::eligible(x) && len > reach && !taps.is_empty() {
        // libtorch multiplies a float tensor by a scalar in float: the same weights as here
        let taps: Vec<(i64, f32)> = taps.iter().map(|&(o, w)| (o, w as f32)).collect();
        return cpu::shifted_sum(x, axis, &taps, Padding::Mirror);
    }
    let padded = if axis == -1 {
        pad(x, 0, reach, Padding::Mirror)?
    } else {
        pad(x, reach, 0, Padding::Mirror)?
    };
    let mut sum: Option<Tensor> = None;
    for &(offset, weight) in taps {
        let term = padded.f_narrow(axis, reach + offset, len)?.f_mul_scalar(weight)?;
        sum = Some(match sum {
            Some(s) => s.f_add(&term)?,
            None => term,
        });
    }
    sum.ok_or_else(|| PluginError::Input("shifted_sum needs at least one tap".into()))
}

/// Filters each channel of `x` `[B, C, H, W]` with its own kernel (`kernels` `[C, kh, kw]`, odd sizes),
/// as a correlation over a `padding` border, so the output keeps the input's size. Differentiable in
/// `x` and `kernels`.
///
/// Computed as a weighted sum of shifted views, not a convolution: on the CPU, libtorch's convolution
/// of few channels is 1.5–4 times slower for these small kernels (measured at 8×256² forward + backward
/// and at 12 MP forward). Taps that are zero in every channel are skipped when no gradient can reach the
/// kernel.
pub fn filter_channels_padded(x: &Tensor, kernels: &Tensor, padding: Padding) -> PluginResult<Tensor> {
    let k = kernels.size();
    if k.len() != 3 || k[1] % 2 == 0 || k[2] % 2 == 0 || k[0] != x.size()[1] {
        return Err(PluginError::Input(format!(
            "expected odd-sized kernels [C, kh, kw] with C = {} channels, found {k:?}",
            x.size()[1]
        )));
    }
    let (channels, kh, kw) = (k[0], k[1], k[2]);
    let size = x.size();
    let (h, w) = (size[size.len() - 2], size[size.len() - 1]);
    let kernels = kernels.f_to_kind(x.kind())?.f_to_device(x.device())?;
    let fixed_taps: Option<Vec<f64>> = if kernels.requires_grad() && grad_enabled() {
        None
    } else {
        Some(Vec::<f64>::try_from(
            kernels.f_to_kind(tch::Kind::Double)?.f_flatten(0, -1)?,
        )?)
    };
    if let Some(taps) = &fixed_taps {
        if channels == 1 && kh == kw && x.dim() == 4 && !grad_enabled() && cpu::eligible(x) {
            // one kernel, no gradient: a loop over its non-zero taps, the same sums in the same order
            let taps: Vec<f32> = taps.iter().map(|&t| t as f32).collect();
            return cpu::site_filter_bank(x, &taps, kh as usize, &[[Some(0); 4]], padding);
        }
    }
    let padded = pad(x, kh / 2, kw / 2, padding)?;
    let mut sum: Option<Tensor> = None;
    for i in 0..kh {
        for j in 0..kw {
            if let Some(taps) = &fixed_taps {
                if (0..channels).all(|c| taps[(c * kh * kw + i * kw + j) as usize] == 0.0) {
                    continue;
                }
            }
            let weight = kernels.f_select(1, i)?.f_select(1, j)?.f_view([1, channels, 1, 1])?;
            let term = padded.f_narrow(-2, i, h)?.f_narrow(-1, j, w)?.f_mul(&weight)?;
            sum = Some(match sum {
                Some(s) => s.f_add(&term)?,
                None => term,
            });
        }
    }
    match sum {
        Some(s) => Ok(s),
        None => Ok(x.f_zeros_like()?),
    }
}

/// Gaussian blur of every channel with standard deviation `sigma` (a 1-element tensor, differentiable)
/// over a kernel of `radius` (fixed: use [`gaussian_radius`] of the initial σ, as scipy does).
pub fn gaussian_blur(x: &Tensor, sigma: &Tensor, radius: i64, padding: Padding) -> PluginResult<Tensor> {
    let kernel = gaussian_kernel(&sigma.f_to_kind(x.kind())?.f_view([1])?, radius)?;
    filter_separable(x, &kernel.f_view([-1])?, padding)
}

/// RGB → YUV rows (BT.601, as scikit-image's `rgb2yuv`, which the published pipelines used).
const RGB_TO_YUV: [f64; 9] = [
    0.299,
    0.587,
    0.114,
    -0.14714119,
    -0.28886916,
    0.43601035,
    0.61497538,
    -0.51496512,
    -0.10001026,
];

/// `y_k = Σ_c M[k][c] x_c` per pixel of `x` `[B, C, H, W]` with `matrix` `[K, C]` (or one per sample,
/// `[B, K, C]`), differentiable in both.
/// A matrix product over the flattened pixels: on the CPU about ten times faster than the same
/// product written as a 1×1 convolution.
pub fn mix_channels(x: &Tensor, matrix: &Tensor) -> PluginResult<Tensor> {
    let size = x.size();
    let matrix = matrix.f_to_kind(x.kind())?.f_to_device(x.device())?;
    let rows = matrix.size()[matrix.dim() - 2];
    if !grad_enabled() && cpu::eligible(x) && x.dim() == 4 && matrix.dim() == 2 && matrix.size()[1] == size[1] {
        return cpu::mix_channels(x, &Vec::<f32>::try_from(&matrix.f_flatten(0, -1)?)?, rows as usize);
    }
    let mixed = matrix.f_matmul(&x.f_reshape([size[0], size[1], -1])?)?;
    Ok(mixed.f_view([size[0], rows, size[2], size[3]])?)
}

fn colour_transform(x: &Tensor, matrix: &Tensor) -> PluginResult<Tensor> {
    mix_channels(x, &matrix.f_view([3, 3])?)
}

/// RGB `[B, 3, H, W]` → YUV.
pub fn rgb_to_yuv(x: &Tensor) -> PluginResult<Tensor> {
    colour_transform(x, &Tensor::from_slice(&RGB_TO_YUV))
}

/// YUV `[B, 3, H, W]` → RGB (the exact inverse of [`rgb_to_yuv`]).
pub fn yuv_to_rgb(x: &Tensor) -> PluginResult<Tensor> {
    colour_transform(
        x,
        &Tensor::f_linalg_inv(&Tensor::from_slice(&RGB_TO_YUV).f_view([3, 3])?)?,
    )
}

/// What a luma filter receives: RGB (converted to YUV around the filter) or YUV already (a pipeline
/// with several luma stages converts once, with `rgb_to_yuv` and `yuv_to_rgb` stages around them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, l2l_plugin_sdk::Choices)]
#[serde(rename_all = "lowercase")]
pub enum ColourSpace {
    /// RGB in, RGB out.
    #[default]
    Rgb,
    /// YUV in, YUV out: only channel 0 is filtered.
    Yuv,
}

/// Applies `f` to the luma of a batch, leaving chroma as it is: how the published pipelines sharpen
/// and denoise (`rgb2yuv`, filter Y, `yuv2rgb`).
pub fn on_luma(
    x: &Tensor,
    space: ColourSpace,
    f: impl FnOnce(&Tensor) -> PluginResult<Tensor>,
) -> PluginResult<Tensor> {
    let yuv = match space {
        ColourSpace::Rgb => rgb_to_yuv(x)?,
        ColourSpace::Yuv => x.shallow_clone(),
    };
    let luma = f(&yuv.f_narrow(1, 0, 1)?)?;
    let filtered = Tensor::f_cat(&[luma, yuv.f_narrow(1, 1, 2)?], 1)?;
    match space {
        ColourSpace::Rgb => yuv_to_rgb(&filtered),
        ColourSpace::Yuv => Ok(filtered),
    }
}

/// The normalised 1-D Gaussian `exp(−t²/2σ²)` on `t = −radius..=radius`, differentiable in `sigma`
/// (a 1-element tensor), in `sigma`'s kind and device.
pub fn gaussian_kernel(sigma: &Tensor, radius: i64) -> PluginResult<Tensor> {
    let t = Tensor::f_arange_start(-radius, radius + 1, (sigma.kind(), sigma.device()))?;
    let weights = t.f_square()?.f_div(&sigma.f_square()?.f_mul_scalar(-2.0)?)?.f_exp()?;
    Ok(weights.f_div(&weights.f_sum(sigma.kind())?)?)
}

/// scipy's Gaussian filter radius for `sigma`: `int(truncate · σ + 0.5)` with `truncate = 4`.
pub fn gaussian_radius(sigma: f64) -> i64 {
    (4.0 * sigma + 0.5) as i64
}

/// Separable filtering of every channel of `x` `[B, C, H, W]` with the same 1-D `kernel` (odd length)
/// along rows and columns, over a `padding` border; differentiable in `x` and `kernel` (weighted sums of
/// shifted views, as [`filter_channels_padded`]).
pub fn filter_separable(x: &Tensor, kernel: &Tensor, padding: Padding) -> PluginResult<Tensor> {
    let n = kernel.size()[0];
    let kernel = kernel.f_to_kind(x.kind())?.f_to_device(x.device())?;
    if !grad_enabled() && cpu::eligible(x) {
        return cpu::filter_separable(x, &Vec::<f32>::try_from(&kernel)?, padding);
    }

    let size = x.size();
    let (h, w) = (size[size.len() - 2], size[size.len() - 1]);
    let along = |input: &Tensor, axis: i64, len: i64| -> PluginResult<Tensor> {
        let padded = if axis == -2 {
            pad(input, n / 2, 0, padding)?
        } else {
            pad(input, 0, n / 2, padding)?
        };
        let mut sum = padded.f_narrow(axis, 0, len)?.f_mul(&kernel.f_get(0)?)?;
        for t in 1..n {
            sum = sum.f_add(&padded.f_narrow(axis, t, len)?.f_mul(&kernel.f_get(t)?)?)?;
        }
        Ok(sum)
    };
    along(&along(x, -2, h)?, -1, w)
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_cpu_separable_loop_equals_the_tensor_path_bit_for_bit() {
        tch::manual_seed(5);
        let x = Tensor::rand([2, 3, 23, 41], (tch::Kind::Float, tch::Device::Cpu));
        let kernel = Tensor::from_slice(&[0.1f32, 0.25, 0.3, 0.25, 0.1]);
        for padding in [Padding::Zero, Padding::Mirror, Padding::Symmetric, Padding::Nearest] {
            let tensor_path = filter_separable(&x, &kernel, padding).unwrap();
            let taps = Vec::<f32>::try_from(&kernel).unwrap();
            let loop_path = cpu::filter_separable(&x, &taps, padding).unwrap();
            assert_eq!(
                (tensor_path - loop_path).abs().max().double_value(&[]),
                0.0,
                "{padding:?}"
            );
        }
        for axis in [-2, -1] {
            let taps = [(-2, 0.25), (0, 0.5), (1, -0.125), (2, 0.375)];
            let tensor_path = shifted_sum(&x, axis, &taps).unwrap();
            let taps_f32: Vec<(i64, f32)> = taps.iter().map(|&(o, w)| (o, w as f32)).collect();
            let loop_path = cpu::shifted_sum(&x, axis, &taps_f32, Padding::Mirror).unwrap();
            assert_eq!(
                (tensor_path - loop_path).abs().max().double_value(&[]),
                0.0,
                "axis {axis}"
            );
        }
        let matrix = Tensor::from_slice(&[0.9f32, 0.2, -0.1, -0.3, 1.4, -0.1, 0.05, -0.45, 1.4]).view([3, 3]);
        let product = mix_channels(&x, &matrix).unwrap();
        let without_grad = tch::no_grad(|| mix_channels(&x, &matrix)).unwrap();
        assert!((&product - without_grad).abs().max().double_value(&[]) < 1e-6);
        let loop_path = cpu::mix_channels(&x, &Vec::<f32>::try_from(&matrix.flatten(0, -1)).unwrap(), 3).unwrap();
        assert!((product - loop_path).abs().max().double_value(&[]) < 1e-6);
        // the fast path is what filter_separable takes without gradients
        let without_grad = tch::no_grad(|| filter_separable(&x, &kernel, Padding::Symmetric)).unwrap();
        let with_grad = filter_separable(&x, &kernel, Padding::Symmetric).unwrap();
        assert_eq!((without_grad - with_grad).abs().max().double_value(&[]), 0.0);
    }
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
    fn the_cpu_loop_for_one_kernel_equals_the_tensor_path_bit_for_bit() {
        let kernel = Tensor::from_slice(&[0.0f32, -1.0, 0.0, -1.0, 5.0, -1.0, 0.25, -1.0, 0.0]).view([1, 3, 3]);
        for (h, w) in [(1, 1), (2, 3), (7, 5), (33, 64)] {
            let x = Tensor::rand([2, 1, h, w], (tch::Kind::Float, tch::Device::Cpu));
            for padding in [Padding::Zero, Padding::Mirror, Padding::Symmetric, Padding::Nearest] {
                if padding == Padding::Mirror && (h < 2 || w < 2) {
                    continue;
                }
                let with_grad = filter_channels_padded(&x, &kernel, padding).unwrap();
                let without_grad = tch::no_grad(|| filter_channels_padded(&x, &kernel, padding)).unwrap();
                assert_eq!(without_grad.size(), [2, 1, h, w]);
                let difference = (with_grad - without_grad).abs().max().double_value(&[]);
                assert_eq!(difference, 0.0, "{h}×{w}, {padding:?}");
            }
        }
    }

    #[test]
    fn filtering_a_constant_with_a_normalised_kernel_keeps_it_constant() {
        let x = Tensor::full([1, 2, 4, 5], 0.25, (tch::Kind::Double, tch::Device::Cpu));
        let kernels = Tensor::ones([2, 3, 3], (tch::Kind::Double, tch::Device::Cpu)) / 9.0;
        let y = filter_channels_padded(&x, &kernels, Padding::Mirror).unwrap();
        assert_eq!(y.size(), [1, 2, 4, 5]);
        assert!((y - 0.25).abs().max().double_value(&[]) < 1e-12);
    }

    #[test]
    fn cfa_sites_name_the_green_by_their_row() {
        let rggb = CfaSites::of(CfaPattern::Rggb);
        assert_eq!(rggb.red, [true, false, false, false]);
        assert_eq!(rggb.green_in_red_rows, [false, true, false, false]);
        assert_eq!(rggb.green_in_blue_rows, [false, false, true, false]);
        let gbrg = CfaSites::of(CfaPattern::Gbrg);
        assert_eq!(gbrg.blue, [false, true, false, false]);
        assert_eq!(gbrg.green_in_blue_rows, [true, false, false, false]);
        assert_eq!(gbrg.green_in_red_rows, [false, false, false, true]);
        let like = Tensor::zeros([1], (tch::Kind::Float, tch::Device::Cpu));
        let mask = site_mask(gbrg.red, 3, 3, &like).unwrap();
        assert!(mask.int64_value(&[0, 0, 1, 0]) == 1 && mask.int64_value(&[0, 0, 0, 0]) == 0);
    }

    #[test]
    fn padding_modes_follow_scipys_definitions() {
        let x = Tensor::from_slice(&[1.0f64, 2.0, 3.0, 4.0]).view([1, 1, 1, 4]);
        let row = |mode| Vec::<f64>::try_from(pad(&x, 0, 2, mode).unwrap().flatten(0, -1)).unwrap();
        assert_eq!(row(Padding::Mirror), [3.0, 2.0, 1.0, 2.0, 3.0, 4.0, 3.0, 2.0]);
        assert_eq!(row(Padding::Symmetric), [2.0, 1.0, 1.0, 2.0, 3.0, 4.0, 4.0, 3.0]);
        assert_eq!(row(Padding::Nearest), [1.0, 1.0, 1.0, 2.0, 3.0, 4.0, 4.0, 4.0]);
        assert_eq!(row(Padding::Zero), [0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 0.0, 0.0]);
        // the index-gathering path (not 4-D) gives the same as libtorch's padding kernels
        for mode in [Padding::Mirror, Padding::Nearest] {
            let three_d = pad(&x.view([1, 1, 4]), 0, 2, mode).unwrap();
            assert_eq!(Vec::<f64>::try_from(three_d.flatten(0, -1)).unwrap(), row(mode));
        }
    }

    #[test]
    fn yuv_round_trips_and_grey_has_no_chroma() {
        let grey = Tensor::full([1, 3, 2, 2], 0.4, (tch::Kind::Double, tch::Device::Cpu));
        let yuv = rgb_to_yuv(&grey).unwrap();
        assert!((yuv.get(0).get(0) - 0.4).abs().max().double_value(&[]) < 1e-7);
        assert!(yuv.narrow(1, 1, 2).abs().max().double_value(&[]) < 1e-7);
        let x = Tensor::rand([2, 3, 4, 5], (tch::Kind::Double, tch::Device::Cpu));
        let back = yuv_to_rgb(&rgb_to_yuv(&x).unwrap()).unwrap();
        assert!((back - x).abs().max().double_value(&[]) < 1e-12);
    }

    #[test]
    fn the_gaussian_kernel_is_scipys() {
        // scipy.ndimage.gaussian_filter1d(unit impulse, 0.5), as scipy 1.x prints it
        let k = gaussian_kernel(&Tensor::from_slice(&[0.5f64]), gaussian_radius(0.5)).unwrap();
        let expected = [
            0.000_263_865_08,
            0.106_450_772,
            0.786_570_726,
            0.106_450_772,
            0.000_263_865_08,
        ];
        for (got, want) in Vec::<f64>::try_from(&k).unwrap().iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
    }

    #[test]
    fn shifted_sums_are_1d_filters_with_mirrored_borders() {
        let x = Tensor::from_slice(&[1.0f64, 2.0, 4.0, 8.0]).view([1, 1, 1, 4]);
        let y = shifted_sum(&x, -1, &[(-1, 0.5), (1, 0.5)]).unwrap();
        assert_eq!(Vec::<f64>::try_from(y.flatten(0, -1)).unwrap(), [2.0, 2.5, 5.0, 4.0]);
    }

    #[test]
    fn too_small_images_are_refused() {
        let x = Tensor::zeros([1, 1, 1, 4], (tch::Kind::Float, tch::Device::Cpu));
        assert!(pad(&x, 1, 1, Padding::Mirror)
            .unwrap_err()
            .to_string()
            .contains("too small"));
    }
}
