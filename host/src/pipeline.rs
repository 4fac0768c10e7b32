//! A processing pipeline: the config's stages, built by their plugins, checked to fit together (what
//! each stage takes against what the one before gives), run in order.

use crate::config::StageSpec;
use crate::plugins::{Registry, RemoteModule, SharedParameter};
use anyhow::{bail, Context, Result};
use l2l_plugin_api::{Band, ImageKind, RawMetadata};
use tch::{Device, Kind, Tensor};

/// Stages in order, each named as in the config.
pub struct Pipeline {
    stages: Vec<(String, RemoteModule)>,
}

/// One stage's output, kept for inspection.
pub struct StageOutput {
    /// The stage's name in the config.
    pub name: String,
    /// What it produced.
    pub output: Tensor,
    /// How long it took, in milliseconds.
    pub millis: f64,
}

/// Runs one stage on the whole image and holds its output to the stage contract (see
/// [`check_output`]).
pub fn run_stage(name: &str, stage: &mut RemoteModule, input: &Tensor) -> Result<Tensor> {
    let output = stage.forward(input)?;
    check_output(name, input, output)
}

/// Runs one stage on a band of a larger image (export's bands, see `bands`), holding its output to
/// the stage contract.
pub fn run_stage_in_band(name: &str, stage: &mut RemoteModule, input: &Tensor, band: Band) -> Result<Tensor> {
    let output = stage.forward_band(input, band)?;
    check_output(name, input, output)
}

/// The stage contract, so that a plugin returning a wrongly shaped tensor is named here rather than
/// failing somewhere downstream (or, worse, not at all: a classifier takes any H×W): a 4-D
/// floating-point batch `[B, C, H, W]` with the input's B and H×W — or half its H×W when the input
/// is a mosaic (`[B, 1, H, W]`) whose 2×2 blocks the stage packs.
fn check_output(name: &str, input: &Tensor, output: Tensor) -> Result<Tensor> {
    let (before, after) = (input.size(), output.size());
    let same_size = after.len() == 4 && before.len() == 4 && after[0] == before[0];
    let kept = same_size && after[2..] == before[2..];
    let packed = same_size && before[1] == 1 && after[2] * 2 == before[2] && after[3] * 2 == before[3];
    if !(kept || packed) {
        bail!(
            "stage `{name}` returned a tensor of shape {after:?} for an input of shape {before:?}; expected \
             [B, C, H, W] with the input's B and H×W (or half the H×W of a mosaic whose 2×2 blocks it packs)"
        );
    }
    if !output.is_floating_point() {
        bail!(
            "stage `{name}` returned {:?} values; expected floating point",
            output.kind()
        );
    }
    Ok(output)
}

/// Refuses a loaded floating-point value that is not finite or leaves `range`.
fn check_loaded_value(value: &Tensor, range: Option<(f64, f64)>) -> Result<()> {
    if !value.is_floating_point() || value.numel() == 0 {
        return Ok(());
    }
    let not_finite = value
        .f_isfinite()?
        .f_logical_not()?
        .f_sum(Kind::Int64)?
        .f_int64_value(&[])?;
    if not_finite > 0 {
        bail!(
            "{not_finite} of its {} values are NaN or infinite; expected finite values",
            value.numel()
        );
    }
    if let Some((min, max)) = range {
        let (low, high) = (value.f_min()?.f_double_value(&[])?, value.f_max()?.f_double_value(&[])?);
        if low < min || high > max {
            bail!("values from {low} to {high}; expected values in [{min}, {max}] (the range its stage declares)");
        }
    }
    Ok(())
}

/// Refuses a pipeline in which a stage takes another kind of image than the stage before it gives
/// (the first: than `input`), naming both stages and both kinds.
fn check_fit(specs: &[StageSpec], stages: &[RemoteModule], input: ImageKind) -> Result<()> {
    let mut given = input;
    let mut giver = match input {
        ImageKind::Mosaic => "the pipeline's input (the raw mosaic)".to_string(),
        other => format!("the pipeline's input (a {} image)", other.as_str()),
    };
    for (spec, stage) in specs.iter().zip(stages) {
        let (takes, gives) = stage.image_kinds();
        if takes != ImageKind::Any && given != ImageKind::Any && takes != given {
            bail!(
                "config key `pipeline`: stage `{}` (`{}`) takes a {} image, but {giver} gives a {} image",
                spec.name,
                spec.kind,
                takes.as_str(),
                given.as_str()
            );
        }
        if gives != ImageKind::Any {
            given = gives;
            giver = format!("stage `{}` (`{}`)", spec.name, spec.kind);
        }
    }
    Ok(())
}

impl Pipeline {
    /// Builds every stage of `specs`, checks that each takes what the one before gives (the first: the
    /// raw mosaic) and moves them to `device` (float32).
    pub fn build(registry: &Registry, specs: &[StageSpec], device: Device) -> Result<Pipeline> {
        Self::build_taking(registry, specs, device, ImageKind::Mosaic)
    }

    /// [`Pipeline::build`] in evaluation mode, for every use that does not train it (process, export,
    /// predict-like evaluation, the workbench, bench): a normalising stage then uses its learned
    /// statistics, not each image's own.
    pub fn build_for_inference(registry: &Registry, specs: &[StageSpec], device: Device) -> Result<Pipeline> {
        let mut pipeline = Self::build(registry, specs, device)?;
        pipeline.set_train(false)?;
        Ok(pipeline)
    }

    /// [`Pipeline::build`] for a pipeline whose input is `input` (`Any`: whatever the first stage
    /// takes), for code that feeds stages other images than raw mosaics (the Python package).
    pub fn build_taking(
        registry: &Registry,
        specs: &[StageSpec],
        device: Device,
        input: ImageKind,
    ) -> Result<Pipeline> {
        let mut stages = Vec::with_capacity(specs.len());
        for spec in specs {
            let label = format!("config key `stages.{}`", spec.name);
            let stage = registry.build_stage(&spec.kind, spec.plugin.as_deref(), &spec.config, &label)?;
            stages.push(stage);
        }
        check_fit(specs, &stages, input)?;
        let mut built = Vec::with_capacity(specs.len());
        for (spec, mut stage) in specs.iter().zip(stages) {
            stage.to(device, Kind::Float)?;
            built.push((spec.name.clone(), stage));
        }
        Ok(Pipeline { stages: built })
    }

    /// The stages, for inspection and training.
    pub fn stages(&self) -> &[(String, RemoteModule)] {
        &self.stages
    }

    /// The stages, mutable, for callers that run them one by one.
    pub fn stages_mut(&mut self) -> &mut [(String, RemoteModule)] {
        &mut self.stages
    }

    /// Tells every stage the camera metadata of the next batches' samples (one per sample); stages
    /// configured to take camera parameters from the data use it.
    pub fn set_camera(&mut self, cameras: &[RawMetadata]) -> Result<()> {
        for (_, stage) in &mut self.stages {
            stage.set_camera(cameras)?;
        }
        Ok(())
    }

    /// Runs all stages on a mosaic batch `[B, 1, H, W]`.
    pub fn forward(&mut self, mosaic: &Tensor) -> Result<Tensor> {
        let mut x = mosaic.shallow_clone();
        for (name, stage) in &mut self.stages {
            x = run_stage(name, stage, &x)?;
        }
        Ok(x)
    }

    /// Runs all stages, keeping each output and its time; `on_stage` is told after each.
    pub fn forward_traced(&mut self, mosaic: &Tensor, mut on_stage: impl FnMut(&str)) -> Result<Vec<StageOutput>> {
        let mut outputs: Vec<StageOutput> = Vec::with_capacity(self.stages.len());
        for (name, stage) in &mut self.stages {
            let input = outputs.last().map(|o| &o.output).unwrap_or(mosaic);
            let start = std::time::Instant::now();
            let output = run_stage(name, stage, input).with_context(|| format!("running stage `{name}`"))?;
            outputs.push(StageOutput {
                name: name.clone(),
                output,
                millis: start.elapsed().as_secs_f64() * 1e3,
            });
            on_stage(name);
        }
        Ok(outputs)
    }

    /// Switches every stage between training and evaluation behaviour.
    pub fn set_train(&mut self, train: bool) -> Result<()> {
        for (_, stage) in &mut self.stages {
            stage.set_train(train)?;
        }
        Ok(())
    }

    /// Every stage's state (parameters and buffers), named `stage.name`.
    pub fn state(&self) -> Result<Vec<(String, Tensor)>> {
        let mut all = Vec::new();
        for (name, stage) in &self.stages {
            all.extend(stage.state()?.into_iter().map(|(n, t)| (format!("{name}.{n}"), t)));
        }
        Ok(all)
    }

    /// Restores what [`Pipeline::state`] gave, stage by stage. A loaded value must be finite and,
    /// for a parameter whose stage declares a range, inside it — as a config's value must be: a
    /// checkpoint edited or corrupted to gamma = NaN would otherwise write an all-NaN image.
    pub fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        for (name, stage) in &mut self.stages {
            let prefix = format!("{name}.");
            let own: Vec<(String, Tensor)> = state
                .iter()
                .filter_map(|(n, t)| n.strip_prefix(&prefix).map(|n| (n.to_string(), t.shallow_clone())))
                .collect();
            let bounds: Vec<(String, (f64, f64))> = stage
                .parameters()?
                .into_iter()
                .filter_map(|p| p.bounds.map(|b| (p.name, b)))
                .collect();
            for (key, value) in &own {
                let range = bounds.iter().find(|(n, _)| n == key).map(|(_, b)| *b);
                check_loaded_value(value, range).with_context(|| format!("restoring stage `{name}`: `{key}`"))?;
            }
            stage
                .load_state(own)
                .with_context(|| format!("restoring stage `{name}`"))?;
        }
        Ok(())
    }

    /// Every stage's parameters, named `stage.parameter`.
    pub fn parameters(&self) -> Result<Vec<SharedParameter>> {
        let mut all = Vec::new();
        for (name, stage) in &self.stages {
            for mut p in stage.parameters()? {
                p.name = format!("{name}.{}", p.name);
                all.push(p);
            }
        }
        Ok(all)
    }
}
