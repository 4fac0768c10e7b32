//! The optimisation comparison's results: `results.json`, `learning_curves.png` and `report.md`.

use crate::imageio::{write_atomically, write_json};
use crate::tracking;
use crate::train::config::ProcessingMode;
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
}

/// `results.json` of an optimisation comparison.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct OptimisationResults {
    /// One curve per mode.
    pub curves: Vec<ModeCurve>,
    /// The metric.
    pub metric: String,
}

/// `results.json`, `learning_curves.png` and `report.md`.
pub fn write_report(dir: &Path, metric: &str, curves: &[ModeCurve]) -> Result<()> {
    write_json(&dir.join("results.json"), &OptimisationResults { curves: curves.to_vec(), metric: metric.into() })?;
    let series: Vec<(String, Vec<f64>, Vec<f64>)> = curves.iter().map(|c| (c.mode.name().to_string(), c.mean.clone(), c.std.clone())).collect();
    tracking::plot_mean_curves(&dir.join("learning_curves.png"), &format!("validation {metric} per epoch (mean ± std over folds)"), &series)?;
    let mut md = String::from("# Drift optimisation\n\nThe same task model trained with each processing mode; validation metric per epoch, mean ± std over folds.\n\n![learning curves](learning_curves.png)\n\n");
    let _ = writeln!(md, "| mode | final {metric} | best {metric} | run |");
    let _ = writeln!(md, "|---|---|---|---|");
    for c in curves {
        let last = c.mean.len().saturating_sub(1);
        let best = c.mean.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let _ = writeln!(md, "| {} | {:.3} ± {:.3} | {best:.3} | {} |", c.mode.name(), c.mean[last], c.std[last], c.run.display());
    }
    write_atomically(&dir.join("report.md"), |out| Ok(out.write_all(md.as_bytes())?))
}
