//! The workbench's state and computation: the inputs (generated, the config's data set, uploads), one
//! pipeline per side (A and B) with every stage's output kept, so that a change recomputes only from
//! the first changed stage on, and the images, histogram and task-model answers the page shows.

use crate::config::{check_stage_name, PipelineSpec, StageSpec};
use crate::imageio::{png_bytes, RawInput};
use crate::pipeline::{run_stage, Pipeline};
use crate::plugins::{Registry, RemoteModule};
use anyhow::{anyhow, bail, Result};
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// The most stages one side's pipeline may have (the published pipelines have 10 to 12): a request
/// of thousands of stages would keep thousands of full-size outputs.
pub const MAX_STAGES: usize = 32;

/// The most pixels one upload may decode to by default (`serve --max-upload-pixels`): a 100-MP
/// medium-format sensor, with room to spare. Twice as many upload pixels are kept at once (float32,
/// 4 bytes each); the oldest uploads are dropped first.
pub const MAX_UPLOAD_PIXELS: usize = 120_000_000;

/// One slot of the page's pipeline: a stage name, its component (empty: switched off) and its keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slot {
    pub name: String,
    pub kind: String,
    pub config: toml::Table,
}

/// A raw input the page can pick, by index.
pub struct Input {
    pub label: String,
    pub raw: RawInput,
    /// Sent by the page (kept within twice the upload pixel cap, dropped oldest first).
    pub uploaded: bool,
}

/// The trained task model of `--checkpoint`, with what its outputs mean.
pub struct TaskModel {
    pub model: RemoteModule,
    /// Class names (classification) or `None` (segmentation: one mask logit per pixel).
    pub classes: Option<Vec<String>>,
}

/// What one side computed, as the page shows it.
#[derive(Debug, Serialize)]
pub struct SideView {
    /// The last stage's output as a PNG data URL (8 bits, clamped to [0, 1]: what `process` writes).
    pub image: String,
    /// Every stage's output, small, named.
    pub stages: Vec<StageView>,
    /// 64-bin histograms of the output's channels over [0, 1].
    pub histogram: Vec<Vec<f64>>,
    /// Class probabilities (classification) with `--checkpoint`.
    pub probabilities: Option<Vec<(String, f64)>>,
    /// The predicted mask over the image (segmentation) with `--checkpoint`.
    pub mask: Option<String>,
    /// Stages recomputed for this request, and the time taken.
    pub recomputed: usize,
    pub millis: f64,
}

/// One stage's output on the strip.
#[derive(Debug, Clone, Serialize)]
pub struct StageView {
    pub name: String,
    pub image: String,
}

/// One stage's kept output, with its strip image.
struct KeptOutput {
    spec: StageSpec,
    output: Tensor,
    view: StageView,
}

/// The stage outputs of one side, for the input they were computed from.
#[derive(Default)]
struct SideCache {
    input: Option<usize>,
    outputs: Vec<KeptOutput>,
}

/// A task model's answer: class probabilities (classification) or a mask overlay (segmentation).
type Answer = (Option<Vec<(String, f64)>>, Option<String>);

/// Everything the server computes with; one request at a time holds it.
pub struct Workbench {
    pub registry: Registry,
    pub device: Device,
    pub inputs: Vec<Input>,
    pub model: Option<TaskModel>,
    /// Per config key, the words the page may send: the key's declared choices and the values the
    /// command line's config gave it. Any other text is refused, so no page can name a file.
    allowed_words: BTreeMap<String, BTreeSet<String>>,
    /// The most pixels one upload may decode to.
    pub max_upload_pixels: usize,
    sides: [SideCache; 2],
}

fn data_url(image: &Tensor) -> Result<String> {
    let png = png_bytes(image, 8)?;
    Ok(format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    ))
}

/// A stage output `[1, C, H, W]` at most 160 pixels high, for the strip.
fn thumbnail(output: &Tensor) -> Result<Tensor> {
    let size = output.size();
    let scale = (size[2] as f64 / 160.0).ceil().max(1.0) as i64;
    let small = if scale > 1 {
        output.f_avg_pool2d([scale, scale], [scale, scale], [0, 0], true, true, None)?
    } else {
        output.shallow_clone()
    };
    Ok(small)
}

fn histogram(image: &Tensor) -> Result<Vec<Vec<f64>>> {
    let image = image.f_get(0)?.f_to_kind(Kind::Double)?.f_clamp(0.0, 1.0)?;
    (0..image.size()[0])
        .map(|c| {
            let bins = image
                .f_get(c)?
                .f_mul_scalar(63.999)?
                .f_floor()?
                .f_to_kind(Kind::Int64)?
                .f_flatten(0, -1)?;
            let counts = bins.f_bincount(None::<Tensor>, 64)?.f_to_kind(Kind::Double)?;
            Ok(Vec::<f64>::try_from(&counts)?)
        })
        .collect()
}

impl Workbench {
    /// A workbench over `registry` computing on `device`; `allowed_words` per key name are the only
    /// text values the page may set; uploads are capped at `max_upload_pixels`.
    pub fn new(
        registry: Registry,
        device: Device,
        inputs: Vec<Input>,
        model: Option<TaskModel>,
        allowed_words: BTreeMap<String, BTreeSet<String>>,
        max_upload_pixels: usize,
    ) -> Workbench {
        let sides = [SideCache::default(), SideCache::default()];
        Workbench {
            registry,
            device,
            inputs,
            model,
            allowed_words,
            max_upload_pixels,
            sides,
        }
    }

    /// Keeps an upload, dropping the oldest uploads while the kept ones would exceed twice
    /// `max_upload_pixels`; returns its index. Dropping shifts the indices after it, so the kept
    /// stage outputs are let go too.
    pub fn add_upload(&mut self, label: String, raw: RawInput) -> usize {
        let pixels = |input: &Input| input.raw.mosaic.numel();
        let mut kept: usize = self.inputs.iter().filter(|i| i.uploaded).map(pixels).sum();
        while kept + raw.mosaic.numel() > 2 * self.max_upload_pixels {
            let Some(oldest) = self.inputs.iter().position(|i| i.uploaded) else {
                break;
            };
            kept -= pixels(&self.inputs.remove(oldest));
            self.sides = [SideCache::default(), SideCache::default()];
        }
        self.inputs.push(Input {
            label,
            raw,
            uploaded: true,
        });
        self.inputs.len() - 1
    }

    /// The specs of the slots that are switched on, as a config would hold them; refused: more than
    /// [`MAX_STAGES`], a name that is not plain or is used twice (a saved config has one table per
    /// name), text that is neither a key's choice nor the command line config's value.
    pub fn specs(&self, slots: &[Slot]) -> Result<Vec<StageSpec>> {
        if slots.len() > MAX_STAGES {
            bail!("{} stages: the workbench takes at most {MAX_STAGES}", slots.len());
        }
        let mut names = BTreeSet::new();
        for slot in slots {
            check_stage_name(&slot.name)?;
            if !names.insert(slot.name.as_str()) {
                bail!(
                    "stage name `{}` is used twice (each stage needs its own name)",
                    slot.name
                );
            }
            for (key, value) in &slot.config {
                self.check_words(&slot.name, key, value)?;
            }
        }
        Ok(slots
            .iter()
            .filter(|s| !s.kind.is_empty())
            .map(|s| StageSpec {
                name: s.name.clone(),
                kind: s.kind.clone(),
                plugin: None,
                config: s.config.clone(),
            })
            .collect())
    }

    /// Refuses text under `key` (also inside lists and tables) that the page may not send.
    fn check_words(&self, stage: &str, key: &str, value: &toml::Value) -> Result<()> {
        match value {
            toml::Value::String(word) if !self.allowed_words.get(key).is_some_and(|words| words.contains(word)) => {
                let words: Vec<String> = self
                    .allowed_words
                    .get(key)
                    .into_iter()
                    .flatten()
                    .map(|w| format!("`{w}`"))
                    .collect();
                let expected = if words.is_empty() {
                    "no text from the page".to_string()
                } else {
                    format!("one of {}", words.join(", "))
                };
                bail!(
                    "stage `{stage}` key `{key}`: expected {expected}, found `{}` (file paths and other text come from the config given on the command line)",
                    word.escape_debug()
                )
            }
            toml::Value::Array(items) => items.iter().try_for_each(|item| self.check_words(stage, key, item)),
            toml::Value::Table(table) => table
                .iter()
                .try_for_each(|(_, item)| self.check_words(stage, key, item)),
            _ => Ok(()),
        }
    }

    /// Runs side `side` (0: A, 1: B) on input `input` with `slots`; stages whose spec and input are
    /// those of the last run keep their outputs.
    pub fn run(&mut self, side: usize, input: usize, slots: &[Slot]) -> Result<(SideView, Tensor)> {
        let started = Instant::now();
        let specs = self.specs(slots)?;
        let raw = self.inputs.get(input).ok_or_else(|| anyhow!("no input {input}"))?;
        if specs.is_empty() {
            bail!("every slot is off: switch on at least a demosaicer");
        }
        let mut pipeline = Pipeline::build_for_inference(&self.registry, &specs, self.device)?;
        pipeline.set_camera(raw.raw.metadata.as_slice())?;
        let cache = &mut self.sides[side];
        if cache.input != Some(input) {
            cache.outputs.clear();
            cache.input = Some(input);
        }
        let kept = cache
            .outputs
            .iter()
            .zip(&specs)
            .take_while(|(cached, spec)| cached.spec == **spec)
            .count();
        cache.outputs.truncate(kept);
        let size = raw.raw.mosaic.size();
        let mut x = match cache.outputs.last() {
            Some(kept) => kept.output.shallow_clone(),
            None => raw
                .raw
                .mosaic
                .f_view([1, 1, size[0], size[1]])?
                .f_to_device(self.device)?,
        };
        for (index, (name, stage)) in pipeline.stages_mut().iter_mut().enumerate().skip(kept) {
            x = tch::no_grad(|| run_stage(name, stage, &x))?;
            let view = StageView {
                name: name.clone(),
                image: data_url(&thumbnail(&x)?.f_clamp(0.0, 1.0)?)?,
            };
            cache.outputs.push(KeptOutput {
                spec: specs[index].clone(),
                output: x.shallow_clone(),
                view,
            });
        }
        let stages = cache.outputs.iter().map(|kept| kept.view.clone()).collect();
        let (probabilities, mask) = self.answer(&x)?;
        let view = SideView {
            image: data_url(&x)?,
            stages,
            histogram: histogram(&x)?,
            probabilities,
            mask,
            recomputed: specs.len() - kept,
            millis: started.elapsed().as_secs_f64() * 1e3,
        };
        Ok((view, x))
    }

    /// The task model's answer for a processed image: class probabilities, or the mask over it.
    fn answer(&mut self, image: &Tensor) -> Result<Answer> {
        let Some(task) = &mut self.model else {
            return Ok((None, None));
        };
        if image.size()[1] != 3 {
            return Ok((None, None));
        }
        let logits = tch::no_grad(|| task.model.forward(image))?;
        match &task.classes {
            Some(classes) => {
                let p = Vec::<f64>::try_from(&logits.f_softmax(1, Kind::Double)?.f_get(0)?)?;
                Ok((Some(classes.iter().cloned().zip(p).collect()), None))
            }
            None => {
                let mask = logits.f_sigmoid()?.f_gt(0.5)?.f_to_kind(Kind::Float)?;
                let red = Tensor::from_slice(&[1.0f32, 0.0, 0.0])
                    .f_view([1, 3, 1, 1])?
                    .f_to_device(image.device())?;
                let keep = mask.f_mul_scalar(-0.5)?.f_add_scalar(1.0)?;
                let overlay = image
                    .f_clamp(0.0, 1.0)?
                    .f_mul(&keep)?
                    .f_add(&red.f_mul(&mask)?.f_mul_scalar(0.5)?)?;
                Ok((None, Some(data_url(&overlay)?)))
            }
        }
    }

    /// The two sides' outputs' absolute difference, ×4, when they have the same shape.
    pub fn difference(a: &Tensor, b: &Tensor) -> Result<Option<String>> {
        if a.size() != b.size() {
            return Ok(None);
        }
        Ok(Some(data_url(&(a - b).f_abs()?.f_mul_scalar(4.0)?)?))
    }

    /// The slots as a config file `l2l-host run`/`process` take (`pipeline` and `[stages.*]`).
    pub fn config_text(&self, slots: &[Slot]) -> Result<String> {
        let spec = PipelineSpec {
            stages: self.specs(slots)?,
            plugin_dirs: Vec::new(),
        };
        let (pipeline, stages) = spec.to_tables();
        let mut table = toml::Table::new();
        table.insert("pipeline".into(), pipeline);
        table.insert("stages".into(), toml::Value::Table(stages));
        Ok(format!(
            "# saved by the l2l workbench (l2l-host serve)\n{}",
            toml::to_string(&table)?
        ))
    }
}
