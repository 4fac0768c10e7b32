//! The common-corruption baseline of Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to
//! Common Corruptions and Perturbations" (ICLR 2019): ten corruptions at severities 1–5 with the
//! parameter tables of CIFAR-10-C or of ImageNet-C, applied to processed RGB batches `[B, 3, H, W]` in
//! [0, 1]. Parameters given in pixels are scaled from the table's image size (32 or 224) to the image's.
//! Random draws come from libtorch's generator (seed it for repeatable results).

use anyhow::{bail, Result};
use l2l_ops::{filter_separable, gaussian_kernel, gaussian_radius, Padding};
use tch::{Kind, Tensor};

/// The corruptions of the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Corruption {
    /// x + N(0, c²).
    GaussianNoise,
    /// Poisson(x · c) / c.
    ShotNoise,
    /// Salt and pepper on a fraction c of the values.
    ImpulseNoise,
    /// x + x · N(0, c²).
    SpeckleNoise,
    /// Gaussian blur of σ = c pixels.
    GaussianBlur,
    /// The mean of the image zoomed into its centre by each factor of c.
    ZoomBlur,
    /// (x − mean) · c + mean per channel.
    Contrast,
    /// HSV value + c.
    Brightness,
    /// HSV saturation · c₀ + c₁.
    Saturate,
    /// A random affine jitter of ±c₂ px, then a displacement field of Gaussian(σ = c₁)-smoothed noise × c₀.
    ElasticTransform,
}

/// All ten, in the order of the reports.
pub const ALL: [Corruption; 10] = [
    Corruption::GaussianNoise,
    Corruption::ShotNoise,
    Corruption::ImpulseNoise,
    Corruption::SpeckleNoise,
    Corruption::GaussianBlur,
    Corruption::ZoomBlur,
    Corruption::Contrast,
    Corruption::Brightness,
    Corruption::Saturate,
    Corruption::ElasticTransform,
];

/// Whose parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    /// CIFAR-10-C (32 × 32 images).
    Cifar10,
    /// ImageNet-C (224 × 224 images).
    Imagenet,
}

impl Table {
    /// The image side the table's pixel sizes refer to.
    pub fn image_size(self) -> f64 {
        match self {
            Table::Cifar10 => 32.0,
            Table::Imagenet => 224.0,
        }
    }
}

/// The published parameters of `corruption` at `severity` (1–5) in `table`, pixel sizes at the
/// table's image size: one value, a pair, a triple, or the zoom factors.
pub fn parameters(corruption: Corruption, severity: usize, table: Table) -> Result<Vec<f64>> {
    if !(1..=5).contains(&severity) {
        bail!("severity must be 1..5, found {severity}");
    }
    let s = severity - 1;
    let pick = |cifar: [f64; 5], imagenet: [f64; 5]| vec![if table == Table::Cifar10 { cifar[s] } else { imagenet[s] }];
    Ok(match corruption {
        Corruption::GaussianNoise => pick([0.04, 0.06, 0.08, 0.09, 0.10], [0.08, 0.12, 0.18, 0.26, 0.38]),
        Corruption::ShotNoise => pick([500.0, 250.0, 100.0, 75.0, 50.0], [60.0, 25.0, 12.0, 5.0, 3.0]),
        Corruption::ImpulseNoise => pick([0.01, 0.02, 0.03, 0.05, 0.07], [0.03, 0.06, 0.09, 0.17, 0.27]),
        Corruption::SpeckleNoise => pick([0.06, 0.1, 0.12, 0.16, 0.2], [0.15, 0.2, 0.35, 0.45, 0.6]),
        Corruption::GaussianBlur => pick([0.4, 0.6, 0.7, 0.8, 1.0], [1.0, 2.0, 3.0, 4.0, 6.0]),
        Corruption::Contrast => pick([0.75, 0.5, 0.4, 0.3, 0.15], [0.4, 0.3, 0.2, 0.1, 0.05]),
        Corruption::Brightness => pick([0.05, 0.1, 0.15, 0.2, 0.3], [0.1, 0.2, 0.3, 0.4, 0.5]),
        Corruption::Saturate => {
            let cifar = [(0.3, 0.0), (0.1, 0.0), (1.5, 0.0), (2.0, 0.1), (2.5, 0.2)];
            let imagenet = [(0.3, 0.0), (0.1, 0.0), (2.0, 0.0), (5.0, 0.1), (20.0, 0.2)];
            let (a, b) = if table == Table::Cifar10 { cifar[s] } else { imagenet[s] };
            vec![a, b]
        }
        Corruption::ZoomBlur => {
            // numpy.arange(1, end, step)
            let cifar = [(1.06, 0.01), (1.11, 0.01), (1.16, 0.01), (1.21, 0.01), (1.26, 0.01)];
            let imagenet = [(1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03)];
            let (end, step): (f64, f64) = if table == Table::Cifar10 { cifar[s] } else { imagenet[s] };
            // numpy's length, float quirks included: arange(1, 1.06, 0.01) has 7 values
            let count = ((end - 1.0) / step).ceil() as usize;
            (0..count).map(|i| 1.0 + i as f64 * step).collect()
        }
        Corruption::ElasticTransform => match table {
            Table::Cifar10 => {
                let t = [
                    (0.0, 0.0, 0.08),
                    (0.05, 0.2, 0.07),
                    (0.08, 0.06, 0.06),
                    (0.1, 0.04, 0.05),
                    (0.1, 0.03, 0.03),
                ][s];
                vec![32.0 * t.0, 32.0 * t.1, 32.0 * t.2]
            }
            Table::Imagenet => {
                // ImageNet-C multiplies by 244 (its authors meant 224; the values are as published)
                let t = [
                    (2.0, 0.7, 0.1),
                    (2.0, 0.08, 0.2),
                    (0.05, 0.01, 0.02),
                    (0.07, 0.01, 0.02),
                    (0.12, 0.01, 0.02),
                ][s];
                vec![244.0 * t.0, 244.0 * t.1, 244.0 * t.2]
            }
        },
    })
}

/// `images` `[B, 3, H, W]` in [0, 1] corrupted by `corruption` at `severity`; pixel sizes scaled from
/// the table's image size to H.
pub fn corrupt(images: &Tensor, corruption: Corruption, severity: usize, table: Table) -> Result<Tensor> {
    let c = parameters(corruption, severity, table)?;
    let size = images.size();
    if size.len() != 4 || size[1] != 3 {
        bail!("corruptions take RGB batches [B, 3, H, W], found {size:?}");
    }
    let x = images.f_clamp(0.0, 1.0)?;
    let scale = size[2] as f64 / table.image_size();
    let out = match corruption {
        Corruption::GaussianNoise => x.f_add(&x.f_randn_like()?.f_mul_scalar(c[0])?)?,
        Corruption::ShotNoise => x.f_mul_scalar(c[0])?.f_poisson()?.f_div_scalar(c[0])?,
        Corruption::ImpulseNoise => {
            let hit = x.f_rand_like()?.f_lt(c[0])?;
            let salt = x.f_rand_like()?.f_lt(0.5)?.f_to_kind(x.kind())?;
            x.f_where_self(&hit.f_logical_not()?, &salt)?
        }
        Corruption::SpeckleNoise => x.f_add(&x.f_mul(&x.f_randn_like()?.f_mul_scalar(c[0])?)?)?,
        Corruption::GaussianBlur => {
            let sigma = c[0] * scale;
            let kernel = gaussian_kernel(&Tensor::from(sigma).f_to_kind(x.kind())?, gaussian_radius(sigma).max(1))?;
            filter_separable(&x, &kernel, Padding::Nearest)?
        }
        Corruption::ZoomBlur => {
            let mut sum = x.shallow_clone();
            for &factor in &c {
                sum = sum.f_add(&affine(&x, [[1.0 / factor, 0.0, 0.0], [0.0, 1.0 / factor, 0.0]])?)?;
            }
            sum.f_div_scalar((c.len() + 1) as f64)?
        }
        Corruption::Contrast => {
            let mean = x.f_mean_dim([2i64, 3].as_slice(), true, x.kind())?;
            x.f_sub(&mean)?.f_mul_scalar(c[0])?.f_add(&mean)?
        }
        Corruption::Brightness => {
            // in HSV only V changes: every channel scales by V'/V (black becomes grey V')
            let value = x.f_amax([1i64].as_slice(), true)?;
            let new_value = value.f_add_scalar(c[0])?.f_clamp(0.0, 1.0)?;
            let ratio = new_value.f_div(&value.f_clamp_min(1e-12)?)?;
            let scaled = x.f_mul(&ratio)?;
            scaled.f_where_self(&value.f_gt(0.0)?, &new_value.f_expand_as(&x)?)?
        }
        Corruption::Saturate => {
            // in HSV only S changes: each channel is V − (V − x)·S'/S (grey: hue 0, i.e. red, as HSV gives it)
            let value = x.f_amax([1i64].as_slice(), true)?;
            let minimum = x.f_amin([1i64].as_slice(), true)?;
            let saturation = value.f_sub(&minimum)?.f_div(&value.f_clamp_min(1e-12)?)?;
            let new_saturation = saturation.f_mul_scalar(c[0])?.f_add_scalar(c[1])?.f_clamp(0.0, 1.0)?;
            let coloured = value.f_sub(
                &value
                    .f_sub(&x)?
                    .f_mul(&new_saturation.f_div(&saturation.f_clamp_min(1e-12)?)?)?,
            )?;
            let red = Tensor::from_slice(&[0.0f64, 1.0, 1.0])
                .f_view([1, 3, 1, 1])?
                .f_to_kind(x.kind())?
                .f_to_device(x.device())?;
            let grey = value.f_sub(&value.f_mul(&new_saturation)?.f_mul(&red)?)?;
            coloured.f_where_self(&saturation.f_gt(0.0)?, &grey)?
        }
        Corruption::ElasticTransform => elastic(&x, c[0] * scale, c[1] * scale, c[2] * scale)?,
    };
    Ok(out.f_clamp(0.0, 1.0)?)
}

/// Resamples `x` with the affine map `theta` of normalised coordinates (output → input), bilinear,
/// reflecting at the border.
fn affine(x: &Tensor, theta: [[f64; 3]; 2]) -> Result<Tensor> {
    let b = x.size()[0];
    let theta = Tensor::from_slice(&theta.concat())
        .f_view([1, 2, 3])?
        .f_expand([b, 2, 3], false)?
        .f_to_kind(x.kind())?
        .f_to_device(x.device())?;
    let grid = Tensor::f_affine_grid_generator(&theta, x.size(), false)?;
    Ok(x.f_grid_sampler(&grid, 0, 2, false)?)
}

/// The elastic transform: a random affine map moving three points by up to ±`jitter` px, then a
/// displacement field of uniform noise smoothed by a Gaussian of `sigma` px and scaled by `alpha` px.
fn elastic(x: &Tensor, alpha: f64, sigma: f64, jitter: f64) -> Result<Tensor> {
    let size = x.size();
    let (b, h, w) = (size[0], size[2], size[3]);
    // three points around the centre, moved at random; the affine map through them
    let (cy, cx, d) = (h as f64 / 2.0, w as f64 / 2.0, h.min(w) as f64 / 3.0);
    let source = [(cx + d, cy + d), (cx - d, cy + d), (cx - d, cy - d)];
    let moves = Vec::<f64>::try_from(Tensor::f_rand([6], (Kind::Double, tch::Device::Cpu))?)?;
    let target: Vec<(f64, f64)> = source
        .iter()
        .enumerate()
        .map(|(i, (px, py))| {
            (
                px + jitter * (2.0 * moves[2 * i] - 1.0),
                py + jitter * (2.0 * moves[2 * i + 1] - 1.0),
            )
        })
        .collect();
    // normalised coordinates (align_corners = false): u = (2p + 1) / n − 1
    let nx = |p: f64| (2.0 * p + 1.0) / w as f64 - 1.0;
    let ny = |p: f64| (2.0 * p + 1.0) / h as f64 - 1.0;
    // output → input: solve for the map taking target points back to source points
    let a = Tensor::from_slice(
        &target
            .iter()
            .flat_map(|(x, y)| [nx(*x), ny(*y), 1.0])
            .collect::<Vec<_>>(),
    )
    .f_view([3, 3])?;
    let rhs =
        Tensor::from_slice(&source.iter().flat_map(|(x, y)| [nx(*x), ny(*y)]).collect::<Vec<_>>()).f_view([3, 2])?;
    let m = Vec::<f64>::try_from(
        Tensor::f_linalg_solve(&a, &rhs, true)?
            .f_transpose(0, 1)?
            .f_contiguous()?
            .f_flatten(0, -1)?,
    )?;
    let warped = affine(x, [[m[0], m[1], m[2]], [m[3], m[4], m[5]]])?;
    if alpha == 0.0 {
        return Ok(warped);
    }
    let field = Tensor::f_rand([b, 2, h, w], (x.kind(), x.device()))?
        .f_mul_scalar(2.0)?
        .f_sub_scalar(1.0)?;
    let radius = (3.0 * sigma + 0.5) as i64;
    let smooth = if radius >= 1 {
        filter_separable(
            &field,
            &gaussian_kernel(&Tensor::from(sigma).f_to_kind(x.kind())?, radius)?,
            Padding::Symmetric,
        )?
    } else {
        field
    };
    let displacement = smooth.f_mul_scalar(alpha)?;
    // identity grid + displacement in normalised units
    let identity = Tensor::f_affine_grid_generator(
        &Tensor::from_slice(&[1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
            .f_view([1, 2, 3])?
            .f_expand([b, 2, 3], false)?
            .f_to_kind(x.kind())?
            .f_to_device(x.device())?,
        size.as_slice(),
        false,
    )?;
    let dx = displacement.f_select(1, 0)?.f_mul_scalar(2.0 / w as f64)?;
    let dy = displacement.f_select(1, 1)?.f_mul_scalar(2.0 / h as f64)?;
    let grid = identity.f_add(&Tensor::f_stack(&[dx, dy], 3)?)?;
    Ok(warped.f_grid_sampler(&grid, 0, 2, false)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn grey(value: f64, side: i64) -> Tensor {
        Tensor::full([4, 3, side, side], value, (Kind::Double, Device::Cpu))
    }

    #[test]
    fn tables_are_the_published_ones() {
        assert_eq!(
            parameters(Corruption::GaussianNoise, 3, Table::Cifar10).unwrap(),
            [0.08]
        );
        assert_eq!(
            parameters(Corruption::GaussianNoise, 5, Table::Imagenet).unwrap(),
            [0.38]
        );
        assert_eq!(parameters(Corruption::ShotNoise, 1, Table::Imagenet).unwrap(), [60.0]);
        assert_eq!(
            parameters(Corruption::Saturate, 5, Table::Imagenet).unwrap(),
            [20.0, 0.2]
        );
        // the lengths numpy.arange gives for the published ranges
        let lengths = |table| {
            (1..=5)
                .map(|s| parameters(Corruption::ZoomBlur, s, table).unwrap().len())
                .collect::<Vec<_>>()
        };
        assert_eq!(lengths(Table::Cifar10), [7, 12, 16, 21, 26]);
        assert_eq!(lengths(Table::Imagenet), [12, 16, 11, 13, 11]);
        assert_eq!(
            parameters(Corruption::ElasticTransform, 2, Table::Cifar10).unwrap(),
            [1.6, 6.4, 32.0 * 0.07]
        );
        assert!(parameters(Corruption::Contrast, 6, Table::Cifar10).is_err());
    }

    #[test]
    fn noises_have_their_published_strength() {
        tch::manual_seed(0);
        let x = grey(0.5, 64);
        let residual = |c: Corruption, s: usize| corrupt(&x, c, s, Table::Cifar10).unwrap().f_sub(&x).unwrap();
        let std = residual(Corruption::GaussianNoise, 3).std(true).double_value(&[]);
        assert!((std - 0.08).abs() < 0.003, "{std}");
        // Poisson(0.5 · 100) / 100: variance 0.5 / 100
        let var = residual(Corruption::ShotNoise, 3).var(true).double_value(&[]);
        assert!((var - 0.005).abs() < 0.0004, "{var}");
        let hit = residual(Corruption::ImpulseNoise, 5)
            .abs()
            .gt(1e-9)
            .to_kind(Kind::Double)
            .mean(Kind::Double)
            .double_value(&[]);
        assert!((hit - 0.07).abs() < 0.005, "{hit}");
        let std = residual(Corruption::SpeckleNoise, 5).std(true).double_value(&[]);
        assert!((std - 0.1).abs() < 0.004, "{std}");
    }

    #[test]
    fn colour_corruptions_follow_their_hsv_definitions() {
        let x = Tensor::from_slice(&[0.6f64, 0.3, 0.15])
            .view([1, 3, 1, 1])
            .expand([1, 3, 32, 32], false)
            .contiguous();
        // brightness: V 0.6 → 0.65, hue and saturation kept (channels scale together)
        let b = corrupt(&x, Corruption::Brightness, 1, Table::Cifar10).unwrap();
        let rgb: Vec<f64> = (0..3).map(|c| b.double_value(&[0, c, 0, 0])).collect();
        for (got, want) in rgb.iter().zip([0.65, 0.325, 0.1625]) {
            assert!((got - want).abs() < 1e-9, "{rgb:?}");
        }
        // saturate ×0.3: S 0.75 → 0.225, V and hue kept
        let s = corrupt(&x, Corruption::Saturate, 1, Table::Cifar10).unwrap();
        let rgb: Vec<f64> = (0..3).map(|c| s.double_value(&[0, c, 0, 0])).collect();
        let (v, min) = (rgb[0], rgb[2]);
        assert!(
            (v - 0.6).abs() < 1e-9 && ((v - min) / v - 0.225).abs() < 1e-9,
            "{rgb:?}"
        );
        assert!(
            ((rgb[1] - min) / (v - min) - (0.3 - 0.15) / (0.6 - 0.15)).abs() < 1e-9,
            "hue moved: {rgb:?}"
        );
        // contrast: halfway to the mean
        let ramp = Tensor::linspace(0.0, 1.0, 3 * 32 * 32, (Kind::Double, Device::Cpu)).view([1, 3, 32, 32]);
        let c = corrupt(&ramp, Corruption::Contrast, 2, Table::Cifar10).unwrap();
        let mean = ramp.mean_dim([2i64, 3].as_slice(), true, Kind::Double);
        assert!(c.allclose(&((&ramp - &mean) * 0.5 + &mean), 1e-12, 1e-12, false));
    }

    #[test]
    fn geometric_corruptions_keep_flat_images_flat_and_blur_smooths() {
        tch::manual_seed(1);
        let flat = grey(0.4, 48);
        for c in [
            Corruption::ZoomBlur,
            Corruption::ElasticTransform,
            Corruption::GaussianBlur,
        ] {
            for table in [Table::Cifar10, Table::Imagenet] {
                let out = corrupt(&flat, c, 3, table).unwrap();
                assert!(out.allclose(&flat, 1e-6, 1e-6, false), "{c:?} changed a flat image");
            }
        }
        let noise = Tensor::rand([1, 3, 48, 48], (Kind::Double, Device::Cpu));
        let blurred = corrupt(&noise, Corruption::GaussianBlur, 5, Table::Cifar10).unwrap();
        assert!(blurred.std(true).double_value(&[]) < 0.5 * noise.std(true).double_value(&[]));
        let moved = corrupt(&noise, Corruption::ElasticTransform, 4, Table::Cifar10).unwrap();
        assert!(!moved.allclose(&noise, 1e-3, 1e-3, false));
    }
}
