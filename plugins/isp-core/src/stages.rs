//! The five camera-model stages; see the crate docs for what each computes.

use l2l_ops::{grad_enabled, mix_channels, tile_cfa_block};
use l2l_plugin_sdk::{
    expect_mosaic, expect_rgb, BuildStage, CameraSource, ComponentConfig, ImageKind, Module, ParameterSet, PluginError,
    PluginResult,
};
use serde::{Deserialize, Serialize};
use tch::Tensor;

fn config_error(message: String) -> PluginError {
    PluginError::Config(message)
}

fn require_finite(key: &str, values: &[f32]) -> PluginResult<()> {
    match values.iter().find(|v| !v.is_finite()) {
        Some(v) => Err(config_error(format!("{key}: expected finite numbers, found {v}"))),
        None => Ok(()),
    }
}

/// Config of [`BlackLevel`].
#[derive(Debug, Clone, Serialize, Deserialize, ComponentConfig)]
#[serde(deny_unknown_fields, default)]
pub struct BlackLevelConfig {
    /// Black level per 2×2 CFA position (row-major), in units of the white level.
    #[config(min = 0.0, max = 0.5, default = [0.0; 4])]
    pub black_level: [f32; 4],
    /// Rescale by 1/(1 − black) so that the white level stays 1.
    #[config(default = true)]
    pub normalize: bool,
    /// Learn the black levels.
    #[config(default = true)]
    pub trainable: bool,
    /// Take each sample's black level from its camera metadata (e.g. the DNG's tags) instead.
    #[config(default = false)]
    pub from_metadata: bool,
}

/// Subtracts a black level per CFA position: `y = (x − b) / (1 − b)` (or `x − b` without normalising).
pub struct BlackLevel {
    params: ParameterSet,
    normalize: bool,
    camera: CameraSource,
}

impl BuildStage for BlackLevel {
    type Config = BlackLevelConfig;
    const NAME: &'static str = "black_level";
    const SUMMARY: &'static str = "subtract a black level per CFA position and rescale to [0, 1]";
    const INPUT: ImageKind = ImageKind::Mosaic;
    const OUTPUT: ImageKind = ImageKind::Mosaic;
    fn build(config: BlackLevelConfig) -> PluginResult<Self> {
        require_finite("black_level", &config.black_level)?;
        if let Some(b) = config.black_level.iter().find(|b| !(0.0..1.0).contains(*b)) {
            return Err(config_error(format!(
                "black_level: expected values in [0, 1), found {b}"
            )));
        }
        let mut params = ParameterSet::new();
        params.add(
            "black_level",
            &Tensor::from_slice(&config.black_level),
            config.trainable,
        )?;
        Ok(Self {
            params,
            normalize: config.normalize,
            camera: CameraSource::new(config.from_metadata),
        })
    }
}

impl Module for BlackLevel {
    fn forward(&mut self, input: &Tensor) -> PluginResult<Tensor> {
        expect_mosaic(input, Self::NAME)?;
        let size = input.size();
        let block = if self.camera.from_metadata() {
            self.camera
                .per_sample(Self::NAME, size[0], input, |c| c.black_level.to_vec())?
                .f_view([size[0], 1, 2, 2])?
        } else {
            self.params.get("black_level")?.f_view([1, 1, 2, 2])?
        };
        let black = tile_cfa_block(&block, size[2], size[3])?;
        let shifted = input.f_sub(&black)?;
        if self.normalize {
            Ok(shifted.f_div(&black.f_neg()?.f_add_scalar(1.0)?)?)
        } else {
            Ok(shifted)
        }
    }
    /// Per pixel, by its CFA site (bands start at even rows, keeping the sites).
    fn row_reach(&self) -> Option<usize> {
        Some(0)
    }
    l2l_plugin_sdk::parameters_in!(params);
    l2l_plugin_sdk::camera_in!(camera);
}

/// Config of [`WhiteBalance`].
#[derive(Debug, Clone, Serialize, Deserialize, ComponentConfig)]
#[serde(deny_unknown_fields, default)]
pub struct WhiteBalanceConfig {
    /// White-balance gains for R, G, B; magnitude at least 1/16 (a negative gain flips its channel,
    /// as the published Microscopy camera's red gain does, undone by its colour matrix).
    #[config(min = -16.0, max = 16.0, default = [1.0; 3])]
    pub gains: [f32; 3],
    /// Learn the gains.
    #[config(default = true)]
    pub trainable: bool,
    /// Take each sample's gains from its camera metadata (e.g. the DNG's as-shot neutral) instead.
    #[config(default = false)]
    pub from_metadata: bool,
}

/// Multiplies each colour channel by its gain.
pub struct WhiteBalance {
    params: ParameterSet,
    camera: CameraSource,
}

impl BuildStage for WhiteBalance {
    type Config = WhiteBalanceConfig;
    const NAME: &'static str = "white_balance";
    const SUMMARY: &'static str = "multiply R, G, B by white-balance gains";
    const INPUT: ImageKind = ImageKind::Rgb;
    const OUTPUT: ImageKind = ImageKind::Rgb;
    fn build(config: WhiteBalanceConfig) -> PluginResult<Self> {
        require_finite("gains", &config.gains)?;
        if let Some(g) = config.gains.iter().find(|g| g.abs() < 1.0 / 16.0) {
            return Err(config_error(format!(
                "gains: expected gains of magnitude at least 1/16 (0.0625), found {g}"
            )));
        }
        let mut params = ParameterSet::new();
        params.add("gains", &Tensor::from_slice(&config.gains), config.trainable)?;
        Ok(Self {
            params,
            camera: CameraSource::new(config.from_metadata),
        })
    }
}

impl Module for WhiteBalance {
    fn forward(&mut self, input: &Tensor) -> PluginResult<Tensor> {
        expect_rgb(input, Self::NAME)?;
        let gains = if self.camera.from_metadata() {
            let batch = input.size()[0];
            self.camera
                .per_sample(Self::NAME, batch, input, |c| c.white_balance.to_vec())?
                .f_view([batch, 3, 1, 1])?
        } else {
            self.params.get("gains")?.f_view([1, 3, 1, 1])?
        };
        Ok(input.f_mul(&gains)?)
    }
    /// Per pixel (a gain per channel): bands need no extra rows.
    fn row_reach(&self) -> Option<usize> {
        Some(0)
    }
    l2l_plugin_sdk::parameters_in!(params);
    l2l_plugin_sdk::camera_in!(camera);
}

/// Config of [`ColourMatrix`].
#[derive(Debug, Clone, Serialize, Deserialize, ComponentConfig)]
#[serde(deny_unknown_fields, default)]
pub struct ColourMatrixConfig {
    /// 3×3 camera RGB → linear sRGB matrix, row k gives output channel k.
    #[config(default = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])]
    pub matrix: [[f32; 3]; 3],
    /// Learn the matrix.
    #[config(default = true)]
    pub trainable: bool,
    /// Take each sample's camera → sRGB matrix from its camera metadata instead.
    #[config(default = false)]
    pub from_metadata: bool,
}

/// Applies a 3×3 colour matrix per pixel: `y_k = Σ_c M[k][c] x_c`.
pub struct ColourMatrix {
    params: ParameterSet,
    camera: CameraSource,
}

impl BuildStage for ColourMatrix {
    type Config = ColourMatrixConfig;
    const NAME: &'static str = "colour_matrix";
    const SUMMARY: &'static str = "map camera RGB to linear sRGB with a 3×3 matrix";
    const INPUT: ImageKind = ImageKind::Rgb;
    const OUTPUT: ImageKind = ImageKind::Rgb;
    fn build(config: ColourMatrixConfig) -> PluginResult<Self> {
        let flat: Vec<f32> = config.matrix.iter().flatten().copied().collect();
        require_finite("matrix", &flat)?;
        let mut params = ParameterSet::new();
        params.add("matrix", &Tensor::from_slice(&flat).f_view([3, 3])?, config.trainable)?;
        Ok(Self {
            params,
            camera: CameraSource::new(config.from_metadata),
        })
    }
}

impl Module for ColourMatrix {
    fn forward(&mut self, input: &Tensor) -> PluginResult<Tensor> {
        expect_rgb(input, Self::NAME)?;
        if self.camera.from_metadata() {
            let batch = input.size()[0];
            let matrices = self
                .camera
                .per_sample(Self::NAME, batch, input, |c| c.colour_matrix.to_vec())?;
            mix_channels(input, &matrices.f_view([batch, 3, 3])?)
        } else {
            mix_channels(input, self.params.get("matrix")?)
        }
    }
    /// Per pixel (a matrix product of each pixel's channels): bands need no extra rows.
    fn row_reach(&self) -> Option<usize> {
        Some(0)
    }
    l2l_plugin_sdk::parameters_in!(params);
    l2l_plugin_sdk::camera_in!(camera);
}

/// Config of [`Clip`].
#[derive(Debug, Clone, Serialize, Deserialize, ComponentConfig)]
#[serde(deny_unknown_fields, default)]
pub struct ClipConfig {
    /// Lower bound.
    #[config(default = 0.0)]
    pub min: f64,
    /// Upper bound (greater than min).
    #[config(default = 1.0)]
    pub max: f64,
}

/// Clamps to `[min, max]`; the gradient passes where the input is inside.
pub struct Clip {
    params: ParameterSet,
    min: f64,
    max: f64,
}

impl BuildStage for Clip {
    type Config = ClipConfig;
    const NAME: &'static str = "clip";
    const SUMMARY: &'static str = "clamp values to [min, max]";
    const INPUT: ImageKind = ImageKind::Any;
    const OUTPUT: ImageKind = ImageKind::Any;
    fn build(config: ClipConfig) -> PluginResult<Self> {
        if !(config.min.is_finite() && config.max.is_finite() && config.min < config.max) {
            return Err(config_error(format!(
                "min/max: expected finite min < max, found min = {}, max = {}",
                config.min, config.max
            )));
        }
        Ok(Self {
            params: ParameterSet::new(),
            min: config.min,
            max: config.max,
        })
    }
}

impl Module for Clip {
    fn forward(&mut self, input: &Tensor) -> PluginResult<Tensor> {
        Ok(input.f_clamp(self.min, self.max)?)
    }
    /// Per pixel: bands need no extra rows.
    fn row_reach(&self) -> Option<usize> {
        Some(0)
    }
    l2l_plugin_sdk::parameters_in!(params);
}

/// Config of [`Gamma`].
#[derive(Debug, Clone, Serialize, Deserialize, ComponentConfig)]
#[serde(deny_unknown_fields, default)]
pub struct GammaConfig {
    /// Display gamma γ: output = x^(1/γ).
    #[config(min = 0.25, max = 8.0, default = 2.2)]
    pub gamma: f64,
    /// Positive inputs are clamped to ≥ epsilon first, keeping gradients finite; x ≤ 0 gives 0.
    #[config(default = 1e-5)]
    pub epsilon: f64,
    /// Learn γ.
    #[config(default = true)]
    pub trainable: bool,
}

/// Display encoding `y = max(x, ε)^(1/γ)` for `x > 0`, and 0 for `x ≤ 0`; without autograd (export,
/// evaluation) the exact `max(x, 0)^(1/γ)`, which differs only for `0 < x < ε`.
pub struct Gamma {
    params: ParameterSet,
    epsilon: f64,
}

impl BuildStage for Gamma {
    type Config = GammaConfig;
    const NAME: &'static str = "gamma";
    const SUMMARY: &'static str = "display gamma: x^(1/gamma)";
    const INPUT: ImageKind = ImageKind::Any;
    const OUTPUT: ImageKind = ImageKind::Any;
    fn build(config: GammaConfig) -> PluginResult<Self> {
        if !(config.gamma.is_finite() && config.gamma > 0.0) {
            return Err(config_error(format!(
                "gamma: expected a number > 0, found {}",
                config.gamma
            )));
        }
        if !(config.epsilon.is_finite() && config.epsilon > 0.0) {
            return Err(config_error(format!(
                "epsilon: expected a number > 0, found {}",
                config.epsilon
            )));
        }
        let mut params = ParameterSet::new();
        params.add("gamma", &Tensor::from_slice(&[config.gamma]), config.trainable)?;
        Ok(Self {
            params,
            epsilon: config.epsilon,
        })
    }
}

impl Module for Gamma {
    fn forward(&mut self, input: &Tensor) -> PluginResult<Tensor> {
        let exponent = self.params.get("gamma")?.f_reciprocal()?;
        if !grad_enabled() {
            // no gradient can be asked for: max(x, 0)^(1/γ) exactly (within 3 ulp), in one pass where the
            // CPU fast path takes the exponent
            let p = f64::try_from(&exponent)?;
            if l2l_ops::cpu::eligible(input) && p <= l2l_ops::cpu::MAX_EXPONENT {
                return l2l_ops::cpu::power(input, p);
            }
            let mut encoded = input.f_clamp_min(0.0)?;
            return Ok(encoded.f_pow_tensor_(&exponent)?);
        }
        let encoded = input.f_clamp_min(self.epsilon)?.f_pow(&exponent)?;
        // black stays black (as in the published x^(1/γ) after clipping); ε only guards the gradient
        Ok(encoded.f_where_self(&input.f_gt(0.0)?, &input.f_zeros_like()?)?)
    }
    /// Per pixel: bands need no extra rows.
    fn row_reach(&self) -> Option<usize> {
        Some(0)
    }
    l2l_plugin_sdk::parameters_in!(params);
}
