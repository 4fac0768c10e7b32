//! What every subcommand that reads a config sets up first: the config planned (its job parsed and
//! its pipeline files read, once) with its plugins.

use super::args::ConfigArgs;
use anyhow::Result;
use l2l_host::config::{self, LoadedConfig};
use l2l_host::plugins::Registry;
use l2l_host::run::JobPlan;

/// The config of `args` planned, libtorch's thread count set, and the plugins it can use.
pub fn load_plan(args: &ConfigArgs) -> Result<(JobPlan, Registry)> {
    let plan = JobPlan::new(config::load(&args.config, &args.overrides)?)?;
    let registry = registry_for(&plan);
    Ok((plan, registry))
}

/// [`load_plan`] for the subcommands that use the config but not its job.
pub fn load_config(args: &ConfigArgs) -> Result<(LoadedConfig, Registry)> {
    let (plan, registry) = load_plan(args)?;
    Ok((plan.loaded, registry))
}

/// libtorch's thread count as the config says, and the plugins its `plugin_dirs` (and those of the
/// pipeline files its job names) add.
pub fn registry_for(plan: &JobPlan) -> Registry {
    if let Some(threads) = plan.loaded.config.threads {
        tch::set_num_threads(threads);
    }
    Registry::discover(&plan.plugin_dirs)
}
