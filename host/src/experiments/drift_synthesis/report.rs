//! A drift synthesis's results: `results.json` (typed, read back by `sweep collect`), the matrix
//! plots and `report.md`.

use crate::experiments::DriftMatrix;
use crate::imageio::{write_atomically, write_json};
use crate::tracking;
use crate::train::config::Augmentation;
use anyhow::Result;
use std::fmt::Write as _;
use std::path::Path;

/// The per-fold values behind a drift matrix, kept in `results.json` so that sweeps can merge cells.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DriftRaw {
    /// The folds trained.
    pub folds: Vec<usize>,
    /// Per training pipeline, per test pipeline, the metric of each fold (in `folds` order).
    pub values: Vec<Vec<Vec<f64>>>,
    /// The augmentation the models trained with.
    pub augmentation: Augmentation,
}

/// `results.json` of a drift synthesis.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DriftResults {
    /// Per corruption, its mean drop over severities, folds and pipelines.
    pub corruption_drops: Vec<(String, f64)>,
    /// The drop matrix (diagonal − entry; `None` where the row's own pipeline is not tested).
    pub drops: Vec<Vec<Option<f64>>>,
    /// The metric's matrix.
    pub matrix: DriftMatrix,
    /// The mean corruption drop, with a baseline.
    pub mean_corruption_drop: Option<f64>,
    /// The mean off-diagonal drop.
    pub mean_drop: Option<f64>,
    /// The per-fold values.
    pub raw: DriftRaw,
}

/// `results.json`, `drift_matrix.png`, `drop_matrix.png`, `drift_vs_corruption.png` (with a corruption
/// baseline) and `report.md`.
pub fn write_report(dir: &Path, matrix: &DriftMatrix, corruptions: &[(String, f64)], raw: &DriftRaw) -> Result<()> {
    let drops = matrix.drops();
    let corruption_mean = (!corruptions.is_empty()).then(|| corruptions.iter().map(|(_, d)| d).sum::<f64>() / corruptions.len() as f64);
    let results = DriftResults {
        corruption_drops: corruptions.to_vec(),
        drops: drops.clone(),
        matrix: matrix.clone(),
        mean_corruption_drop: corruption_mean,
        mean_drop: matrix.mean_drop(),
        raw: raw.clone(),
    };
    write_json(&dir.join("results.json"), &results)?;
    tracking::plot_heatmap(&dir.join("drift_matrix.png"), &format!("{} (train ↓, test →)", matrix.metric), &matrix.train, &matrix.test, &matrix.mean.iter().map(|r| r.iter().map(|v| Some(*v)).collect()).collect::<Vec<_>>())?;
    tracking::plot_heatmap(&dir.join("drop_matrix.png"), &format!("drop of {} (diagonal − entry)", matrix.metric), &matrix.train, &matrix.test, &drops)?;
    let mut md = String::from("# Drift synthesis\n\n");
    let _ = writeln!(md, "Every model trained behind one pipeline (rows) is tested behind every pipeline (columns) on its fold's validation samples; {} as mean ± std over folds.\n", matrix.metric);
    let _ = writeln!(md, "![drift matrix](drift_matrix.png)\n");
    let _ = writeln!(md, "| train \\ test | {} |", matrix.test.join(" | "));
    let _ = writeln!(md, "|---|{}", "---|".repeat(matrix.test.len()));
    for (i, name) in matrix.train.iter().enumerate() {
        let cells: Vec<String> = matrix.mean[i].iter().zip(&matrix.std[i]).map(|(m, s)| format!("{m:.3} ± {s:.3}")).collect();
        let _ = writeln!(md, "| {name} | {} |", cells.join(" | "));
    }
    let _ = writeln!(md, "\n![drop matrix](drop_matrix.png)\n");
    match matrix.mean_drop() {
        Some(drop) => {
            let _ = writeln!(md, "Mean drop under pipeline drift (off-diagonal): **{drop:.4}**.");
        }
        None => {
            let _ = writeln!(md, "No off-diagonal entries: train and test pipelines do not overlap.");
        }
    }
    if let Some(corruption_mean) = corruption_mean {
        let mut labels: Vec<String> = corruptions.iter().map(|(n, _)| n.clone()).collect();
        let mut values: Vec<f64> = corruptions.iter().map(|(_, d)| *d).collect();
        labels.push("mean corruption".into());
        values.push(corruption_mean);
        if let Some(drift) = matrix.mean_drop() {
            labels.push("pipeline drift".into());
            values.push(drift);
        }
        tracking::plot_bars(&dir.join("drift_vs_corruption.png"), &format!("mean drop of {}", matrix.metric), &labels, &[("drop", values)])?;
        let _ = writeln!(md, "\n## Pipeline drift against common corruptions\n\n![drift vs corruption](drift_vs_corruption.png)\n");
        let _ = writeln!(md, "| corruption | mean drop (severities, folds, pipelines) |\n|---|---|");
        for (name, drop) in corruptions {
            let _ = writeln!(md, "| {name} | {drop:.4} |");
        }
        let _ = writeln!(md, "\nMean corruption drop **{corruption_mean:.4}**.");
        if let Some(drift) = matrix.mean_drop().filter(|d| *d > 0.0) {
            let _ = writeln!(md, "The corruption drop is **{:.1}×** the pipeline-drift drop (the published finding: 4–10×).", corruption_mean / drift);
        }
    }
    write_atomically(&dir.join("report.md"), |out| Ok(out.write_all(md.as_bytes())?))
}
