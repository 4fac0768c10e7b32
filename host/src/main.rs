//! `l2l-host`: the command line. Parses arguments and wires the library's modules together.

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use l2l_host::config::{self, LoadedConfig};
use l2l_host::pipeline::Pipeline;
use l2l_host::plugins::{self, Registry};
use l2l_host::{datasets, imageio, run};
use l2l_plugin_api::ffi::ComponentKind;
use std::path::PathBuf;
use std::sync::Arc;
use tch::Kind;

/// From lens to logit: raw sensor data through explicit, differentiable camera pipelines.
#[derive(Parser)]
#[command(name = "l2l-host", version, about)]
struct Cli {
    /// More log output (-v info, -vv debug); `L2L_LOG` takes a tracing filter instead.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the job a config describes, or continue an interrupted training run.
    Run(RunArgs),
    /// Check a config: keys, plugins, and every stage's own config, without running anything.
    Validate(ConfigArgs),
    /// Process one raw file through the config's pipeline.
    Process {
        #[command(flatten)]
        config: ConfigArgs,
        /// Raw input: .npy, 16-bit TIFF, or any format rawloader reads.
        #[arg(long)]
        input: PathBuf,
        /// Output by extension: .png, .tiff (float32) or .npy (float32 H×W×3).
        #[arg(long)]
        output: PathBuf,
        /// Bits per channel of a PNG output.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(8..=16))]
        png_bits: u8,
        /// Divide integer raw samples by this instead of the file's own white level.
        #[arg(long)]
        white_level: Option<f64>,
    },
    /// Process raw files through several pipelines, one output folder per pipeline (resumable).
    Export {
        /// Pipeline configs; each output folder is named after its file.
        #[arg(long, required = true, num_args = 1..)]
        pipelines: Vec<PathBuf>,
        /// Raw files, or folders of them.
        #[arg(long, required = true, num_args = 1..)]
        input: Vec<PathBuf>,
        /// The folder that receives one folder per pipeline.
        #[arg(long)]
        output: PathBuf,
        /// Output encoding.
        #[arg(long, value_enum, default_value = "png16")]
        format: l2l_host::export::ExportFormat,
        /// Divide integer raw samples by this instead of the file's own white level.
        #[arg(long)]
        white_level: Option<f64>,
        /// auto, cpu, cuda or cuda:N.
        #[arg(long, default_value = "auto")]
        device: String,
    },
    /// Throughput of every stage and pipeline (MP/s, forward and forward+backward), or of a task
    /// model's training step.
    Bench {
        /// Pipeline configs to measure.
        #[arg(long, num_args = 1.., required_unless_present = "task_model")]
        pipelines: Vec<PathBuf>,
        /// A config whose [task_model] to time: one training step (forward, cross-entropy, backward, Adam).
        #[arg(long)]
        task_model: Option<PathBuf>,
        /// Classes of the task model's head.
        #[arg(long, default_value_t = 9)]
        classes: usize,
        /// Image side in pixels.
        #[arg(long, default_value_t = 256)]
        size: i64,
        /// Images per batch.
        #[arg(long, default_value_t = 8)]
        batch: i64,
        /// Timed iterations (median reported).
        #[arg(long, default_value_t = 10)]
        iterations: usize,
        /// auto, cpu, cuda or cuda:N.
        #[arg(long, default_value = "auto")]
        device: String,
        /// Also write the rows as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Installed plugins.
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// The config's dataset: describe it, measure its loader, or write it out in a published layout.
    #[command(subcommand)]
    Dataset(DatasetCommand),
    /// Split a drift-synthesis experiment into a grid of jobs and run them here or on Slurm.
    #[command(subcommand)]
    Sweep(SweepCommand),
}

#[derive(Subcommand)]
enum SweepCommand {
    /// Expand the config's grid into a new sweep directory and run its jobs.
    Start {
        #[command(flatten)]
        config: ConfigArgs,
        /// local or slurm (default: the config's `[sweep] executor`).
        #[arg(long, value_enum)]
        executor: Option<l2l_host::sweep::Executor>,
        /// Slurm: return at once instead of waiting for the array to finish.
        #[arg(long)]
        no_wait: bool,
    },
    /// Run the sweep's unfinished jobs again (resubmission of failed or missing ones).
    Run {
        /// The sweep directory.
        dir: PathBuf,
        /// local or slurm (default: the sweep's).
        #[arg(long, value_enum)]
        executor: Option<l2l_host::sweep::Executor>,
        /// Slurm: return at once instead of waiting.
        #[arg(long)]
        no_wait: bool,
    },
    /// Gather the finished jobs into the experiment's matrices and report; list missing jobs and logs.
    Collect {
        /// The sweep directory.
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum DatasetCommand {
    /// Samples, classes and their counts, the first sample's shape and camera, warnings.
    Info(ConfigArgs),
    /// Loader throughput (samples/s with decoding, batching and prefetch).
    Bench {
        #[command(flatten)]
        config: ConfigArgs,
        /// Samples per batch.
        #[arg(long, default_value_t = 8)]
        batch_size: usize,
        /// Decoding threads (default: every core).
        #[arg(long)]
        workers: Option<usize>,
        /// Passes over the dataset.
        #[arg(long, default_value_t = 1)]
        epochs: usize,
    },
    /// Write the dataset to disk in the Raw-Microscopy or Raw-Drone layout, at several intensities.
    Write {
        #[command(flatten)]
        config: ConfigArgs,
        /// microscopy (16-bit TIFF + label file) or drone (DNG + PNG masks).
        #[arg(long, value_enum)]
        layout: l2l_host::datasets::Layout,
        /// The folder to lay the dataset out in.
        #[arg(long)]
        output: PathBuf,
        /// Intensities in percent (the dataset's `intensity` key), comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = l2l_rawio::PUBLISHED_INTENSITIES)]
        intensities: Vec<u32>,
    },
}

#[derive(Args)]
struct RunArgs {
    /// The TOML config (not with --resume: the run directory keeps its own).
    #[arg(required_unless_present = "resume")]
    config: Option<PathBuf>,
    /// Override a config key: `--set stages.gamma.gamma=2.4` (value in TOML syntax or a bare word).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Continue the training run in this directory from its last checkpoint.
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["config", "overrides"])]
    resume: Option<PathBuf>,
}

#[derive(Args)]
struct ConfigArgs {
    /// The TOML config.
    config: PathBuf,
    /// Override a config key: `--set stages.gamma.gamma=2.4` (value in TOML syntax or a bare word).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// Every plugin found (name, kind, version, file) and every file refused.
    List {
        /// Search these plugin directories or files first.
        #[arg(long = "plugin-dir")]
        plugin_dirs: Vec<PathBuf>,
    },
    /// Pin every plugin found (path and SHA-256) in a lock file; while it is in effect ($L2L_PLUGIN_LOCK,
    /// else ./l2l-plugins.lock) only those plugins, unchanged, load.
    Lock {
        /// Search these plugin directories or files first.
        #[arg(long = "plugin-dir")]
        plugin_dirs: Vec<PathBuf>,
        /// Where to write the lock.
        #[arg(long, default_value = l2l_host::trust::DEFAULT_LOCK)]
        output: PathBuf,
    },
    /// A plugin's or a component's config keys (defaults, docs) and learnable parameters.
    Inspect {
        /// A plugin name or a component name.
        name: String,
        /// Search these plugin directories or files first.
        #[arg(long = "plugin-dir")]
        plugin_dirs: Vec<PathBuf>,
    },
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("L2L_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

fn load_config(args: &ConfigArgs) -> Result<(LoadedConfig, Registry)> {
    let loaded = config::load(&args.config, &args.overrides)?;
    if let Some(threads) = loaded.config.threads {
        tch::set_num_threads(threads);
    }
    let registry = Registry::discover(&loaded.plugin_dirs());
    Ok((loaded, registry))
}

/// libtorch allocates and frees large CPU tensors all the time; glibc would map and unmap each one,
/// and every first touch of a fresh mapping is a page fault (measured: 13 million in a 12-MP export,
/// half its run time). Freed memory is kept in the process instead.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // SAFETY: mallopt only changes allocator tuning; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

fn main() {
    keep_freed_memory();
    // before anything asks libtorch about devices
    let cuda = l2l_host::cuda::ensure_loaded();
    let cli = Cli::parse();
    init_logging(cli.verbose);
    tracing::debug!(?cuda, "libtorch's CUDA backend");
    if let Err(err) = execute(cli.command) {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn execute(command: Command) -> Result<()> {
    match command {
        Command::Run(RunArgs { resume: Some(run_dir), .. }) => {
            let loaded = config::load_run(&run_dir)?;
            if let Some(threads) = loaded.config.threads {
                tch::set_num_threads(threads);
            }
            let registry = Registry::discover(&loaded.plugin_dirs());
            let Some(config::JobConfig::Train(train)) = &loaded.config.job else {
                bail!("{}: not a training run (only training runs resume)", run_dir.display());
            };
            let run_dir = l2l_host::train::train(&loaded, &registry, train, Some(&run_dir))?;
            println!("run finished: {}", run_dir.display());
            Ok(())
        }
        Command::Run(RunArgs { config, overrides, .. }) => {
            let args = ConfigArgs {
                config: config.ok_or_else(|| anyhow!("a config is needed (or --resume RUN_DIR)"))?,
                overrides,
            };
            let (loaded, registry) = load_config(&args)?;
            let run_dir = run::run(&loaded, &registry)?;
            println!("run finished: {}", run_dir.display());
            let report = run_dir.join("report.md");
            if report.exists() {
                println!("report: {}", report.display());
            }
            Ok(())
        }
        Command::Validate(args) => {
            let (loaded, registry) = load_config(&args)?;
            let specs = loaded.stage_specs()?;
            Pipeline::build(&registry, &specs, tch::Device::Cpu)?;
            println!(
                "{}: valid ({} stages: {})",
                args.config.display(),
                specs.len(),
                loaded.config.pipeline.join(" → ")
            );
            if let Some(spec) = loaded.dataset_spec()? {
                let dataset = datasets::open(&registry, &spec, &[])?;
                println!("  dataset: {}, {} samples", dataset.label(), dataset.len());
                if let Some(model) = loaded.task_model_spec()? {
                    let classes = dataset.class_names().map_or(1, |names| names.len());
                    registry.build_task_model(&model.kind, model.plugin.as_deref(), &model.config_text, classes, "config key `task_model`")?;
                    println!("  task model: `{}` for {classes} output(s)", model.kind);
                }
            }
            Ok(())
        }
        Command::Process {
            config,
            input,
            output,
            png_bits,
            white_level,
        } => {
            let (loaded, registry) = load_config(&config)?;
            let device = loaded.device()?;
            let mut pipeline = Pipeline::build(&registry, &loaded.stage_specs()?, device)?;
            let raw = imageio::read_raw_input(&input, white_level)?;
            pipeline.set_camera(raw.metadata.as_slice())?;
            let size = raw.mosaic.size();
            let mosaic = raw.mosaic.f_view([1, 1, size[0], size[1]])?.f_to_device(device)?;
            let result = tch::no_grad(|| pipeline.forward(&mosaic))?;
            imageio::write_image(&output, &result.f_get(0)?, png_bits)?;
            println!("wrote {}", output.display());
            Ok(())
        }
        Command::Export {
            pipelines,
            input,
            output,
            format,
            white_level,
            device,
        } => {
            let device = config::compute_device(&device)?;
            let started = std::time::Instant::now();
            let summary = l2l_host::export::export(&pipelines, &input, &output, format, white_level, device)?;
            println!(
                "exported {} files ({} already there, {} stage runs shared) into {} in {:.1} s",
                summary.written,
                summary.skipped,
                summary.shared_stage_runs,
                output.display(),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Bench {
            pipelines,
            task_model,
            classes,
            size,
            batch,
            iterations,
            device,
            json,
        } => {
            let options = l2l_host::bench::BenchOptions {
                size,
                batch,
                iterations,
                device: config::compute_device(&device)?,
            };
            println!(
                "{batch} × {size}² on {:?}, {} libtorch threads, median of {iterations}",
                options.device,
                tch::get_num_threads()
            );
            if let Some(config) = task_model {
                let loaded = config::load(&config, &[])?;
                let registry = Registry::discover(&loaded.plugin_dirs());
                let spec = loaded
                    .task_model_spec()?
                    .ok_or_else(|| anyhow!("{}: no [task_model] table", config.display()))?;
                let ms = l2l_host::bench::bench_task_model(&registry, &spec, classes, &options)?;
                println!("task model `{}` training step: {ms:.1} ms ({:.1} images/s)", spec.kind, batch as f64 / ms * 1e3);
                return Ok(());
            }
            let rows = l2l_host::bench::bench(&pipelines, &options)?;
            print!("{}", l2l_host::bench::format_table(&rows));
            if let Some(path) = json {
                imageio::write_atomically(&path, |out| Ok(serde_json::to_writer_pretty(out, &rows)?))?;
            }
            Ok(())
        }
        Command::Plugins(PluginsCommand::List { plugin_dirs }) => {
            let registry = Registry::discover(&plugin_dirs);
            println!(
                "{:<20} {:<11} {:<22} {:<8} FILE",
                "PLUGIN", "KIND", "COMPONENT", "VERSION"
            );
            for plugin in registry.plugins() {
                for c in &plugin.components {
                    println!(
                        "{:<20} {:<11} {:<22} {:<8} {}",
                        plugin.name,
                        c.kind.as_str(),
                        c.name,
                        plugin.version,
                        plugin.file.display()
                    );
                }
            }
            if registry.refused().is_empty() {
                Ok(())
            } else {
                bail!("{}", plugins::describe_refusals(registry.refused()))
            }
        }
        Command::Dataset(DatasetCommand::Info(args)) => {
            let (loaded, registry) = load_config(&args)?;
            let dataset = datasets::open(&registry, &datasets::spec(&loaded)?, &[])?;
            print!("{}", datasets::describe(&dataset)?);
            Ok(())
        }
        Command::Dataset(DatasetCommand::Bench {
            config,
            batch_size,
            workers,
            epochs,
        }) => {
            let (loaded, registry) = load_config(&config)?;
            let dataset = Arc::new(datasets::open(&registry, &datasets::spec(&loaded)?, &[])?);
            let defaults = l2l_host::data::LoaderOptions::default();
            let options = l2l_host::data::LoaderOptions {
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
        Command::Dataset(DatasetCommand::Write {
            config,
            layout,
            output,
            intensities,
        }) => {
            let (loaded, registry) = load_config(&config)?;
            let written = datasets::write_layout(&registry, &datasets::spec(&loaded)?, layout, &output, &intensities)?;
            println!("wrote {written} files into {}", output.display());
            Ok(())
        }
        Command::Sweep(SweepCommand::Start { config, executor, no_wait }) => {
            let (loaded, _) = load_config(&config)?;
            let dir = l2l_host::sweep::create(&loaded)?;
            println!("sweep: {}", dir.display());
            let started = l2l_host::sweep::run(&dir, executor, !no_wait)?;
            println!("ran {started} job(s); collect with: l2l-host sweep collect {}", dir.display());
            Ok(())
        }
        Command::Sweep(SweepCommand::Run { dir, executor, no_wait }) => {
            let started = l2l_host::sweep::run(&dir, executor, !no_wait)?;
            println!("ran {started} unfinished job(s) of {}", dir.display());
            Ok(())
        }
        Command::Sweep(SweepCommand::Collect { dir }) => {
            let collected = l2l_host::sweep::collect(&dir)?;
            println!("{} job(s) finished, {} missing", collected.finished, collected.missing.len());
            for report in &collected.reports {
                println!("report: {}", report.join("report.md").display());
            }
            for (id, log) in &collected.missing {
                println!("missing: {id} (log: {})", log.display());
            }
            if collected.missing.is_empty() {
                Ok(())
            } else {
                bail!("{} job(s) have no results; rerun them with: l2l-host sweep run {}", collected.missing.len(), dir.display())
            }
        }
        Command::Plugins(PluginsCommand::Lock { plugin_dirs, output }) => {
            let registry = Registry::discover(&plugin_dirs);
            if !registry.refused().is_empty() {
                bail!("not locking while files are refused:\n{}", plugins::describe_refusals(registry.refused()));
            }
            let files: Vec<PathBuf> = registry.plugins().iter().map(|p| p.file.clone()).collect();
            l2l_host::trust::PluginLock::write(&output, &files)?;
            println!("locked {} plugin(s) in {}", files.len(), output.display());
            Ok(())
        }
        Command::Plugins(PluginsCommand::Inspect { name, plugin_dirs }) => {
            inspect(&Registry::discover(&plugin_dirs), &name)
        }
    }
}

/// Prints a component's config keys and, for stages, the parameters of a default-built instance.
fn inspect(registry: &Registry, name: &str) -> Result<()> {
    let by_plugin = registry.plugins().iter().find(|p| p.name == name);
    let matches: Vec<_> = registry
        .plugins()
        .iter()
        .flat_map(|p| p.components.iter().map(move |c| (p, c)))
        .filter(|(p, c)| by_plugin.is_some_and(|b| b.name == p.name) || c.name.as_str() == name)
        .collect();
    if matches.is_empty() {
        let known: Vec<String> = registry.plugins().iter().map(|p| p.name.clone()).collect();
        return Err(anyhow!(
            "no plugin or component named `{name}`; plugins: {}",
            known.join(", ")
        ));
    }
    for (plugin, component) in matches {
        println!(
            "{} `{}` — {}",
            component.kind.as_str(),
            component.name,
            component.summary
        );
        println!(
            "  plugin {} {} ({})",
            plugin.name,
            plugin.version,
            plugin.file.display()
        );
        println!("  config keys:");
        for key in component.config_keys.iter() {
            let default = if key.default.is_empty() {
                "required".to_string()
            } else {
                format!("default {}", key.default)
            };
            println!("    {:<14} {:<28} {}", key.name, default, key.doc);
        }
        if component.kind == ComponentKind::Stage {
            let stage = registry
                .build_stage(
                    &component.name,
                    Some(&plugin.name),
                    "",
                    &format!("default `{}`", component.name),
                )
                .context("building the stage with its defaults")?;
            let parameters = stage.parameters()?;
            println!(
                "  learnable parameters:{}",
                if parameters.is_empty() { " none" } else { "" }
            );
            for p in parameters {
                let values: Vec<f64> = Vec::<f64>::try_from(p.tensor.f_to_kind(Kind::Double)?.f_flatten(0, -1)?)?;
                let shown = if values.len() <= 9 {
                    format!("{values:?}")
                } else {
                    format!("{} values", values.len())
                };
                println!(
                    "    {:<14} shape {:?}, trainable {}, default {shown}",
                    p.name,
                    p.tensor.size(),
                    p.trainable
                );
            }
        }
        println!();
    }
    Ok(())
}
