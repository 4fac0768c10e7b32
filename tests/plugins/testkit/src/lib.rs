//! Test-only plugin: the smallest real component of each kind, so the tests cross the ABI with all
//! three, and stages that misbehave on purpose, so the tests see how the host copes.
//!
//! - stage `panics`: panics in `forward` with a known message;
//! - stage `wrong_shape`: returns a tensor of another shape than the stage contract says;
//! - stage `nan_after`: passes its input through for `calls` calls, then returns NaN everywhere (and
//!   logs a warning when it starts: plugin logging reaches the host);
//! - stages `vignette` and `vignette_unaware`: lens shading `x · (1 + k1·r² + k2·r⁴)`, r the distance
//!   from the image's centre (1 at the corners), per pixel (row reach 0); the first takes a band's
//!   position into account, the second — the trap a per-pixel, position-dependent stage falls into —
//!   treats every band as a whole image;
//! - dataset `ramp`: `len` samples, sample i is a mosaic (4×6 unless `size` says) filled with i/len,
//!   target i % 2;
//! - task model `linear`: mean-pools each channel and applies a learnable linear layer.

use l2l_plugin_sdk::{
    Band, BuildDataset, BuildStage, BuildTaskModel, CfaPattern, ComponentConfig, Dataset, ImageKind, Module,
    ParameterSet, PluginError, PluginResult, RawMetadata, Sample,
};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// Config of the components that take none.
#[derive(Debug, Default, Clone, Serialize, Deserialize, ComponentConfig)]
#[serde(deny_unknown_fields, default)]
pub struct NoConfig {}

/// Panics in `forward`.
pub struct Panics {
    params: ParameterSet,
}

impl BuildStage for Panics {
    type Config = NoConfig;
    const NAME: &'static str = "panics";
    const SUMMARY: &'static str = "panics in forward (test)";
    const INPUT: ImageKind = ImageKind::Any;
    const OUTPUT: ImageKind = ImageKind::Any;
    fn build(_: NoConfig) -> PluginResult<Self> {
        Ok(Self {
            params: ParameterSet::new(),
        })
    }
}

impl Module for Panics {
    fn forward(&mut self, _input: &Tensor) -> PluginResult<Tensor> {
        panic!("deliberate test panic inside a plugin stage")
    }
    l2l_plugin_sdk::parameters_in!(params);
}

/// Config of [`NanAfter`].
#[derive(Debug, Clone, Serialize, Deserialize, ComponentConfig)]
#[serde(deny_unknown_fields, default)]
pub struct NanAfterConfig {
    /// Calls passed through before the NaNs.
    #[config(default = 3)]
    pub calls: usize,
}

/// The identity for `calls` calls, then NaN: a numeric fault at a known step.
pub struct NanAfter {
    params: ParameterSet,
    left: usize,
}

impl BuildStage for NanAfter {
    type Config = NanAfterConfig;
    const NAME: &'static str = "nan_after";
    const SUMMARY: &'static str = "identity, then NaN after some calls (test)";
    const INPUT: ImageKind = ImageKind::Any;
    const OUTPUT: ImageKind = ImageKind::Any;
    fn build(config: NanAfterConfig) -> PluginResult<Self> {
        Ok(Self {
            params: ParameterSet::new(),
            left: config.calls,
        })
    }
}

impl Module for NanAfter {
    fn forward(&mut self, input: &Tensor) -> PluginResult<Tensor> {
        if self.left == 0 {
            l2l_plugin_sdk::tracing::warn!(shape = ?input.size(), "nan_after: returning NaN from now on");
            return Ok(input.f_full_like(f64::NAN)?);
        }
        self.left -= 1;
        Ok(input.shallow_clone())
    }
    l2l_plugin_sdk::parameters_in!(params);
}

/// Returns its input with the last column cut off.
pub struct WrongShape {
    params: ParameterSet,
}

impl BuildStage for WrongShape {
    type Config = NoConfig;
    const NAME: &'static str = "wrong_shape";
    const SUMMARY: &'static str = "cuts a column off (test)";
    const INPUT: ImageKind = ImageKind::Any;
    const OUTPUT: ImageKind = ImageKind::Any;
    fn build(_: NoConfig) -> PluginResult<Self> {
        Ok(Self {
            params: ParameterSet::new(),
        })
    }
}

impl Module for WrongShape {
    fn forward(&mut self, input: &Tensor) -> PluginResult<Tensor> {
        let width = input.size()[input.dim() - 1];
        Ok(input.f_narrow(-1, 0, width - 1)?)
    }
    l2l_plugin_sdk::parameters_in!(params);
}

/// Config of [`Vignette`].
#[derive(Debug, Clone, Serialize, Deserialize, ComponentConfig)]
#[serde(deny_unknown_fields, default)]
pub struct VignetteConfig {
    /// Gain change at the corners per r²: the corner gain is 1 + k1 + k2.
    #[config(min = -0.9, max = 1.0, default = -0.3)]
    pub k1: f64,
    /// Gain change per r⁴.
    #[config(min = -0.9, max = 1.0, default = 0.0)]
    pub k2: f64,
}

/// Lens shading; `AWARE`: whether it reads a band's position (see the crate docs).
pub struct Vignette<const AWARE: bool> {
    params: ParameterSet,
}

impl<const AWARE: bool> BuildStage for Vignette<AWARE> {
    type Config = VignetteConfig;
    const NAME: &'static str = if AWARE { "vignette" } else { "vignette_unaware" };
    const SUMMARY: &'static str = if AWARE {
        "lens shading that knows where a band is (test)"
    } else {
        "lens shading that takes every band for the whole image (test)"
    };
    const INPUT: ImageKind = ImageKind::Any;
    const OUTPUT: ImageKind = ImageKind::Any;
    fn build(config: VignetteConfig) -> PluginResult<Self> {
        l2l_plugin_sdk::tracing::debug!(k1 = config.k1, k2 = config.k2, "vignette built");
        let mut params = ParameterSet::new();
        params.add("k1", &Tensor::from_slice(&[config.k1]), true)?;
        params.add("k2", &Tensor::from_slice(&[config.k2]), true)?;
        Ok(Self { params })
    }
}

impl<const AWARE: bool> Vignette<AWARE> {
    /// The shaded rows `band.first_row ..` of the full image.
    fn shade(&self, input: &Tensor, band: Band) -> PluginResult<Tensor> {
        let size = input.size();
        let (rows, width) = (size[size.len() - 2], size[size.len() - 1]);
        let options = (input.kind(), input.device());
        let (centre_y, centre_x) = (band.full_height as f64 / 2.0, width as f64 / 2.0);
        let y = Tensor::f_arange(rows, options)?
            .f_add_scalar(band.first_row as f64 + 0.5 - centre_y)?
            .f_view([rows, 1])?;
        let x = Tensor::f_arange(width, options)?
            .f_add_scalar(0.5 - centre_x)?
            .f_view([1, width])?;
        let r2 = y
            .f_square()?
            .f_add(&x.f_square()?)?
            .f_div_scalar(centre_y * centre_y + centre_x * centre_x)?;
        let (k1, k2) = (self.params.get("k1")?, self.params.get("k2")?);
        let gain = r2.f_mul(k1)?.f_add(&r2.f_square()?.f_mul(k2)?)?.f_add_scalar(1.0)?;
        Ok(input.f_mul(&gain)?)
    }
}

impl<const AWARE: bool> Module for Vignette<AWARE> {
    fn forward(&mut self, input: &Tensor) -> PluginResult<Tensor> {
        let full_height = input.size()[input.dim() - 2];
        self.shade(
            input,
            Band {
                first_row: 0,
                full_height,
            },
        )
    }
    fn row_reach(&self) -> Option<usize> {
        Some(0)
    }
    fn forward_band(&mut self, input: &Tensor, band: Band) -> PluginResult<Tensor> {
        if AWARE {
            self.shade(input, band)
        } else {
            self.forward(input)
        }
    }
    l2l_plugin_sdk::parameters_in!(params);
}

/// Config of [`Ramp`].
#[derive(Debug, Clone, Serialize, Deserialize, ComponentConfig)]
#[serde(deny_unknown_fields, default)]
pub struct RampConfig {
    /// Number of samples.
    #[config(default = 4)]
    pub len: usize,
    /// Height and width of every mosaic.
    #[config(default = [4, 6])]
    pub size: [i64; 2],
}

/// Sample i: a mosaic (4×6 by default) filled with i/len, target class i % 2.
pub struct Ramp {
    len: usize,
    size: [i64; 2],
}

impl BuildDataset for Ramp {
    type Config = RampConfig;
    const NAME: &'static str = "ramp";
    const SUMMARY: &'static str = "constant mosaics i/len (test)";
    fn build(config: RampConfig) -> PluginResult<Self> {
        if config.size.iter().any(|&side| side < 2 || side % 2 != 0) {
            return Err(PluginError::Config(format!(
                "size: expected even sides of at least 2, found {:?}",
                config.size
            )));
        }
        Ok(Self {
            len: config.len,
            size: config.size,
        })
    }
}

impl Dataset for Ramp {
    fn class_names(&self) -> Option<Vec<String>> {
        Some(vec!["even".into(), "odd".into()])
    }
    fn len(&self) -> usize {
        self.len
    }
    fn sample(&self, index: usize) -> PluginResult<Sample> {
        if index >= self.len {
            return Err(PluginError::Input(format!(
                "sample {index} out of range (len {})",
                self.len
            )));
        }
        Ok(Sample {
            raw: Tensor::f_full(
                self.size,
                index as f64 / self.len as f64,
                (Kind::Float, tch::Device::Cpu),
            )?,
            target: Tensor::from((index % 2) as i64),
            metadata: RawMetadata {
                cfa_pattern: CfaPattern::Bggr,
                black_level: [0.01, 0.02, 0.03, 0.04],
                white_balance: [2.0, 1.0, 1.5],
                colour_matrix: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
                intensity: 100.0,
            },
        })
    }
}

/// Mean-pools each channel, then `logits = W · pooled + b`.
pub struct Linear {
    params: ParameterSet,
}

impl BuildTaskModel for Linear {
    type Config = NoConfig;
    const NAME: &'static str = "linear";
    const SUMMARY: &'static str = "pooled linear classifier (test)";
    fn build(_: NoConfig, num_classes: usize) -> PluginResult<Self> {
        let mut params = ParameterSet::new();
        let n = num_classes as i64;
        params.add(
            "weight",
            &Tensor::f_linspace(-1.0, 1.0, 3 * n, (Kind::Float, tch::Device::Cpu))?.f_view([n, 3])?,
            true,
        )?;
        params.add("bias", &Tensor::f_zeros([n], (Kind::Float, tch::Device::Cpu))?, true)?;
        Ok(Self { params })
    }
}

impl Module for Linear {
    fn forward(&mut self, input: &Tensor) -> PluginResult<Tensor> {
        let pooled = input.f_mean_dim([2i64, 3].as_slice(), false, input.kind())?;
        Ok(pooled.f_linear(self.params.get("weight")?, Some(self.params.get("bias")?))?)
    }
    l2l_plugin_sdk::parameters_in!(params);
}

l2l_plugin_sdk::plugin! { stages: [Panics, NanAfter, WrongShape, Vignette<true>, Vignette<false>], datasets: [Ramp], task_models: [Linear] }
