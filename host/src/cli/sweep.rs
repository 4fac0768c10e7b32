//! `sweep start`, `sweep run`, `sweep collect`.

use super::args::ConfigArgs;
use super::setup::load_config;
use anyhow::{bail, Result};
use l2l_host::sweep::{self, Executor};
use std::path::Path;

/// `sweep start CONFIG`: expand the grid, then run its jobs.
pub fn start(args: &ConfigArgs, executor: Option<Executor>, no_wait: bool) -> Result<()> {
    let (loaded, _) = load_config(args)?;
    let dir = sweep::create(&loaded)?;
    println!("sweep: {}", dir.display());
    let started = sweep::run(&dir, executor, !no_wait)?;
    println!(
        "ran {started} job(s); collect with: l2l-host sweep collect {}",
        dir.display()
    );
    Ok(())
}

/// `sweep run DIR`: the jobs without results, again.
pub fn run(dir: &Path, executor: Option<Executor>, no_wait: bool) -> Result<()> {
    let started = sweep::run(dir, executor, !no_wait)?;
    println!("ran {started} unfinished job(s) of {}", dir.display());
    Ok(())
}

/// `sweep collect DIR`: matrices and reports; missing jobs with their logs.
pub fn collect(dir: &Path) -> Result<()> {
    let collected = sweep::collect(dir)?;
    println!(
        "{} job(s) finished, {} missing",
        collected.finished,
        collected.missing.len()
    );
    for report in &collected.reports {
        println!("report: {}", report.join("report.md").display());
    }
    for (id, log) in &collected.missing {
        println!("missing: {id} (log: {})", log.display());
    }
    if collected.missing.is_empty() {
        Ok(())
    } else {
        bail!(
            "{} job(s) have no results; rerun them with: l2l-host sweep run {}",
            collected.missing.len(),
            dir.display()
        )
    }
}
