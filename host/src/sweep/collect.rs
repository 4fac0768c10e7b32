//! Collecting a sweep: the finished jobs' typed results merged into one drift matrix (and report) per
//! augmentation; missing jobs listed with their logs.

use super::manifest::{manifest, result_of};
use crate::experiments::drift_synthesis::{self, DriftRaw, DriftResults};
use crate::experiments::matrix_from_values;
use crate::imageio::write_atomically;
use crate::train::config::Augmentation;
use crate::uncertainty::{Outcome, Unit};
use anyhow::{anyhow, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What collecting found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Collected {
    /// Jobs with results.
    pub finished: usize,
    /// Jobs without results: id and log path.
    pub missing: Vec<(String, PathBuf)>,
    /// One report directory per augmentation.
    pub reports: Vec<PathBuf>,
}

/// Per train pipeline, per test pipeline, per fold: the fold, its value and its sample outcomes.
type Cells = Vec<Vec<Vec<(usize, f64, Vec<Outcome>)>>>;

/// Gathers the finished jobs into one drift matrix (and report) per augmentation, in `dir/collected/`.
pub fn collect(dir: &Path) -> Result<Collected> {
    let manifest = manifest(dir)?;
    let mut missing = Vec::new();
    // augmentation → per train pipeline, per test pipeline, per fold: the value and the sample outcomes
    let mut by_augmentation: BTreeMap<String, (Augmentation, Cells)> = BTreeMap::new();
    let mut metric = manifest.metric.clone();
    // every replicate's seed and scored samples, as the jobs recorded them
    let mut units: BTreeMap<usize, Unit> = BTreeMap::new();
    let mut scored_on_test = false;
    for job in &manifest.jobs {
        let Some(path) = result_of(job) else {
            missing.push((job.id.clone(), job.log.clone()));
            continue;
        };
        let results: DriftResults = serde_json::from_slice(&std::fs::read(&path)?)
            .with_context(|| format!("{}: not a drift synthesis's results", path.display()))?;
        let raw = results.raw;
        units.extend(raw.folds.iter().copied().zip(raw.units.iter().cloned()));
        scored_on_test |= raw.scored_on_test;
        let train = results.matrix.train.first().cloned().unwrap_or_default();
        metric = metric.or(Some(results.matrix.metric));
        let row = manifest
            .train
            .iter()
            .position(|t| *t == train)
            .ok_or_else(|| anyhow!("{}: unknown training pipeline `{train}`", path.display()))?;
        let key = serde_json::to_value(raw.augmentation)?
            .as_str()
            .unwrap_or_default()
            .to_string();
        let entry = by_augmentation.entry(key).or_insert_with(|| {
            (
                raw.augmentation,
                vec![vec![Vec::new(); manifest.test.len()]; manifest.train.len()],
            )
        });
        let outcomes = raw.outcomes.first().map(Vec::as_slice).unwrap_or_default();
        for (column, values) in raw
            .values
            .first()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            for (k, (fold, value)) in raw.folds.iter().zip(values).enumerate() {
                let samples = outcomes.get(column).and_then(|c| c.get(k)).cloned().unwrap_or_default();
                entry.1[row][column].push((*fold, *value, samples));
            }
        }
    }
    let mut reports = Vec::new();
    for (name, (augmentation, cells)) in by_augmentation {
        let folds: Vec<usize> = {
            let mut f: Vec<usize> = cells.iter().flatten().flatten().map(|(f, _, _)| *f).collect();
            f.sort_unstable();
            f.dedup();
            f
        };
        let sorted: Cells = cells
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|mut cell| {
                        cell.sort_by_key(|(f, _, _)| *f);
                        cell
                    })
                    .collect()
            })
            .collect();
        let values: Vec<Vec<Vec<f64>>> = sorted
            .iter()
            .map(|row| {
                row.iter()
                    .map(|cell| cell.iter().map(|(_, v, _)| *v).collect())
                    .collect()
            })
            .collect();
        // per fold of `folds`, the outcomes (empty where a job is missing)
        let outcomes = sorted
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|cell| {
                        folds
                            .iter()
                            .map(|f| {
                                cell.iter()
                                    .find(|(g, _, _)| g == f)
                                    .map(|(_, _, o)| o.clone())
                                    .unwrap_or_default()
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let matrix = matrix_from_values(
            manifest.train.clone(),
            manifest.test.clone(),
            metric.clone().unwrap_or_else(|| "metric".into()),
            &values,
        );
        let report = dir.join("collected").join(&name);
        std::fs::create_dir_all(&report)?;
        drift_synthesis::write_report(
            &report,
            &matrix,
            &DriftRaw {
                // results recorded before replicates named their samples: folds resampled apart
                units: folds
                    .iter()
                    .map(|f| units.get(f).cloned())
                    .collect::<Option<Vec<_>>>()
                    .unwrap_or_default(),
                scored_on_test,
                summaries: Vec::new(),
                folds,
                values,
                outcomes,
                corrupted: Vec::new(),
                intensities: Vec::new(),
                augmentation,
            },
        )?;
        reports.push(report);
    }
    let collected = Collected {
        finished: manifest.jobs.len() - missing.len(),
        missing,
        reports,
    };
    write_atomically(&dir.join("collected.json"), |out| {
        Ok(serde_json::to_writer_pretty(out, &collected)?)
    })?;
    Ok(collected)
}
