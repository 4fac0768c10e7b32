//! A drift synthesis's results: `results.json` (typed, read back by `sweep collect`), the matrix
//! plots and `report.md`.

use super::statistics::{statistics, DriftRaw, DriftStatistics};
use crate::experiments::{collapsed, DriftMatrix};
use crate::imageio::{write_atomically, write_json};
use crate::tracking;
use crate::train::metrics::PredictionSummary;
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
    // every cell scored the same samples: the truth of any cell gives the trivial predictors' levels
    let truth = PredictionSummary::pooled(raw.summaries.iter().flatten().next().into_iter().flatten());
    let baselines = truth.baselines();
    let levels = baselines
        .iter()
        .map(|(name, level)| format!("{name} {level:.3}"))
        .collect::<Vec<_>>()
        .join(", ");
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
        &if levels.is_empty() {
            format!("{} (mean over models, 95 % interval)", matrix.metric)
        } else {
            format!("{} (mean over models, 95 % interval; {levels})", matrix.metric)
        },
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
    let scored = raw.units.first().map_or_else(
        || {
            raw.outcomes
                .first()
                .and_then(|r| r.first())
                .and_then(|c| c.first())
                .map_or(0, Vec::len)
        },
        |u| u.samples.len(),
    );
    let on = if raw.scored_on_test {
        format!("the held-out test part ({scored} samples, never trained or validated on)")
    } else {
        format!("its fold's validation samples ({scored} per fold)")
    };
    let _ = writeln!(md, "Every model trained behind one pipeline (rows) is tested behind every pipeline (columns) on {on}: {} models per row ({} training seed(s) × folds). Each cell: {} as the mean over those models with its 95 % bootstrap interval (training seeds drawn with replacement, then the distinct scored samples, {} draws, so the interval carries training randomness), then the standard deviation between seeds (each seed's mean over folds; 0 with one seed).\n", raw.folds.len(), stats.seeds, matrix.metric, RESAMPLES);
    let _ = writeln!(md, "![drift matrix](drift_matrix.png)\n");
    let _ = writeln!(md, "| train \\ test | {} |", matrix.test.join(" | "));
    let _ = writeln!(md, "|---|{}", "---|".repeat(matrix.test.len()));
    for (i, name) in matrix.train.iter().enumerate() {
        let row: Vec<String> = stats.cells[i]
            .iter()
            .zip(&stats.seed_sd[i])
            .enumerate()
            .map(|(j, (e, sd))| {
                let degenerate = raw.summaries.get(i).and_then(|r| r.get(j)).and_then(|c| collapsed(c));
                let marker = if degenerate.is_some() { " (degenerate)" } else { "" };
                match (e, sd) {
                    (Some(e), Some(sd)) => format!("{} seed SD {sd:.3}{marker}", e.show()),
                    _ => "–".into(),
                }
            })
            .collect();
        let _ = writeln!(md, "| {name} | {} |", row.join(" | "));
    }
    if !levels.is_empty() {
        let _ = writeln!(
            md,
            "\nTrivial predictors on the same samples: {levels} — a cell at that level has learned nothing."
        );
    }
    let degenerate: Vec<String> = matrix
        .train
        .iter()
        .enumerate()
        .flat_map(|(i, train)| {
            matrix.test.iter().enumerate().filter_map(move |(j, test)| {
                let cell = raw.summaries.get(i)?.get(j)?;
                collapsed(cell).map(|how| format!("- trained behind {train}, tested behind {test}: {how}"))
            })
        })
        .collect();
    if !degenerate.is_empty() {
        let _ = writeln!(md, "\n**Degenerate models** — their predictions collapsed to one answer; these cells are not findings about the pipelines:\n\n{}", degenerate.join("\n"));
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
            &baselines,
        )?;
        let _ = writeln!(md, "\n## Intensity drift\n\nEach model tested behind its own pipeline on the same scored samples (as in the matrix), re-read or re-simulated at each light intensity; {} with its 95 % bootstrap interval.\n\n![intensity drift](intensity_drift.png)\n", matrix.metric);
        let _ = writeln!(
            md,
            "| trained behind \\ intensity | {} |",
            xs.iter().map(|x| format!("{x}")).collect::<Vec<_>>().join(" | ")
        );
        let _ = writeln!(md, "|---|{}", "---|".repeat(xs.len()));
        let mut degenerate = Vec::new();
        for (i, (name, points)) in series.iter().enumerate() {
            let cells: Vec<String> = points
                .iter()
                .zip(&raw.intensities)
                .map(|(e, at)| {
                    let how = at.summaries.get(i).and_then(|s| collapsed(s));
                    if let Some(how) = &how {
                        degenerate.push(format!("- trained behind {name}, at {}: {how}", at.intensity));
                    }
                    let marker = if how.is_some() { " (degenerate)" } else { "" };
                    e.map_or("–".into(), |e| format!("{}{marker}", e.show()))
                })
                .collect();
            let _ = writeln!(md, "| {name} | {} |", cells.join(" | "));
        }
        if !degenerate.is_empty() {
            let _ = writeln!(md, "\n**Degenerate models** at low light — their predictions collapsed to one answer, so these points measure the collapse, not the pipeline:\n\n{}", degenerate.join("\n"));
        }
    }
    write_atomically(&dir.join("report.md"), |out| Ok(out.write_all(md.as_bytes())?))
}
