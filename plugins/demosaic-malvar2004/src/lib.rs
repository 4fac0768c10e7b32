//! l2l plugin `demosaic-malvar2004`: gradient-corrected linear demosaicing after H. S. Malvar, L. He
//! and R. Cutler, "High-quality linear interpolation for demosaicing of Bayer-patterned color
//! images", ICASSP 2004.
//!
//! Every missing sample is a bilinear estimate corrected by the Laplacian of the channel that was
//! sampled there, which the paper writes as four 5×5 filters (coefficients in eighths): green at red
//! and blue sites; red (blue) at green sites in red (blue) rows; red (blue) at green sites in the other
//! rows; red at blue sites and blue at red sites. All four CFA patterns and any size of at least 3×3.
//! By default the border is mirrored about the edge pixel, which keeps the CFA phase;
//! colour-demosaicing pads symmetrically (`padding = "symmetric"` reproduces it exactly). Linear in
//! the mosaic, hence differentiable everywhere; no learnable parameters.

use l2l_ops::{grad_enabled, pad, site_mask, CfaSites, Padding};
use l2l_plugin_sdk::{
    expect_mosaic, BuildStage, CameraSource, CfaKeys, CfaPattern, ComponentConfig, ImageKind, Module, ParameterSet,
    PluginResult,
};
use serde::{Deserialize, Serialize};
use tch::Tensor;

/// The paper's filters, in eighths, row-major 5×5, in the order the estimates are stacked.
const FILTERS: [[f32; 25]; 4] = [
    // green at red and blue sites
    [
        0., 0., -1., 0., 0., 0., 0., 2., 0., 0., -1., 2., 4., 2., -1., 0., 0., 2., 0., 0., 0., 0., -1., 0., 0.,
    ],
    // red at green sites in red rows; blue at green sites in blue rows
    [
        0., 0., 0.5, 0., 0., 0., -1., 0., -1., 0., -1., 4., 5., 4., -1., 0., -1., 0., -1., 0., 0., 0., 0.5, 0., 0.,
    ],
    // red at green sites in blue rows; blue at green sites in red rows (the transpose of the above)
    [
        0., 0., -1., 0., 0., 0., -1., 4., -1., 0., 0.5, 0., 5., 0., 0.5, 0., -1., 4., -1., 0., 0., 0., -1., 0., 0.,
    ],
    // red at blue sites; blue at red sites
    [
        0., 0., -1.5, 0., 0., 0., 2., 0., 2., 0., -1.5, 0., 6., 0., -1.5, 0., 2., 0., 2., 0., 0., 0., -1.5, 0., 0.,
    ],
];

/// Config of [`DemosaicMalvar2004`].
#[derive(Debug, Clone, Serialize, Deserialize, ComponentConfig)]
#[serde(default)]
pub struct DemosaicMalvar2004Config {
    /// The CFA layout, or the metadata's.
    #[serde(flatten)]
    pub cfa: CfaKeys,
    /// Border: mirror (keeps the CFA phase) or symmetric (as colour-demosaicing, which shifts it).
    #[config(choices, default = Padding::Mirror)]
    pub padding: Padding,
}

/// Malvar–He–Cutler demosaicing: `[B, 1, H, W]` mosaic → `[B, 3, H, W]` RGB.
pub struct DemosaicMalvar2004 {
    params: ParameterSet,
    pattern: CfaPattern,
    filters: Tensor,
    /// `filters` as values, for the CPU loop used without gradients.
    kernels: Vec<f32>,
    padding: Padding,
    camera: CameraSource,
}

impl BuildStage for DemosaicMalvar2004 {
    type Config = DemosaicMalvar2004Config;
    const NAME: &'static str = "demosaic_malvar2004";
    const SUMMARY: &'static str = "Malvar–He–Cutler (2004) gradient-corrected linear demosaicing";
    const INPUT: ImageKind = ImageKind::Mosaic;
    const OUTPUT: ImageKind = ImageKind::Rgb;
    fn build(config: DemosaicMalvar2004Config) -> PluginResult<Self> {
        let kernels: Vec<f32> = FILTERS.iter().flatten().map(|c| c / 8.0).collect();
        let filters = Tensor::from_slice(&kernels).f_view([4, 1, 5, 5])?;
        Ok(Self {
            params: ParameterSet::new(),
            pattern: config.cfa.cfa_pattern,
            filters,
            kernels,
            padding: config.padding,
            camera: config.cfa.camera(),
        })
    }
}

/// Which of [`FILTERS`] fills each colour (R, G, B) at each CFA position (`None`: the sample itself),
/// as the tensor path picks the estimates.
fn site_choices(s: &CfaSites) -> [[Option<usize>; 4]; 3] {
    let by_site = |own: [bool; 4], estimate: &dyn Fn(usize) -> Option<usize>| -> [Option<usize>; 4] {
        [0, 1, 2, 3].map(|p| if own[p] { None } else { estimate(p) })
    };
    let red = by_site(s.red, &|p| {
        Some(if s.green_in_red_rows[p] {
            1
        } else if s.green_in_blue_rows[p] {
            2
        } else {
            3
        })
    });
    let green = by_site(s.green, &|_| Some(0));
    let blue = by_site(s.blue, &|p| {
        Some(if s.green_in_blue_rows[p] {
            1
        } else if s.green_in_red_rows[p] {
            2
        } else {
            3
        })
    });
    [red, green, blue]
}

impl Module for DemosaicMalvar2004 {
    fn forward(&mut self, input: &Tensor) -> PluginResult<Tensor> {
        expect_mosaic(input, Self::NAME)?;
        let size = input.size();
        let (h, w) = (size[2], size[3]);
        let s = &CfaSites::of(self.camera.cfa_pattern_or(Self::NAME, self.pattern)?);
        if !grad_enabled() && l2l_ops::cpu::eligible(input) && h > 2 && w > 2 {
            return l2l_ops::cpu::site_filter_bank(input, &self.kernels, 5, &site_choices(s), self.padding);
        }
        let weight = self.filters.f_to_kind(input.kind())?.f_to_device(input.device())?;
        let estimates = pad(input, 2, 2, self.padding)?.f_conv2d(&weight, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1)?;
        let estimate = |i: i64| estimates.f_narrow(1, i, 1);
        // `value` at the given sites, `otherwise` elsewhere
        let pick = |sites: [bool; 4], value: &Tensor, otherwise: &Tensor| -> PluginResult<Tensor> {
            Ok(value.f_where_self(&site_mask(sites, h, w, input)?, otherwise)?)
        };
        let zeros = input.f_zeros_like()?;
        let red_or_blue = [0, 1, 2, 3].map(|p| s.red[p] || s.blue[p]);
        let green = pick(red_or_blue, &estimate(0)?, input)?;
        let red = pick(s.red, input, &zeros)?;
        let red = pick(s.green_in_red_rows, &estimate(1)?, &red)?;
        let red = pick(s.green_in_blue_rows, &estimate(2)?, &red)?;
        let red = pick(s.blue, &estimate(3)?, &red)?;
        let blue = pick(s.blue, input, &zeros)?;
        let blue = pick(s.green_in_blue_rows, &estimate(1)?, &blue)?;
        let blue = pick(s.green_in_red_rows, &estimate(2)?, &blue)?;
        let blue = pick(s.red, &estimate(3)?, &blue)?;
        Ok(Tensor::f_cat(&[red, green, blue], 1)?)
    }
    /// Two rows: the 5×5 filters (bands start at even rows, keeping the CFA sites).
    fn row_reach(&self) -> Option<usize> {
        Some(2)
    }
    l2l_plugin_sdk::parameters_in!(params);
    l2l_plugin_sdk::camera_in!(camera);
}

l2l_plugin_sdk::plugin! { stages: [DemosaicMalvar2004] }
