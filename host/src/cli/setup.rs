//! What every subcommand that reads a config sets up first: the config with its plugins.

use super::args::ConfigArgs;
use anyhow::Result;
use l2l_host::config::{self, LoadedConfig};
use l2l_host::plugins::Registry;

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
