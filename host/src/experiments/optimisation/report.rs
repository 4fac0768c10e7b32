//! The optimisation comparison's results: `results.json`, `learning_curves.png` and `report.md`.

use crate::imageio::{write_atomically, write_json};
use crate::tracking;
use crate::train::config::ProcessingMode;
use crate::uncertainty::{mean_over_folds, Bootstrap, Estimate, Outcome, RESAMPLES};
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
    /// Per fold, the final epoch's per-sample validation outcomes (the same samples for every mode).
    pub final_outcomes: Vec<Vec<Outcome>>,
}

/// The final validation metrics with their intervals, and each mode against the static pipeline.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct FinalComparison {
    /// The mode.
    pub mode: ProcessingMode,
    /// The final validation metric, mean over folds, with its 95 % bootstrap interval.
    pub final_metric: Estimate,
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
    let bootstrap = Bootstrap::new(&sizes, BOOTSTRAP_SEED);
    let reference = curves.iter().find(|c| c.mode == ProcessingMode::Static);
    Ok(curves
        .iter()
        .map(|c| FinalComparison {
            mode: c.mode,
            final_metric: bootstrap.estimate(|w| mean_over_folds(&c.final_outcomes, w)),
            versus_static: reference.filter(|r| r.mode != c.mode).map(|r| {
                bootstrap.estimate(|w| mean_over_folds(&c.final_outcomes, w) - mean_over_folds(&r.final_outcomes, w))
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
    tracking::plot_mean_curves(
        &dir.join("learning_curves.png"),
        &format!("validation {metric} per epoch, mean over folds"),
        &format!("validation {metric}"),
        &series,
        (0.0, 1.0),
    )?;
    let samples: usize = curves
        .first()
        .map_or(0, |c| c.final_outcomes.iter().map(Vec::len).sum());
    let mut md = String::from("# Drift optimisation\n\nThe same task model trained with each processing mode; validation metric per epoch, mean ± std over folds.\n\n![learning curves](learning_curves.png)\n\n");
    let _ = writeln!(md, "Final {metric}: mean over folds with its 95 % bootstrap interval ({samples} validation samples in all, resampled within folds, {RESAMPLES} draws); against static: the paired difference on the same samples.\n");
    let _ = writeln!(
        md,
        "| mode | final {metric} [95 %] | ± std over folds | best epoch's {metric} | against static | run |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|");
    for (c, f) in curves.iter().zip(&finals) {
        let last = c.mean.len().saturating_sub(1);
        let best = c.mean.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let versus = match &f.versus_static {
            Some(d) if d.contains(0.0) => format!("{:+.3} [{:+.3}, {:+.3}]: not resolved", d.value, d.low, d.high),
            Some(d) => format!("**{:+.3} [{:+.3}, {:+.3}]**", d.value, d.low, d.high),
            None => "–".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {:.3} | {best:.3} | {versus} | {} |",
            c.mode.name(),
            f.final_metric.show(),
            c.std[last],
            c.run.display()
        );
    }
    write_atomically(&dir.join("report.md"), |out| Ok(out.write_all(md.as_bytes())?))
}
