//! The optimisation comparison's results: `results.json`, `learning_curves.png` and `report.md`.

use crate::experiments::collapsed;
use crate::imageio::{write_atomically, write_json};
use crate::tracking;
use crate::train::config::ProcessingMode;
use crate::train::metrics::PredictionSummary;
use crate::uncertainty::{between_seed_sd, mean_over_replicates, Bootstrap, Estimate, Outcome, Unit, RESAMPLES};
use anyhow::Result;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One mode's validation metric per epoch: mean and standard deviation over folds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ModeCurve {
    /// The processing mode.
    pub mode: ProcessingMode,
    /// The metric per epoch (index 0 = epoch 1), mean over folds.
    pub mean: Vec<f64>,
    /// Standard deviation over folds.
    pub std: Vec<f64>,
    /// The training run.
    pub run: PathBuf,
    /// Per replicate (fold × training seed), the finished model's per-sample outcomes on its scored
    /// samples — the test part where there is one, else the last validation (the same samples for
    /// every mode).
    pub final_outcomes: Vec<Vec<Outcome>>,
    /// Per replicate: its training seed and scored samples (empty in results recorded before).
    #[serde(default)]
    pub units: Vec<Unit>,
    /// Per replicate: the scored pass's truths and predictions in counts.
    #[serde(default)]
    pub summaries: Vec<PredictionSummary>,
    /// Whether the scored samples are a held-out test part.
    #[serde(default)]
    pub scored_on_test: bool,
}

/// The final validation metrics with their intervals, and each mode against the static pipeline.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FinalComparison {
    /// The mode.
    pub mode: ProcessingMode,
    /// The final metric, mean over replicates, with its 95 % bootstrap interval.
    pub final_metric: Estimate,
    /// The standard deviation between training seeds of each seed's mean (0 with one seed).
    #[serde(default)]
    pub seed_sd: f64,
    /// How the mode's predictions collapsed, in how many replicates (none: not degenerate).
    #[serde(default)]
    pub collapsed: Option<String>,
    /// This mode's final metric − the static mode's, paired on the same validation samples.
    pub versus_static: Option<Estimate>,
}

/// The seed of an optimisation comparison's bootstrap.
const BOOTSTRAP_SEED: u64 = 0x0971;

/// `results.json` of an optimisation comparison.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct OptimisationResults {
    /// One curve per mode.
    pub curves: Vec<ModeCurve>,
    /// The final metrics with intervals.
    pub finals: Vec<FinalComparison>,
    /// The metric.
    pub metric: String,
}

/// The final metrics with their intervals (every mode's folds were validated on the same samples).
fn finals(curves: &[ModeCurve]) -> Result<Vec<FinalComparison>> {
    let Some(first) = curves.first() else {
        return Ok(Vec::new());
    };
    let sizes: Vec<usize> = first.final_outcomes.iter().map(Vec::len).collect();
    if curves
        .iter()
        .any(|c| c.final_outcomes.iter().map(Vec::len).ne(sizes.iter().copied()))
    {
        anyhow::bail!("the modes were not validated on the same samples");
    }
    let units = if first.units.len() == sizes.len() {
        first.units.clone()
    } else {
        Unit::disjoint(&sizes)
    };
    let seed_of: Vec<usize> = units.iter().map(|u| u.seed).collect();
    let bootstrap = Bootstrap::new(&units, BOOTSTRAP_SEED);
    let reference = curves.iter().find(|c| c.mode == ProcessingMode::Static);
    Ok(curves
        .iter()
        .map(|c| FinalComparison {
            mode: c.mode,
            final_metric: bootstrap.estimate(|w| mean_over_replicates(&c.final_outcomes, w)),
            seed_sd: between_seed_sd(&c.final_outcomes, &seed_of),
            collapsed: collapsed(&c.summaries),
            versus_static: reference.filter(|r| r.mode != c.mode).map(|r| {
                bootstrap.estimate(|w| {
                    mean_over_replicates(&c.final_outcomes, w) - mean_over_replicates(&r.final_outcomes, w)
                })
            }),
        })
        .collect())
}

/// `results.json`, `learning_curves.png` and `report.md`.
pub fn write_report(dir: &Path, metric: &str, curves: &[ModeCurve]) -> Result<()> {
    let finals = finals(curves)?;
    write_json(
        &dir.join("results.json"),
        &OptimisationResults {
            curves: curves.to_vec(),
            finals: finals.clone(),
            metric: metric.into(),
        },
    )?;
    let series: Vec<(String, Vec<f64>, Vec<f64>)> = curves
        .iter()
        .map(|c| (c.mode.name().to_string(), c.mean.clone(), c.std.clone()))
        .collect();
    // every mode scored the same samples: any mode's truth gives the trivial predictors' levels
    let truth = PredictionSummary::pooled(curves.first().map(|c| c.summaries.as_slice()).unwrap_or_default());
    let baselines = truth.baselines();
    tracking::plot_mean_curves(
        &dir.join("learning_curves.png"),
        &format!("validation {metric} per epoch, mean over models"),
        &format!("validation {metric}"),
        &series,
        (0.0, 1.0),
        &baselines,
    )?;
    let first = curves.first();
    let scored: usize = first.map_or(0, |c| c.units.first().map_or(0, |u| u.samples.len()));
    let models = first.map_or(0, |c| c.final_outcomes.len());
    let on = if first.is_some_and(|c| c.scored_on_test) {
        format!("the held-out test part ({scored} samples, never trained or validated on, no choice made on it)")
    } else {
        format!("each model's validation samples ({scored} per model; there is no test part)")
    };
    let mut md = String::from("# Drift optimisation\n\nThe same task model trained with each processing mode; validation metric per epoch, mean ± std over models (folds × training seeds).\n\n![learning curves](learning_curves.png)\n\n");
    let _ = writeln!(md, "Final {metric} of the {models} models per mode on {on}: the mean over models with its 95 % bootstrap interval (training seeds, then samples, resampled; {RESAMPLES} draws), the standard deviation between training seeds, and against static the paired difference on the same samples.\n");
    if !baselines.is_empty() {
        let levels: Vec<String> = baselines
            .iter()
            .map(|(name, level)| format!("{name} {level:.3}"))
            .collect();
        let _ = writeln!(
            md,
            "Trivial predictors on the same samples: {} — a mode at that level has learned nothing.\n",
            levels.join(", ")
        );
    }
    let _ = writeln!(
        md,
        "| mode | final {metric} [95 %] | SD between seeds | best epoch's validation {metric} | against static | degenerate | run |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    for (c, f) in curves.iter().zip(&finals) {
        let best = c.mean.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let versus = match &f.versus_static {
            Some(d) if d.contains(0.0) => format!("{:+.3} [{:+.3}, {:+.3}]: not resolved", d.value, d.low, d.high),
            Some(d) => format!("**{:+.3} [{:+.3}, {:+.3}]**", d.value, d.low, d.high),
            None => "–".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {:.3} | {best:.3} | {versus} | {} | {} |",
            c.mode.name(),
            f.final_metric.show(),
            f.seed_sd,
            f.collapsed.as_deref().unwrap_or("–"),
            c.run.display()
        );
    }
    write_atomically(&dir.join("report.md"), |out| Ok(out.write_all(md.as_bytes())?))
}
