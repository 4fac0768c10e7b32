//! Metrics rows as a run writes them: `metrics.csv` for people, `metrics.jsonl` for programs.

use crate::imageio::write_atomically;
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::Path;

/// One row of metrics: which fold, epoch and split, and the values.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MetricsRow {
    /// The split (fold) index.
    pub fold: usize,
    /// 1-based epoch.
    pub epoch: usize,
    /// "train" or "validation".
    pub split: String,
    /// Seconds the epoch took (train rows) or the validation took.
    pub seconds: f64,
    /// Metric name → value.
    pub values: BTreeMap<String, f64>,
    /// When the row's values were measured, milliseconds since the epoch (0 in runs from before this
    /// was recorded): the time of each point of an MLflow metric history.
    #[serde(default)]
    pub time_ms: u64,
}

/// Writes `rows` as `metrics.csv` and `metrics.jsonl` in `dir` (both rewritten whole, atomically).
pub fn write_metrics(dir: &Path, rows: &[MetricsRow]) -> Result<()> {
    let mut names: Vec<&String> = rows.iter().flat_map(|r| r.values.keys()).collect();
    names.sort();
    names.dedup();
    let mut csv = format!(
        "fold,epoch,split,seconds,{}\n",
        names.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(",")
    );
    for row in rows {
        let values: Vec<String> = names
            .iter()
            .map(|n| row.values.get(*n).map(|v| format!("{v}")).unwrap_or_default())
            .collect();
        csv += &format!(
            "{},{},{},{:.3},{}\n",
            row.fold,
            row.epoch,
            row.split,
            row.seconds,
            values.join(",")
        );
    }
    write_atomically(&dir.join("metrics.csv"), |out| Ok(out.write_all(csv.as_bytes())?))?;
    write_atomically(&dir.join("metrics.jsonl"), |out| {
        for row in rows {
            serde_json::to_writer(&mut *out, row)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    })
}
