//! Losses and metrics: cross-entropy, accuracy, per-class precision / recall / F1 and the confusion
//! matrix for classification; Dice loss (binary, from logits) and IoU for segmentation.

pub use crate::uncertainty::Outcome;
use anyhow::Result;
use std::collections::BTreeMap;
use tch::{Kind, Reduction, Tensor};

/// What the task model predicts.
#[derive(Debug, Clone, PartialEq)]
pub enum Task {
    /// One of `class_names` per sample; logits `[B, classes]`, targets `[B]`.
    Classification {
        /// The dataset's class names.
        class_names: Vec<String>,
    },
    /// A binary mask; logits `[B, 1, H, W]`, targets `[B, H, W]` (0/1).
    Segmentation,
}

impl Task {
    /// The task model's outputs per sample (or per pixel): one per class, one for a mask.
    pub fn outputs(&self) -> usize {
        match self {
            Task::Classification { class_names } => class_names.len(),
            Task::Segmentation => 1,
        }
    }
}

/// The mask `[B, H, W]` at the logits' size (nearest), when processing changed the resolution.
pub fn mask_like(target: &Tensor, logits: &Tensor) -> Result<Tensor> {
    let (t, l) = (target.size(), logits.size());
    if t[1..] == l[2..] {
        return Ok(target.shallow_clone());
    }
    Ok(target
        .f_unsqueeze(1)?
        .f_to_kind(Kind::Float)?
        .f_upsample_nearest2d([l[2], l[3]], None, None)?
        .f_squeeze_dim(1)?
        .f_to_kind(Kind::Int64)?)
}

/// The training loss: cross-entropy, or the Dice loss 1 − 2|P∩T| / (|P| + |T|) on sigmoid
/// probabilities over the whole batch — 0 when the batch's masks are all empty, as in
/// segmentation_models_pytorch's binary `DiceLoss` (nothing to find gives nothing to learn).
pub fn loss(task: &Task, logits: &Tensor, target: &Tensor) -> Result<Tensor> {
    match task {
        Task::Classification { .. } => {
            Ok(logits.f_cross_entropy_loss::<Tensor>(target, None, Reduction::Mean, -100, 0.0)?)
        }
        Task::Segmentation => {
            let probability = logits.f_select(1, 0)?.f_sigmoid()?;
            let truth = mask_like(target, logits)?.f_to_kind(Kind::Float)?;
            let intersection = probability.f_mul(&truth)?.f_sum(Kind::Float)?;
            let cardinality = probability.f_add(&truth)?.f_sum(Kind::Float)?.f_clamp_min(1e-7)?;
            let anything_to_find = truth.f_sum(Kind::Float)?.f_gt(0.0)?.f_to_kind(Kind::Float)?;
            Ok(intersection
                .f_mul_scalar(-2.0)?
                .f_div(&cardinality)?
                .f_add_scalar(1.0)?
                .f_mul(&anything_to_find)?)
        }
    }
}

/// Sums over the batches of one pass, turned into metrics at the end.
pub struct Accumulator {
    task: Task,
    loss_sum: f64,
    batches: usize,
    /// Classification: confusion[true][predicted].
    pub confusion: Vec<Vec<u64>>,
    intersection: f64,
    union: f64,
    mask_sum: f64,
    /// Segmentation: pixels, true and predicted foreground pixels of the pass.
    pixels: f64,
    true_foreground: f64,
    predicted_foreground: f64,
    /// Each sample's [`Outcome`], in the order added.
    pub outcomes: Vec<Outcome>,
}

impl Accumulator {
    /// Nothing counted yet.
    pub fn new(task: &Task) -> Self {
        let classes = match task {
            Task::Classification { class_names } => class_names.len(),
            Task::Segmentation => 0,
        };
        Self {
            task: task.clone(),
            loss_sum: 0.0,
            batches: 0,
            confusion: vec![vec![0; classes]; classes],
            intersection: 0.0,
            union: 0.0,
            mask_sum: 0.0,
            pixels: 0.0,
            true_foreground: 0.0,
            predicted_foreground: 0.0,
            outcomes: Vec::new(),
        }
    }

    /// Counts one batch: its (detached) logits, targets and loss.
    pub fn add(&mut self, logits: &Tensor, target: &Tensor, loss: f64) -> Result<()> {
        self.loss_sum += loss;
        self.batches += 1;
        match self.task {
            Task::Classification { .. } => {
                let predicted = Vec::<i64>::try_from(logits.f_argmax(1, false)?.f_to_device(tch::Device::Cpu)?)?;
                let truth = Vec::<i64>::try_from(target.f_to_device(tch::Device::Cpu)?)?;
                for (t, p) in truth.iter().zip(predicted) {
                    self.confusion[*t as usize][p as usize] += 1;
                    self.outcomes.push([f64::from(u8::from(*t == p)), 1.0]);
                }
            }
            Task::Segmentation => {
                let predicted = logits.f_select(1, 0)?.f_gt(0.0)?;
                let truth = mask_like(target, logits)?.f_gt(0)?;
                let count = |t: &Tensor| -> Result<f64> { Ok(t.f_sum(Kind::Double)?.f_double_value(&[])?) };
                let per_image = |t: &Tensor| -> Result<Vec<f64>> {
                    Ok(Vec::<f64>::try_from(t.f_sum_dim_intlist(
                        [1, 2].as_slice(),
                        false,
                        Kind::Double,
                    )?)?)
                };
                let (intersections, unions) = (
                    per_image(&predicted.f_logical_and(&truth)?)?,
                    per_image(&predicted.f_logical_or(&truth)?)?,
                );
                self.intersection += intersections.iter().sum::<f64>();
                self.union += unions.iter().sum::<f64>();
                self.outcomes
                    .extend(intersections.into_iter().zip(unions).map(|(i, u)| [i, u]));
                let (predicted_count, true_count) = (count(&predicted)?, count(&truth)?);
                self.mask_sum += predicted_count + true_count;
                self.predicted_foreground += predicted_count;
                self.true_foreground += true_count;
                self.pixels += truth.numel() as f64;
            }
        }
        Ok(())
    }

    /// What the pass's truths and predictions show beyond its metric.
    pub fn summary(&self) -> PredictionSummary {
        PredictionSummary {
            true_per_class: self.confusion.iter().map(|row| row.iter().sum()).collect(),
            predicted_per_class: (0..self.confusion.len())
                .map(|c| self.confusion.iter().map(|row| row[c]).sum())
                .collect(),
            pixels: self.pixels,
            true_foreground: self.true_foreground,
            predicted_foreground: self.predicted_foreground,
        }
    }

    /// `loss`, and `accuracy`, `macro_f1`, `precision_C`, `recall_C`, `f1_C` per class — or `iou` and
    /// `dice` (over all pixels of the pass; 1 when prediction and truth are both empty).
    pub fn finish(&self) -> BTreeMap<String, f64> {
        let mut metrics = BTreeMap::new();
        metrics.insert("loss".to_string(), self.loss_sum / self.batches.max(1) as f64);
        match &self.task {
            Task::Classification { class_names } => {
                let total: u64 = self.confusion.iter().flatten().sum();
                let correct: u64 = (0..class_names.len()).map(|c| self.confusion[c][c]).sum();
                metrics.insert("accuracy".into(), correct as f64 / total.max(1) as f64);
                let mut f1_sum = 0.0;
                for (c, name) in class_names.iter().enumerate() {
                    let tp = self.confusion[c][c] as f64;
                    let predicted: u64 = self.confusion.iter().map(|row| row[c]).sum();
                    let actual: u64 = self.confusion[c].iter().sum();
                    let precision = if predicted > 0 { tp / predicted as f64 } else { 0.0 };
                    let recall = if actual > 0 { tp / actual as f64 } else { 0.0 };
                    let f1 = if precision + recall > 0.0 {
                        2.0 * precision * recall / (precision + recall)
                    } else {
                        0.0
                    };
                    f1_sum += f1;
                    metrics.insert(format!("precision_{name}"), precision);
                    metrics.insert(format!("recall_{name}"), recall);
                    metrics.insert(format!("f1_{name}"), f1);
                }
                metrics.insert("macro_f1".into(), f1_sum / class_names.len().max(1) as f64);
            }
            Task::Segmentation => {
                let iou = if self.union > 0.0 {
                    self.intersection / self.union
                } else {
                    1.0
                };
                let dice = if self.mask_sum > 0.0 {
                    2.0 * self.intersection / self.mask_sum
                } else {
                    1.0
                };
                metrics.insert("iou".into(), iou);
                metrics.insert("dice".into(), dice);
            }
        }
        metrics
    }
}

/// A pass's truths and predictions in counts: what a trivial predictor would score on the same samples
/// (the level a model must beat to have learned anything), and whether the model's predictions
/// collapsed to one answer (a degenerate model, not a finding).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PredictionSummary {
    /// Classification: samples per true class.
    pub true_per_class: Vec<u64>,
    /// Classification: samples per predicted class.
    pub predicted_per_class: Vec<u64>,
    /// Segmentation: pixels scored.
    pub pixels: f64,
    /// Segmentation: true foreground pixels.
    pub true_foreground: f64,
    /// Segmentation: predicted foreground pixels.
    pub predicted_foreground: f64,
}

/// Predicted foreground on at least this fraction of the pixels counts as "everywhere", at most
/// [`NOWHERE`] as "nowhere" (a mask that is not trivially so on the truth).
const EVERYWHERE: f64 = 0.95;
const NOWHERE: f64 = 1e-4;

impl PredictionSummary {
    /// Counts of several passes (replicates) added.
    pub fn pooled<'a>(summaries: impl IntoIterator<Item = &'a PredictionSummary>) -> PredictionSummary {
        let mut pooled = PredictionSummary::default();
        for s in summaries {
            let add = |a: &mut Vec<u64>, b: &[u64]| {
                a.resize(a.len().max(b.len()), 0);
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
            };
            add(&mut pooled.true_per_class, &s.true_per_class);
            add(&mut pooled.predicted_per_class, &s.predicted_per_class);
            pooled.pixels += s.pixels;
            pooled.true_foreground += s.true_foreground;
            pooled.predicted_foreground += s.predicted_foreground;
        }
        pooled
    }

    /// What trivial predictors score on these samples: the majority class's accuracy, or the IoU of
    /// predicting foreground everywhere and nowhere.
    pub fn baselines(&self) -> Vec<(&'static str, f64)> {
        let total: u64 = self.true_per_class.iter().sum();
        if total > 0 {
            let majority = self.true_per_class.iter().copied().max().unwrap_or(0);
            return vec![("majority class", majority as f64 / total as f64)];
        }
        if self.pixels > 0.0 {
            let nowhere = if self.true_foreground > 0.0 { 0.0 } else { 1.0 };
            return vec![
                ("all foreground", self.true_foreground / self.pixels),
                ("all background", nowhere),
            ];
        }
        Vec::new()
    }

    /// How the predictions collapsed, if they did: one class for every sample (of several true
    /// classes), or foreground everywhere / nowhere (while the truth is neither).
    pub fn collapse(&self) -> Option<String> {
        let predicted: Vec<usize> = (0..self.predicted_per_class.len())
            .filter(|&c| self.predicted_per_class[c] > 0)
            .collect();
        let true_classes = self.true_per_class.iter().filter(|&&n| n > 0).count();
        if let [only] = predicted[..] {
            if true_classes > 1 {
                return Some(format!("one class (index {only}) for every sample"));
            }
        }
        if self.pixels > 0.0 {
            let (predicted, truth) = (
                self.predicted_foreground / self.pixels,
                self.true_foreground / self.pixels,
            );
            if predicted >= EVERYWHERE && truth < EVERYWHERE {
                return Some(format!("foreground on {:.0} % of the pixels", predicted * 100.0));
            }
            if predicted <= NOWHERE && truth > NOWHERE {
                return Some("no foreground".into());
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A classifier that answers one class for every image is degenerate whatever its accuracy; its
    /// accuracy then equals that class's share, the majority-class baseline when it is the largest.
    #[test]
    fn collapsed_predictions_and_trivial_levels_are_found() {
        let task = Task::Classification {
            class_names: vec!["a".into(), "b".into(), "c".into(), "d".into()],
        };
        let mut one_class = Accumulator::new(&task);
        // truth 0 0 0 1 2 3 3 3, every logit row favouring class 0
        let logits = Tensor::from_slice(&[5.0f32, 0.0, 0.0, 0.0]).repeat([8, 1]);
        one_class
            .add(&logits, &Tensor::from_slice(&[0i64, 0, 0, 1, 2, 3, 3, 3]), 0.0)
            .unwrap();
        let summary = one_class.summary();
        assert_eq!(
            summary.collapse().as_deref(),
            Some("one class (index 0) for every sample")
        );
        assert_eq!(summary.baselines(), [("majority class", 3.0 / 8.0)]);
        assert_eq!(one_class.finish()["accuracy"], 3.0 / 8.0);
        let mut varied = Accumulator::new(&task);
        let logits = Tensor::from_slice(&[5.0f32, 0.0, 0.0, 0.0, 0.0, 5.0, 0.0, 0.0]).view([2, 4]);
        varied.add(&logits, &Tensor::from_slice(&[0i64, 0]), 0.0).unwrap();
        assert_eq!(varied.summary().collapse(), None, "two classes predicted");

        // segmentation: foreground everywhere on masks of 1 pixel in 4 is IoU 0.25, the all-foreground level
        let mut everywhere = Accumulator::new(&Task::Segmentation);
        let target = Tensor::from_slice(&[1i64, 0, 0, 0]).view([1, 2, 2]);
        everywhere
            .add(
                &Tensor::full([1, 1, 2, 2], 3.0, (Kind::Float, tch::Device::Cpu)),
                &target,
                0.0,
            )
            .unwrap();
        let summary = everywhere.summary();
        assert_eq!(summary.collapse().as_deref(), Some("foreground on 100 % of the pixels"));
        assert_eq!(summary.baselines(), [("all foreground", 0.25), ("all background", 0.0)]);
        assert_eq!(everywhere.finish()["iou"], 0.25);
        let mut nowhere = Accumulator::new(&Task::Segmentation);
        nowhere
            .add(
                &Tensor::full([1, 1, 2, 2], -3.0, (Kind::Float, tch::Device::Cpu)),
                &target,
                0.0,
            )
            .unwrap();
        assert_eq!(nowhere.summary().collapse().as_deref(), Some("no foreground"));
        let pooled = PredictionSummary::pooled([&summary, &nowhere.summary()]);
        assert_eq!((pooled.pixels, pooled.true_foreground), (8.0, 2.0));
    }

    #[test]
    fn classification_metrics_follow_their_definitions() {
        let task = Task::Classification {
            class_names: vec!["a".into(), "b".into()],
        };
        let mut acc = Accumulator::new(&task);
        // truth a a b b, predicted a b b b
        let logits = Tensor::from_slice(&[2.0f32, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 3.0]).view([4, 2]);
        let target = Tensor::from_slice(&[0i64, 0, 1, 1]);
        acc.add(&logits, &target, 0.5).unwrap();
        let m = acc.finish();
        assert_eq!(acc.confusion, vec![vec![1, 1], vec![0, 2]]);
        assert!((m["accuracy"] - 0.75).abs() < 1e-12);
        assert!((m["precision_b"] - 2.0 / 3.0).abs() < 1e-12 && (m["recall_a"] - 0.5).abs() < 1e-12);
        assert!((m["f1_b"] - 0.8).abs() < 1e-12);
        // cross-entropy of these logits, by hand
        let ce = loss(&task, &logits, &target).unwrap().double_value(&[]);
        let by_hand = [(2.0f64, 0.0, 0), (0.0, 1.0, 0), (0.0, 1.0, 1), (0.0, 3.0, 1)]
            .iter()
            .map(|&(a, b, t)| -([a, b][t] - (a.exp() + b.exp()).ln()))
            .sum::<f64>()
            / 4.0;
        assert!((ce - by_hand).abs() < 1e-6);
    }

    #[test]
    fn dice_and_iou_follow_their_definitions() {
        let logits = Tensor::from_slice(&[10.0f32, 10.0, -10.0, -10.0]).view([1, 1, 2, 2]);
        let target = Tensor::from_slice(&[1i64, 0, 1, 0]).view([1, 2, 2]);
        let mut acc = Accumulator::new(&Task::Segmentation);
        acc.add(&logits, &target, 0.0).unwrap();
        let m = acc.finish();
        // predicted {0, 1}, truth {0, 2}: intersection 1, union 3
        assert!((m["iou"] - 1.0 / 3.0).abs() < 1e-12 && (m["dice"] - 0.5).abs() < 1e-12);
        let dice_loss = loss(&Task::Segmentation, &logits, &target).unwrap().double_value(&[]);
        assert!((dice_loss - 0.5).abs() < 1e-3, "{dice_loss}");
    }

    #[test]
    fn dice_loss_equals_segmentation_models_pytorch_including_empty_masks() {
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("../../tests/fixtures/dice_loss.json")).unwrap();
        for case in fixture["cases"].as_array().unwrap() {
            let shape: Vec<i64> = case["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect();
            let (offset, threshold) = (case["case"].as_f64().unwrap(), case["threshold"].as_f64().unwrap());
            let j = Tensor::arange(shape.iter().product::<i64>(), (Kind::Double, tch::Device::Cpu));
            let logits = (j.shallow_clone() * 0.37 + offset)
                .sin()
                .multiply_scalar(3.0)
                .to_kind(Kind::Float)
                .view(&shape[..]);
            let mask = (j * 0.11 + offset)
                .sin()
                .gt(threshold)
                .to_kind(Kind::Int64)
                .view([shape[0], shape[2], shape[3]]);
            let ours = loss(&Task::Segmentation, &logits, &mask).unwrap().double_value(&[]);
            let expected = case["loss"].as_f64().unwrap();
            assert!(
                (ours - expected).abs() < 1e-5,
                "case {offset}: {ours} vs smp {expected}"
            );
        }
    }
}
