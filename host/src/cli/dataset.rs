//! `dataset info`, `dataset bench`, `dataset write`, `dataset download`.

use super::args::{ConfigArgs, DownloadChoice};
use super::setup::load_config;
use anyhow::Result;
use l2l_host::data::datasets::{self, Layout};
use l2l_host::data::LoaderOptions;
use std::path::Path;
use std::sync::Arc;

/// `dataset info CONFIG`.
pub fn info(args: &ConfigArgs) -> Result<()> {
    let (loaded, registry) = load_config(args)?;
    let dataset = datasets::open(&registry, &datasets::spec(&loaded)?, &[])?;
    print!("{}", datasets::describe(&dataset)?);
    Ok(())
}

/// `dataset bench CONFIG`.
pub fn bench(args: &ConfigArgs, batch_size: usize, workers: Option<usize>, epochs: usize) -> Result<()> {
    let (loaded, registry) = load_config(args)?;
    let dataset = Arc::new(datasets::open(&registry, &datasets::spec(&loaded)?, &[])?);
    let defaults = LoaderOptions::default();
    let options = LoaderOptions {
        batch_size,
        workers: workers.unwrap_or(defaults.workers),
        ..defaults
    };
    let result = datasets::bench_loader(dataset, &options, epochs)?;
    println!(
        "{} samples in {:.2} s: {:.1} samples/s ({} workers, batch {})",
        result.samples, result.seconds, result.samples_per_second, result.workers, result.batch_size
    );
    Ok(())
}

/// `dataset write CONFIG --layout … --output DIR [--force]`.
pub fn write(args: &ConfigArgs, layout: Layout, output: &Path, intensities: &[u32], force: bool) -> Result<()> {
    let (loaded, registry) = load_config(args)?;
    let written = datasets::write_layout(&registry, &datasets::spec(&loaded)?, layout, output, intensities, force)?;
    println!("wrote {written} files into {}", output.display());
    Ok(())
}

/// `dataset download raw-microscopy|raw-drone|all --to DIR [--record ID] [--mirror URL] [--max-unpack-ratio R]`.
pub fn download(which: DownloadChoice, to: &Path, record: u64, mirror: &str, max_unpack_ratio: u64) -> Result<()> {
    use l2l_host::download::layout::PublishedDataset;
    let datasets = match which {
        DownloadChoice::RawMicroscopy => vec![PublishedDataset::RawMicroscopy],
        DownloadChoice::RawDrone => vec![PublishedDataset::RawDrone],
        DownloadChoice::All => vec![PublishedDataset::RawMicroscopy, PublishedDataset::RawDrone],
    };
    let options = l2l_host::download::DownloadOptions {
        datasets,
        to: to.to_path_buf(),
        record,
        api: mirror.to_string(),
        max_unpack_ratio,
    };
    let arranged = l2l_host::download::download(&options)?;
    print!("{}", l2l_host::download::describe(&arranged));
    Ok(())
}
