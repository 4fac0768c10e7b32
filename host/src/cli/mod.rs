//! The command line: its shape (`args`), what every subcommand sets up (`setup`), and the dispatch —
//! each subcommand is one function in the module of its group (`jobs`, `plugins`, `dataset`, `sweep`).

mod args;
mod dataset;
mod jobs;
mod plugins;
mod setup;
mod sweep;

pub use args::{Cli, Command};
pub use l2l_host::console::init_logging;

use anyhow::Result;
use args::{DatasetCommand, PluginsCommand, SweepCommand};
use l2l_host::predict::{Inputs, PredictOptions};

/// Runs one subcommand.
pub fn execute(command: Command) -> Result<()> {
    match command {
        Command::Run(args) => jobs::run(args),
        Command::Validate(args) => jobs::validate(&args),
        Command::Process {
            config,
            input,
            output,
            png_bits,
            white_level,
            until,
            state,
            force,
        } => {
            jobs::refuse_overwriting(&input, &output, force)?;
            jobs::process(
                &config,
                &input,
                &output,
                png_bits,
                white_level,
                until.as_deref(),
                state.as_deref(),
            )
        }
        Command::Predict {
            config,
            checkpoint,
            fold,
            input,
            split,
            output,
            force,
        } => {
            let inputs = match split {
                Some(split) => Inputs::Split(split),
                None => Inputs::Files(input),
            };
            jobs::predict(
                &config,
                &PredictOptions {
                    checkpoint,
                    fold,
                    inputs,
                    output,
                    force,
                },
            )
        }
        Command::Export {
            pipelines,
            input,
            output,
            format,
            white_level,
            device,
        } => jobs::export(&pipelines, &input, &output, format, white_level, &device),
        Command::Bench {
            pipelines,
            task_model,
            classes,
            size,
            batch,
            iterations,
            device,
            json,
        } => jobs::bench(
            &pipelines,
            task_model.as_deref(),
            classes,
            size,
            batch,
            iterations,
            &device,
            json.as_deref(),
        ),
        Command::Plugins(PluginsCommand::List { plugin_dirs }) => plugins::list(&plugin_dirs),
        Command::Plugins(PluginsCommand::Lock { plugin_dirs, output }) => plugins::lock(&plugin_dirs, &output),
        Command::Plugins(PluginsCommand::Inspect { name, plugin_dirs }) => plugins::inspect(&plugin_dirs, &name),
        Command::PluginEnv => plugins::build_env(),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "l2l-host",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Man => {
            Ok(clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut std::io::stdout())?)
        }
        Command::Dataset(DatasetCommand::Info(args)) => dataset::info(&args),
        Command::Dataset(DatasetCommand::Bench {
            config,
            batch_size,
            workers,
            epochs,
        }) => dataset::bench(&config, batch_size, workers, epochs),
        Command::Dataset(DatasetCommand::Write {
            config,
            layout,
            output,
            intensities,
            force,
        }) => dataset::write(&config, layout, &output, &intensities, force),
        Command::Dataset(DatasetCommand::Download {
            which,
            to,
            record,
            mirror,
            max_unpack_ratio,
        }) => dataset::download(which, &to, record, &mirror, max_unpack_ratio),
        Command::Sweep(SweepCommand::Start {
            config,
            executor,
            no_wait,
        }) => sweep::start(&config, executor, no_wait),
        Command::Sweep(SweepCommand::Run { dir, executor, no_wait }) => sweep::run(&dir, executor, no_wait),
        Command::Sweep(SweepCommand::Collect { dir }) => sweep::collect(&dir),
        Command::Serve {
            config,
            checkpoint,
            port,
            bind,
            allow_hosts,
            max_upload_pixels,
            plugin_dirs,
            cameras,
        } => {
            l2l_host::serve::serve(l2l_host::serve::setup::ServeOptions {
                config,
                checkpoint,
                bind,
                port,
                allowed_hosts: allow_hosts,
                max_upload_pixels,
                plugin_dirs,
                // the default folder is optional: a checkout has it, an installed binary may not
                cameras: cameras.is_dir().then_some(cameras),
            })
        }
    }
}
