//! A drift synthesis's results: `results.json` (typed, read back by `sweep collect`), the matrix
//! plots and `report.md`.

use super::statistics::{statistics, DriftRaw, DriftStatistics};
use crate::experiments::DriftMatrix;
use crate::imageio::{write_atomically, write_json};
use crate::tracking;
use crate::uncertainty::{Estimate, RESAMPLES};
use anyhow::Result;
use std::fmt::Write as _;
use std::path::Path;

/// `results.json` of a drift synthesis.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DriftResults {
    /// The metric's matrix (mean and standard deviation over folds).
    pub matrix: DriftMatrix,
    /// Every verdict with its 95 % bootstrap interval.
    pub statistics: DriftStatistics,
    /// The per-fold values and per-sample outcomes.
    pub raw: DriftRaw,
}

/// The seed of a drift synthesis's bootstrap (fixed: a report is reproducible to the digit).
const BOOTSTRAP_SEED: u64 = 0x5EED;

/// `results.json`, `drift_matrix.png`, `drop_matrix.png`, `drift_vs_corruption.png` (with a corruption
/// baseline) and `report.md`.
pub fn write_report(dir: &Path, matrix: &DriftMatrix, raw: &DriftRaw) -> Result<()> {
    let stats = statistics(&matrix.train, &matrix.test, raw, BOOTSTRAP_SEED)?;
    write_json(
        &dir.join("results.json"),
        &DriftResults {
            matrix: matrix.clone(),
            statistics: stats.clone(),
            raw: raw.clone(),
        },
    )?;
    tracking::plot_matrix(
        &dir.join("drift_matrix.png"),
        &format!("{} (mean over folds, 95 % interval)", matrix.metric),
        "trained behind",
        "tested behind",
        &matrix.train,
        &matrix.test,
        &stats.cells,
        (0.0, 1.0),
        tracking::ColourScale::Sequential,
    )?;
    let drop_range = stats
        .drops
        .iter()
        .flatten()
        .flatten()
        .fold(0.05f64, |m, e| m.max(e.value.abs()));
    tracking::plot_matrix(
        &dir.join("drop_matrix.png"),
        &format!("drop of {} (own pipeline − this one)", matrix.metric),
        "trained behind",
        "tested behind",
        &matrix.train,
        &matrix.test,
        &stats.drops,
        (-drop_range, drop_range),
        tracking::ColourScale::Diverging,
    )?;
    let mut md = String::from("# Drift synthesis\n\n");
    let _ = writeln!(md, "Every model trained behind one pipeline (rows) is tested behind every pipeline (columns) on its fold's validation samples ({} folds, {} validation samples per fold). Each cell: {} as the mean over folds with its 95 % bootstrap interval (validation samples resampled within folds, {} draws), then ± the standard deviation over folds.\n", raw.folds.len(), raw.outcomes.first().and_then(|r| r.first()).and_then(|c| c.first()).map_or(0, Vec::len), matrix.metric, RESAMPLES);
    let _ = writeln!(md, "![drift matrix](drift_matrix.png)\n");
    let _ = writeln!(md, "| train \\ test | {} |", matrix.test.join(" | "));
    let _ = writeln!(md, "|---|{}", "---|".repeat(matrix.test.len()));
    for (i, name) in matrix.train.iter().enumerate() {
        let row: Vec<String> = stats.cells[i]
            .iter()
            .zip(&matrix.std[i])
            .map(|(e, s)| e.map_or("–".into(), |e| format!("{} ± {s:.3}", e.show())))
            .collect();
        let _ = writeln!(md, "| {name} | {} |", row.join(" | "));
    }
    let _ = writeln!(md, "\n![drop matrix](drop_matrix.png)\n");
    match &stats.mean_drop {
        Some(drop) if drop.contains(0.0) => {
            let _ = writeln!(md, "Mean drop under pipeline drift (off-diagonal): {} — the interval holds 0: **no drop resolved** with these samples.", drop.show());
        }
        Some(drop) => {
            let _ = writeln!(
                md,
                "Mean drop under pipeline drift (off-diagonal): **{}**.",
                drop.show()
            );
        }
        None => {
            let _ = writeln!(md, "No off-diagonal entries: train and test pipelines do not overlap.");
        }
    }
    if let Some(corruption_mean) = &stats.mean_corruption_drop {
        let mut bars: Vec<(String, Estimate)> = stats.corruption_drops.clone();
        bars.push(("mean corruption".into(), *corruption_mean));
        if let Some(drift) = &stats.mean_drop {
            bars.push(("pipeline drift".into(), *drift));
        }
        tracking::plot_estimate_bars(
            &dir.join("drift_vs_corruption.png"),
            &format!("mean drop of {} (95 % interval)", matrix.metric),
            &format!("drop of {}", matrix.metric),
            &bars,
            Some("pipeline drift"),
        )?;
        let _ = writeln!(
            md,
            "\n## Pipeline drift against common corruptions\n\n![drift vs corruption](drift_vs_corruption.png)\n"
        );
        let _ = writeln!(
            md,
            "| corruption | mean drop (severities, folds, pipelines), 95 % interval |\n|---|---|"
        );
        for (name, drop) in &stats.corruption_drops {
            let _ = writeln!(md, "| {name} | {} |", drop.show());
        }
        let _ = writeln!(md, "\nMean corruption drop **{}**.", corruption_mean.show());
        if let (Some(ratio), Some(drift)) = (&stats.ratio, &stats.mean_drop) {
            let ratio_text = format!("{:.2}× [{:.2}, {:.2}]", ratio.value, ratio.low, ratio.high);
            let sentence = if drift.contains(0.0) || drift.value <= 0.0 {
                "The ratio of corruption drop to pipeline-drift drop is not defined here: the drift drop's interval holds 0.".to_string()
            } else if ratio.contains(1.0) {
                format!("The corruption drop is {ratio_text} the pipeline-drift drop: **not distinguishable from 1×** (the published finding: 4–10×).")
            } else {
                format!(
                    "The corruption drop is **{ratio_text}** the pipeline-drift drop (the published finding: 4–10×)."
                )
            };
            let _ = writeln!(md, "{sentence}");
        }
    }
    if !stats.intensities.is_empty() {
        let xs: Vec<f64> = stats.intensities.iter().map(|(intensity, _)| *intensity).collect();
        let series: Vec<(String, Vec<Option<Estimate>>)> = matrix
            .train
            .iter()
            .enumerate()
            .map(|(i, name)| (name.clone(), stats.intensities.iter().map(|(_, row)| row[i]).collect()))
            .collect();
        let points: Vec<(String, Vec<(f64, Estimate)>)> = series
            .iter()
            .map(|(name, row)| {
                (
                    name.clone(),
                    xs.iter().zip(row).filter_map(|(x, e)| e.map(|e| (*x, e))).collect(),
                )
            })
            .collect();
        tracking::plot_estimate_curves(
            &dir.join("intensity_drift.png"),
            &format!("{} behind the training pipeline, by light intensity", matrix.metric),
            "intensity (% of full, log scale)",
            &matrix.metric,
            tracking::XScale::Log,
            &points,
        )?;
        let _ = writeln!(md, "\n## Intensity drift\n\nEach model tested behind its own pipeline on the same validation samples, re-read or re-simulated at each light intensity; {} with its 95 % bootstrap interval.\n\n![intensity drift](intensity_drift.png)\n", matrix.metric);
        let _ = writeln!(
            md,
            "| trained behind \\ intensity | {} |",
            xs.iter().map(|x| format!("{x}")).collect::<Vec<_>>().join(" | ")
        );
        let _ = writeln!(md, "|---|{}", "---|".repeat(xs.len()));
        for (name, points) in &series {
            let _ = writeln!(
                md,
                "| {name} | {} |",
                points
                    .iter()
                    .map(|e| e.map_or("–".into(), |e| e.show()))
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
        }
    }
    write_atomically(&dir.join("report.md"), |out| Ok(out.write_all(md.as_bytes())?))
}
