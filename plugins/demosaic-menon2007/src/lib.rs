//! l2l plugin `demosaic-menon2007`: demosaicing with directional filtering and a posteriori decision
//! (DDFAPD), after D. Menon, S. Andriani and G. Calvagno, IEEE Trans. Image Processing 16(1),
//! 132–141, 2007, with the paper's refining step; the reference is colour-demosaicing's
//! `demosaicing_CFA_Bayer_Menon2007`, followed operation by operation.
//!
//! 1. Green is interpolated horizontally and vertically with the filter `[-¼, ½, ½, ½, -¼]`.
//! 2. The decision: colour differences of each direction are compared with their neighbours two
//!    samples away; the direction with the smaller weighted variation (5×5 window) wins per pixel.
//! 3. Red and blue are filled from green plus interpolated colour differences, along the decided
//!    direction at red/blue sites.
//! 4. Refining (optional): the colour differences are smoothed along the decided direction (3-tap
//!    mean) and the samples rebuilt from them.
//!
//! Differentiable in the mosaic almost everywhere: the decision is a per-pixel selection, piecewise
//! constant in the input, and gradients flow through the selected estimate. All four CFA patterns,
//! any size of at least 3×3 (mirrored borders, as the reference).

mod cpu;

use l2l_ops::{grad_enabled, shifted_sum, site_mask, CfaSites};
use l2l_plugin_sdk::{
    expect_mosaic, BuildStage, CameraSource, CfaKeys, CfaPattern, ComponentConfig, ImageKind, Module, ParameterSet,
    PluginResult,
};
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// `h0 + h1` of the paper: the directional green interpolator, as offsets and weights.
const GREEN_TAPS: [(i64, f64); 5] = [(-2, -0.25), (-1, 0.5), (0, 0.5), (1, 0.5), (2, -0.25)];
/// Mean of the two neighbours.
const NEIGHBOUR_TAPS: [(i64, f64); 2] = [(-1, 0.5), (1, 0.5)];
/// Three-sample mean of the refining step.
const MEAN3_TAPS: [(i64, f64); 3] = [(-1, 1.0 / 3.0), (0, 1.0 / 3.0), (1, 1.0 / 3.0)];
/// The decision's window for horizontal differences, as the paper and the reference convolve it.
const DECISION_WINDOW: [f32; 25] = [
    0., 0., 1., 0., 1., 0., 0., 0., 1., 0., 0., 0., 3., 0., 3., 0., 0., 0., 1., 0., 0., 0., 1., 0., 1.,
];

/// Config of [`DemosaicMenon2007`].
#[derive(Debug, Clone, Serialize, Deserialize, ComponentConfig)]
#[serde(default)]
pub struct DemosaicMenon2007Config {
    /// The CFA layout, or the metadata's.
    #[serde(flatten)]
    pub cfa: CfaKeys,
    /// Apply the paper's refining step (smoothed colour differences).
    #[config(default = true)]
    pub refine: bool,
}

/// DDFAPD demosaicing: `[B, 1, H, W]` mosaic → `[B, 3, H, W]` RGB.
pub struct DemosaicMenon2007 {
    params: ParameterSet,
    pattern: CfaPattern,
    camera: CameraSource,
    refine: bool,
    /// The decision windows as correlation weights `[2, 1, 5, 5]`: horizontal, vertical.
    windows: Tensor,
}

impl BuildStage for DemosaicMenon2007 {
    type Config = DemosaicMenon2007Config;
    const NAME: &'static str = "demosaic_menon2007";
    const SUMMARY: &'static str = "Menon et al. (2007) directional filtering with a posteriori decision";
    const INPUT: ImageKind = ImageKind::Mosaic;
    const OUTPUT: ImageKind = ImageKind::Rgb;
    fn build(config: DemosaicMenon2007Config) -> PluginResult<Self> {
        // scipy's convolve flips the window; a correlation with the flipped window is the same
        let horizontal = Tensor::from_slice(&DECISION_WINDOW).f_view([5, 5])?;
        let vertical = horizontal.f_transpose(0, 1)?;
        let windows = Tensor::f_stack(&[horizontal, vertical], 0)?
            .f_flip([1, 2])?
            .f_unsqueeze(1)?
            .f_contiguous()?;
        Ok(Self {
            params: ParameterSet::new(),
            pattern: config.cfa.cfa_pattern,
            camera: config.cfa.camera(),
            refine: config.refine,
            windows,
        })
    }
}

/// Horizontal and vertical 1-D filters with mirrored borders.
fn along_rows(x: &Tensor, taps: &[(i64, f64)]) -> PluginResult<Tensor> {
    shifted_sum(x, -1, taps)
}
fn along_columns(x: &Tensor, taps: &[(i64, f64)]) -> PluginResult<Tensor> {
    shifted_sum(x, -2, taps)
}

/// The per-pixel masks of the CFA sites the algorithm selects by, built once per forward pass.
struct SiteMasks {
    red: Tensor,
    green: Tensor,
    blue: Tensor,
    green_in_red_rows: Tensor,
    green_in_blue_rows: Tensor,
}

impl SiteMasks {
    fn new(s: &CfaSites, like: &Tensor) -> PluginResult<Self> {
        let size = like.size();
        let mask = |sites: [bool; 4]| site_mask(sites, size[2], size[3], like);
        Ok(Self {
            red: mask(s.red)?,
            green: mask(s.green)?,
            blue: mask(s.blue)?,
            green_in_red_rows: mask(s.green_in_red_rows)?,
            green_in_blue_rows: mask(s.green_in_blue_rows)?,
        })
    }
}

/// `value` where `mask` is set, `otherwise` elsewhere.
fn pick(mask: &Tensor, value: &Tensor, otherwise: &Tensor) -> PluginResult<Tensor> {
    Ok(value.f_where_self(mask, otherwise)?)
}

impl DemosaicMenon2007 {
    /// Steps 1–3: the directional estimate, the decision (true: horizontal) and the filled planes.
    fn interpolate(&self, x: &Tensor, s: &SiteMasks) -> PluginResult<(Tensor, Tensor, Tensor, Tensor)> {
        let zeros = x.f_zeros_like()?;

        let green_h = pick(&s.green, x, &along_rows(x, &GREEN_TAPS)?)?;
        let green_v = pick(&s.green, x, &along_columns(x, &GREEN_TAPS)?)?;
        let diff_h = pick(&s.green, &zeros, &x.f_sub(&green_h)?)?;
        let diff_v = pick(&s.green, &zeros, &x.f_sub(&green_v)?)?;
        let variation_h = along_rows(&diff_h, &[(0, 1.0), (2, -1.0)])?.f_abs()?;
        let variation_v = along_columns(&diff_v, &[(0, 1.0), (2, -1.0)])?.f_abs()?;
        let windows = self.windows.f_to_kind(x.kind())?.f_to_device(x.device())?;
        // (without autograd on the CPU, `forward` takes the fused path in `cpu` instead)
        let weigh = |variation: &Tensor, window: i64| -> PluginResult<Tensor> {
            let padded = variation.f_constant_pad_nd([2, 2, 2, 2])?;
            Ok(padded.f_conv2d(
                &windows.f_narrow(0, window, 1)?,
                None::<Tensor>,
                [1, 1],
                [0, 0],
                [1, 1],
                1,
            )?)
        };
        let horizontal = weigh(&variation_v, 1)?.f_ge_tensor(&weigh(&variation_h, 0)?)?;
        let green = green_h.f_where_self(&horizontal, &green_v)?;

        // `base` plus the neighbours' mean difference of `colour` to it, along rows or columns (the
        // reference filters colour and base separately; the filter is linear, so once is enough)
        let with_rows = |base: &Tensor, colour: &Tensor| -> PluginResult<Tensor> {
            Ok(base.f_add(&along_rows(&colour.f_sub(base)?, &NEIGHBOUR_TAPS)?)?)
        };
        let with_columns = |base: &Tensor, colour: &Tensor| -> PluginResult<Tensor> {
            Ok(base.f_add(&along_columns(&colour.f_sub(base)?, &NEIGHBOUR_TAPS)?)?)
        };
        let red = pick(&s.red, x, &zeros)?;
        let red = pick(&s.green_in_red_rows, &with_rows(&green, &red)?, &red)?;
        let red = pick(&s.green_in_blue_rows, &with_columns(&green, &red)?, &red)?;
        let blue = pick(&s.blue, x, &zeros)?;
        let blue = pick(&s.green_in_blue_rows, &with_rows(&green, &blue)?, &blue)?;
        let blue = pick(&s.green_in_red_rows, &with_columns(&green, &blue)?, &blue)?;
        let red_at_blue = with_rows(&blue, &red)?.f_where_self(&horizontal, &with_columns(&blue, &red)?)?;
        let red = pick(&s.blue, &red_at_blue, &red)?;
        let blue_at_red = with_rows(&red, &blue)?.f_where_self(&horizontal, &with_columns(&red, &blue)?)?;
        let blue = pick(&s.red, &blue_at_red, &blue)?;
        Ok((red, green, blue, horizontal))
    }

    /// Step 4: colour differences smoothed along the decided direction, samples rebuilt from them.
    fn refine(
        &self,
        s: &SiteMasks,
        red: Tensor,
        green: Tensor,
        blue: Tensor,
        horizontal: &Tensor,
    ) -> PluginResult<Tensor> {
        let directional_mean = |t: &Tensor| -> PluginResult<Tensor> {
            Ok(along_rows(t, &MEAN3_TAPS)?.f_where_self(horizontal, &along_columns(t, &MEAN3_TAPS)?)?)
        };
        let red_difference = directional_mean(&red.f_sub(&green)?)?;
        let blue_difference = directional_mean(&blue.f_sub(&green)?)?;
        let green = pick(&s.red, &red.f_sub(&red_difference)?, &green)?;
        let green = pick(&s.blue, &blue.f_sub(&blue_difference)?, &green)?;

        let red_minus_green = red.f_sub(&green)?;
        let blue_minus_green = blue.f_sub(&green)?;
        let red = pick(
            &s.green_in_blue_rows,
            &green.f_add(&along_columns(&red_minus_green, &NEIGHBOUR_TAPS)?)?,
            &red,
        )?;
        let red = pick(
            &s.green_in_red_rows,
            &green.f_add(&along_rows(&red_minus_green, &NEIGHBOUR_TAPS)?)?,
            &red,
        )?;
        let blue = pick(
            &s.green_in_red_rows,
            &green.f_add(&along_columns(&blue_minus_green, &NEIGHBOUR_TAPS)?)?,
            &blue,
        )?;
        let blue = pick(
            &s.green_in_blue_rows,
            &green.f_add(&along_rows(&blue_minus_green, &NEIGHBOUR_TAPS)?)?,
            &blue,
        )?;

        let red_minus_blue = directional_mean(&red.f_sub(&blue)?)?;
        let red = pick(&s.blue, &blue.f_add(&red_minus_blue)?, &red)?;
        let blue = pick(&s.red, &red.f_sub(&red_minus_blue)?, &blue)?;
        Ok(Tensor::f_cat(&[red, green, blue], 1)?)
    }
}

impl Module for DemosaicMenon2007 {
    fn forward(&mut self, input: &Tensor) -> PluginResult<Tensor> {
        expect_mosaic(input, Self::NAME)?;
        let sites = CfaSites::of(self.camera.cfa_pattern_or(Self::NAME, self.pattern)?);
        let size = input.size();
        if !grad_enabled() && l2l_ops::cpu::eligible(input) && size[2] >= 3 && size[3] >= 3 {
            let windows: Vec<f32> = Vec::try_from(&self.windows.f_flatten(0, -1)?.f_to_kind(tch::Kind::Float)?)?;
            let windows: &[f32; 50] = windows
                .as_slice()
                .try_into()
                .map_err(|_| l2l_plugin_sdk::PluginError::Input("decision windows: expected 2 × 5 × 5".into()))?;
            return cpu::demosaic(input, &sites, windows, self.refine);
        }
        let sites = SiteMasks::new(&sites, input)?;
        let (red, green, blue, horizontal) = self.interpolate(input, &sites)?;
        if self.refine {
            self.refine(&sites, red, green, blue, &horizontal)
        } else {
            Ok(Tensor::f_cat(&[red, green, blue], 1)?)
        }
    }
    /// None, although its output rows reach only 8 input rows (6 without refining; tests/bands.rs): its
    /// fused CPU path is faster on the whole image than band by band with 8 extra rows on each side
    /// (12-MP export of its four pipelines: 2.2–2.7 s whole, 2.8–2.9 s in bands).
    fn row_reach(&self) -> Option<usize> {
        None
    }
    l2l_plugin_sdk::parameters_in!(params);
    l2l_plugin_sdk::camera_in!(camera);
}

l2l_plugin_sdk::plugin! { stages: [DemosaicMenon2007] }
