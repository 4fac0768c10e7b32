//! What a component is: a differentiable [`Module`] (stages, task models) or a [`Dataset`], each
//! built from its config by a `Build…` trait that also names it once.

use crate::camera::CameraSource;
use crate::config::ComponentConfig;
use crate::error::{PluginError, PluginResult};
use l2l_plugin_api::{Band, ImageKind, RawMetadata};
use tch::{Device, Kind, Tensor};

/// A learnable tensor of a module, with its name and whether its config asks for it to be learned.
pub struct Parameter {
    /// Unique within the module; the key in saved state.
    pub name: String,
    /// The leaf tensor the module computes with.
    pub tensor: Tensor,
    /// `requires_grad` of the tensor follows this.
    pub trainable: bool,
}

/// The named parameters of a module: what most stages keep, and what gives them state, device moves
/// and sharing for free.
#[derive(Default)]
pub struct ParameterSet {
    entries: Vec<Parameter>,
}

impl ParameterSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a parameter holding a copy of `values` (float32, CPU), learnable if `trainable`.
    pub fn add(&mut self, name: &str, values: &Tensor, trainable: bool) -> PluginResult<()> {
        let tensor = values
            .f_to_kind(Kind::Float)?
            .f_detach_copy()?
            .set_requires_grad(trainable);
        self.entries.push(Parameter {
            name: name.to_string(),
            tensor,
            trainable,
        });
        Ok(())
    }

    /// The tensor of parameter `name`.
    pub fn get(&self, name: &str) -> PluginResult<&Tensor> {
        self.entries
            .iter()
            .find(|p| p.name == name)
            .map(|p| &p.tensor)
            .ok_or_else(|| PluginError::State(format!("no parameter named `{name}`")))
    }

    /// All parameters in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &Parameter> {
        self.entries.iter()
    }

    /// Replaces every tensor by a copy on `device` in `kind`, keeping names and trainable flags.
    pub fn to(&mut self, device: Device, kind: Kind) -> PluginResult<()> {
        for p in &mut self.entries {
            let moved = p.tensor.f_detach()?.f_to_device(device)?.f_to_kind(kind)?;
            p.tensor = moved.f_detach_copy()?.set_requires_grad(p.trainable);
        }
        Ok(())
    }

    /// Copies of every parameter, for saving.
    pub fn state(&self) -> PluginResult<Vec<(String, Tensor)>> {
        self.entries
            .iter()
            .map(|p| Ok((p.name.clone(), p.tensor.f_detach_copy()?)))
            .collect()
    }

    /// Writes the given values into the parameters of those names, in place (autograd leaves stay the
    /// same tensors); the others keep theirs. For initial weights that cover part of a network.
    pub fn load_some(&mut self, state: Vec<(String, Tensor)>) -> PluginResult<()> {
        for (name, value) in state {
            let p = self
                .entries
                .iter_mut()
                .find(|p| p.name == name)
                .ok_or_else(|| PluginError::State(format!("unknown parameter `{name}` in state")))?;
            if p.tensor.size() != value.size() {
                return Err(PluginError::State(format!(
                    "parameter `{name}`: expected shape {:?}, found {:?}",
                    p.tensor.size(),
                    value.size()
                )));
            }
            let value = value.f_to_device(p.tensor.device())?.f_to_kind(p.tensor.kind())?;
            tch::no_grad(|| p.tensor.f_copy_(&value))?;
        }
        Ok(())
    }

    /// Writes saved values into the parameters in place (autograd leaves stay the same tensors).
    pub fn load_state(&mut self, state: Vec<(String, Tensor)>) -> PluginResult<()> {
        if state.len() != self.entries.len() {
            let names: Vec<&str> = state.iter().map(|(n, _)| n.as_str()).collect();
            return Err(PluginError::State(format!(
                "expected {} tensors ({}), found {} ({})",
                self.entries.len(),
                self.entries
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                state.len(),
                names.join(", ")
            )));
        }
        self.load_some(state)
    }
}

/// A differentiable module: what every stage and task model implements.
///
/// Only `forward` and access to the [`ParameterSet`] are required; modules with buffers or
/// train/eval behaviour (batch norm) override the rest.
pub trait Module: Send {
    /// Computes the output; must be differentiable in `input` and in the trainable parameters.
    fn forward(&mut self, input: &Tensor) -> PluginResult<Tensor>;
    /// The module's parameters.
    fn parameter_set(&self) -> &ParameterSet;
    /// The module's parameters, for moves and restores.
    fn parameter_set_mut(&mut self) -> &mut ParameterSet;

    /// Switches train/eval behaviour; a no-op for modules without any.
    fn set_train(&mut self, _train: bool) {}
    /// Everything to save.
    fn state(&self) -> PluginResult<Vec<(String, Tensor)>> {
        self.parameter_set().state()
    }
    /// Restores what `state` wrote.
    fn load_state(&mut self, state: Vec<(String, Tensor)>) -> PluginResult<()> {
        self.parameter_set_mut().load_state(state)
    }
    /// Moves every tensor to `device` in `kind`.
    fn to(&mut self, device: Device, kind: Kind) -> PluginResult<()> {
        self.parameter_set_mut().to(device, kind)
    }
    /// Where a stage that can read camera parameters from the data keeps them: declared with
    /// [`camera_in!`](crate::camera_in) (`None`, the default: the stage reads none).
    fn camera_source(&mut self) -> Option<&mut CameraSource> {
        None
    }
    /// Takes the camera metadata of the next batches (one per sample), for the stage's
    /// [`camera_source`](Module::camera_source) (which keeps it only when its config reads the data's).
    fn set_camera(&mut self, cameras: &[RawMetadata]) {
        if let Some(source) = self.camera_source() {
            source.set(cameras);
        }
    }
    /// How far the output reaches into the input along the image's rows: `Some(r)` when output row
    /// `i` depends on input rows `i − r ..= i + r` only (any columns; rows beyond the image's edge as
    /// the module pads them) and on nothing else of the input. The host may then run the module on
    /// horizontal bands of an image, each with `r` more rows on both sides, and join the bands — export
    /// does, so that a pipeline's intermediate images stay in cache. Bands start at even rows, so a
    /// result that depends on a row's parity (a CFA pattern) is fine; a module whose result depends
    /// on the whole image (a norm, a Fourier transform) or changes its size (packing) keeps the
    /// default, `None`.
    fn row_reach(&self) -> Option<usize> {
        None
    }
    /// Runs the module on rows `band.first_row ..` of an image `band.full_height` rows high, as
    /// export's bands do for a module with a row reach. The default forgets where the band is and
    /// calls `forward`: right for every module whose values do not depend on where a pixel is. A
    /// module whose values do (vignetting, lens distortion, anything computed from the pixel's
    /// coordinates) either overrides this, taking the band's rows as rows `first_row ..` of the
    /// full image, or keeps `row_reach` at `None` and is never banded.
    fn forward_band(&mut self, input: &Tensor, band: Band) -> PluginResult<Tensor> {
        let _ = band;
        self.forward(input)
    }
}

/// A sample as a dataset plugin produces it.
pub struct Sample {
    /// H×W float mosaic in [0, 1] (scaled by the white level, black level not subtracted).
    pub raw: Tensor,
    /// Class index (int64 scalar) or H×W int64 mask.
    pub target: Tensor,
    /// The camera's parameters for this sample.
    pub metadata: RawMetadata,
}

/// A source of raw samples.
pub trait Dataset: Send + Sync {
    /// Sorted class names for classification, `None` for segmentation.
    fn class_names(&self) -> Option<Vec<String>>;
    /// Number of samples.
    fn len(&self) -> usize;
    /// Whether there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The sample at `index`.
    fn sample(&self, index: usize) -> PluginResult<Sample>;
    /// The class index of every sample, when known without decoding (classification).
    fn labels(&self) -> Option<Vec<usize>> {
        None
    }
    /// Problems met while opening that did not stop it (skipped files), for the host to report.
    fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
}

/// A stage that can be built from its config.
pub trait BuildStage: Module + Sized + 'static {
    /// Its name in configs (`kind = "…"`), written only here.
    const NAME: &'static str;
    /// One line on what it does, for `plugins list`.
    const SUMMARY: &'static str;
    /// Its config.
    type Config: ComponentConfig;
    /// What it takes: checked against the previous stage's output when a pipeline is built.
    const INPUT: ImageKind;
    /// What it gives (`Any`: the kind it was given).
    const OUTPUT: ImageKind;
    /// Builds the stage, validating the config's values.
    fn build(config: Self::Config) -> PluginResult<Self>;
}

/// A dataset that can be built from its config.
pub trait BuildDataset: Dataset + Sized + 'static {
    /// Its name in configs (`kind = "…"`), written only here.
    const NAME: &'static str;
    /// One line on what it does, for `plugins list`.
    const SUMMARY: &'static str;
    /// Its config.
    type Config: ComponentConfig;
    /// Opens the dataset.
    fn build(config: Self::Config) -> PluginResult<Self>;
}

/// A task model that can be built from its config and the dataset's class count.
pub trait BuildTaskModel: Module + Sized + 'static {
    /// Its name in configs (`kind = "…"`), written only here.
    const NAME: &'static str;
    /// One line on what it does, for `plugins list`.
    const SUMMARY: &'static str;
    /// Its config.
    type Config: ComponentConfig;
    /// Builds the network.
    fn build(config: Self::Config, num_classes: usize) -> PluginResult<Self>;
}

/// Checks that a mosaic batch is `[B, 1, H, W]` floating point, the shape stages before demosaicing
/// take, and at least one 2×2 CFA block in size (less holds no colour to interpolate from).
pub fn expect_mosaic(input: &Tensor, stage: &str) -> PluginResult<()> {
    let size = input.size();
    if size.len() != 4 || size[1] != 1 || !input.is_floating_point() {
        return Err(PluginError::Input(format!(
            "{stage}: expected a raw mosaic batch [B, 1, H, W] of floats, found {:?} {:?}",
            size,
            input.kind()
        )));
    }
    if size[2] < 2 || size[3] < 2 {
        return Err(PluginError::Input(format!(
            "{stage}: expected a mosaic of at least 2×2 pixels (one CFA block), found {}×{}",
            size[2], size[3]
        )));
    }
    Ok(())
}

/// Checks that an image batch is `[B, 3, H, W]` floating point, the shape stages after demosaicing take.
pub fn expect_rgb(input: &Tensor, stage: &str) -> PluginResult<()> {
    let size = input.size();
    if size.len() != 4 || size[1] != 3 || !input.is_floating_point() {
        return Err(PluginError::Input(format!(
            "{stage}: expected an RGB batch [B, 3, H, W] of floats, found {:?} {:?}",
            size,
            input.kind()
        )));
    }
    Ok(())
}
