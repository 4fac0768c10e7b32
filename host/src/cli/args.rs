//! The command line's shape: every subcommand, its arguments and their help.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// From lens to logit: raw sensor data through explicit, differentiable camera pipelines.
#[derive(Parser)]
#[command(name = "l2l-host", version, about)]
pub struct Cli {
    /// More log output (-v info, -vv debug); `L2L_LOG` takes a tracing filter instead.
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Log errors only (no warnings or info lines).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the job a config describes, or continue an interrupted training run.
    #[command(
        after_help = "Examples:\n  l2l-host run configs/quickstart.toml\n  l2l-host run configs/chart.toml --set stages.gamma.gamma=2.4\n  l2l-host run --resume runs/train-3"
    )]
    Run(RunArgs),
    /// Check a config: keys, plugins, every stage's own config, and (with a data set) every training the job will do tried on two samples; nothing is trained or written.
    Validate(ConfigArgs),
    /// Process one raw file through the config's pipeline.
    #[command(
        after_help = "Examples:\n  l2l-host process configs/pipelines/parametrized.toml --input IMG.dng --output out.png --png-bits 16\n  l2l-host process configs/chart.toml --input raw.npy --output demosaiced.npy --until demosaic\n  l2l-host process configs/train/cells-parametrized.toml --input raw.npy --output learned.png --state runs/cells-1/fold0.safetensors"
    )]
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
        /// Stop after this stage: its output is written (a prefix of the pipeline).
        #[arg(long, value_name = "STAGE")]
        until: Option<String>,
        /// Learned processing to apply: a training run's fold checkpoint (its processing half) or a
        /// pipeline state saved from Python (`l2l.Pipeline.save`).
        #[arg(long, value_name = "CHECKPOINT")]
        state: Option<PathBuf>,
        /// Replace an existing output file.
        #[arg(long)]
        force: bool,
    },
    /// A task model's answers for raw files or a data set's samples, through the config's processing:
    /// logits and probabilities per class, or mask PNGs and IoU per image.
    #[command(
        after_help = "Examples:\n  l2l-host predict configs/train/cells-task.toml --checkpoint runs/cells-1 --split validation --output predictions.csv\n  l2l-host predict configs/pipelines/menon2007_unsharp_masking_median_denoising.toml --checkpoint runs/cells-1 --fold 1 --split validation --output drifted.json\n  l2l-host predict configs/train/cells-task.toml --input a.npy b.tiff --output answers.json\n\nThe config gives the processing and the data set (whose class names label the logits). Without\n--checkpoint the config's [task_model] answers as built (its `weights`). With one, the run's learned\nprocessing state applies when the config's pipeline is the one it trained behind; any other pipeline\nruns as configured. Segmentation masks go to OUTPUT-STEM_masks/ beside the output."
    )]
    Predict {
        #[command(flatten)]
        config: ConfigArgs,
        /// A training run directory: its fold's task model (and learned processing).
        #[arg(long, value_name = "RUN_DIR")]
        checkpoint: Option<PathBuf>,
        /// The run's model that answers: replicate N, fold N % n_splits of training seed N / n_splits (and
        /// whose split --split means).
        #[arg(long, default_value_t = 0)]
        fold: usize,
        /// Raw files to predict on (each with the camera its file carries).
        #[arg(long, num_args = 1.., required_unless_present = "split", conflicts_with = "split")]
        input: Vec<PathBuf>,
        /// The data set's samples to predict on, with their truth: the fold's train or validation part, or all.
        #[arg(long, value_enum)]
        split: Option<l2l_host::predict::SplitChoice>,
        /// .csv or .json.
        #[arg(long)]
        output: PathBuf,
        /// Replace an existing output (and its masks folder).
        #[arg(long)]
        force: bool,
    },
    /// Process raw files through several pipelines, one output folder per pipeline (resumable).
    #[command(
        after_help = "Example: the 12 published pipelines, as float32 arrays:\n  l2l-host export --pipelines configs/pipelines/[bm]*.toml --input raws/ --output processed/ --format npy"
    )]
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
        /// A config whose [task_model] to time: one training step (forward, loss, backward, Adam) —
        /// cross-entropy for a classifier, Dice on random masks for a segmentation network.
        #[arg(long)]
        task_model: Option<PathBuf>,
        /// Classes of a classifier's head (a segmentation network predicts one mask).
        #[arg(long, default_value_t = 9)]
        classes: usize,
        /// Image side in pixels.
        #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(i64).range(2..=65536))]
        size: i64,
        /// Images per batch.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(i64).range(1..=4096))]
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
    /// The environment that builds an out-of-tree plugin against this host's libtorch, as shell
    /// exports: `eval "$(l2l-host plugin-env)" && cargo build --release` in the plugin's folder.
    PluginEnv,
    /// A completion script for SHELL on stdout: `l2l-host completions bash > ~/.local/share/bash-completion/completions/l2l-host`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// The manual page (roff) on stdout: `l2l-host man > l2l-host.1 && man ./l2l-host.1`.
    Man,
    /// The config's dataset: describe it, measure its loader, or write it out in a published layout.
    #[command(subcommand)]
    Dataset(DatasetCommand),
    /// Split a drift-synthesis experiment into a grid of jobs and run them here or on Slurm.
    #[command(subcommand)]
    Sweep(SweepCommand),
    /// The pipeline workbench in the browser: pick a raw, swap stages, move parameters, compare two
    /// pipelines and a trained model's answers under both.
    #[command(
        after_help = "Examples:\n  l2l-host serve\n  l2l-host serve configs/pipelines/menon2007_unsharp_masking_median_denoising.toml --checkpoint runs/cells-1\n\nIt binds 127.0.0.1 (this machine only) unless --bind says otherwise."
    )]
    Serve {
        /// A config whose pipeline the page starts with (and whose data set it offers).
        config: Option<PathBuf>,
        /// A training run directory: its model (fold 0) answers under both pipelines.
        #[arg(long, value_name = "RUN_DIR")]
        checkpoint: Option<PathBuf>,
        /// Port (0: any free one; the URL is printed).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Address to listen on (beyond loopback, a warning is printed: anyone who reaches it can use the workbench).
        #[arg(long, default_value = "127.0.0.1")]
        bind: std::net::IpAddr,
        /// A host name the page may be reached by besides localhost and the --bind address (e.g. this machine's name).
        #[arg(long = "allow-host", value_name = "NAME")]
        allow_hosts: Vec<String>,
        /// The most pixels an uploaded raw may have; twice as many upload pixels are kept, the oldest uploads dropped first.
        #[arg(long, value_name = "PIXELS", default_value_t = l2l_host::serve::workbench::MAX_UPLOAD_PIXELS)]
        max_upload_pixels: usize,
        /// More plugin directories or files.
        #[arg(long = "plugin-dir", value_name = "DIR")]
        plugin_dirs: Vec<PathBuf>,
        /// Camera presets offered on the page (`*.toml` with [stages.*] tables).
        #[arg(long, value_name = "DIR", default_value = "configs/cameras")]
        cameras: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum SweepCommand {
    /// Expand the config's grid into a new sweep directory and run its jobs.
    #[command(
        after_help = "Examples:\n  l2l-host sweep start configs/drift-synthesis.toml --executor local\n  l2l-host sweep start configs/drift-synthesis.toml --executor slurm --no-wait"
    )]
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
pub enum DatasetCommand {
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
        layout: l2l_host::data::datasets::Layout,
        /// The folder to lay the dataset out in.
        #[arg(long)]
        output: PathBuf,
        /// Intensities in percent (the dataset's `intensity` key), comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = l2l_rawio::PUBLISHED_INTENSITIES)]
        intensities: Vec<u32>,
        /// Replace the files of an earlier layout in OUTPUT (refused without it).
        #[arg(long)]
        force: bool,
    },
    /// Download the published Raw-Microscopy and/or Raw-Drone data set from Zenodo and arrange it as
    /// the loaders read it.
    #[command(
        after_help = "The data sets of \"From Lens to Logit\" are in Zenodo record 5235536 (DOI 10.5281/zenodo.5235536).\n\
The record's file list (name, size, MD5, link) comes from Zenodo's REST API (GET API/records/ID). Each file\n\
arrives in DIR/.l2l-download/NAME.part, is continued with an HTTP range request where a transfer broke off\n\
(also on the next run), and is kept only if its MD5 is the record's. Zip archives are unpacked; the data\n\
sets' folders are found wherever they sit and moved to:\n\
  DIR/raw-microscopy/images/raw_scale{001,…,100}/*.tiff   DIR/raw-microscopy/labels/*.dat\n\
  DIR/raw-drone/images_full/raw_scale{001,…,100}/*.dng    DIR/raw-drone/masks_full/*.png\n\
An existing DIR/raw-… is never replaced. The config lines that read each data set are printed.\n\n\
Example:\n  l2l-host dataset download raw-microscopy --to data/"
    )]
    Download {
        /// raw-microscopy, raw-drone or all.
        #[arg(value_enum)]
        which: DownloadChoice,
        /// The folder the data sets are arranged in.
        #[arg(long)]
        to: PathBuf,
        /// The Zenodo record id.
        #[arg(long, default_value_t = l2l_host::download::PUBLISHED_RECORD)]
        record: u64,
        /// The API base of a server that serves the record in Zenodo's API shape (instead of Zenodo's).
        #[arg(long, value_name = "URL", default_value = l2l_host::download::ZENODO_API)]
        mirror: String,
        /// An archive may unpack to at most this many times its own size (a zip bomb is stopped there).
        #[arg(long, value_name = "RATIO", default_value_t = l2l_host::download::MAX_UNPACK_RATIO)]
        max_unpack_ratio: u64,
    },
}

/// What `dataset download` fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DownloadChoice {
    /// Raw-Microscopy (classification of leukocytes).
    RawMicroscopy,
    /// Raw-Drone (car segmentation).
    RawDrone,
    /// Both.
    All,
}

#[derive(Args)]
pub struct RunArgs {
    /// The TOML config (not with --resume: the run directory keeps its own).
    #[arg(required_unless_present = "resume")]
    pub config: Option<PathBuf>,
    /// Override a config key: `--set stages.gamma.gamma=2.4` (value in TOML syntax or a bare word).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Continue the training run in this directory from its last checkpoint.
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["config", "overrides"])]
    pub resume: Option<PathBuf>,
    /// With --resume: continue although the run's config.toml was edited since it started.
    #[arg(long, requires = "resume")]
    pub allow_config_change: bool,
}

#[derive(Args)]
pub struct ConfigArgs {
    /// The TOML config.
    pub config: PathBuf,
    /// Override a config key: `--set stages.gamma.gamma=2.4` (value in TOML syntax or a bare word).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
}

#[derive(Subcommand)]
pub enum PluginsCommand {
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
