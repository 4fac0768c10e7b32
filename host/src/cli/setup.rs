//! What every subcommand sets up first: logging, and a config with its plugins.

use super::args::ConfigArgs;
use anyhow::Result;
use l2l_host::config::{self, LoadedConfig};
use l2l_host::plugins::Registry;

/// Logs to stderr: warnings by default, more with `-v`, errors only with `-q`, or the `L2L_LOG`
/// filter; colours only on a terminal and without `NO_COLOR`.
pub fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("L2L_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(colour)
        .init();
}

/// The config of `args` loaded, libtorch's thread count set, and the plugins it can use.
pub fn load_config(args: &ConfigArgs) -> Result<(LoadedConfig, Registry)> {
    let loaded = config::load(&args.config, &args.overrides)?;
    let registry = registry_for(&loaded);
    Ok((loaded, registry))
}

/// libtorch's thread count as the config says, and the plugins its `plugin_dirs` (and those of the
/// pipeline files its job names) add.
pub fn registry_for(loaded: &LoadedConfig) -> Registry {
    if let Some(threads) = loaded.config.threads {
        tch::set_num_threads(threads);
    }
    Registry::discover(&l2l_host::run::plugin_dirs(loaded))
}

