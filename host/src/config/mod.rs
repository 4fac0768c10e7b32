//! Configs: the loader (a TOML file with its includes and `--set` overrides, key-path errors) and the
//! top-level shape. Each job kind parses its own table ([`parse_table`]), so this module knows the
//! keys it owns and nothing of what jobs do.
//!
//! Shape of a config (every key is checked; unknown keys are errors):
//! ```toml
//! plugin_dirs = ["my-plugins"]      # searched before L2L_PLUGIN_PATH and the default directory
//! device = "auto"                   # auto | cpu | cuda | cuda:N
//! threads = 2                       # CPU threads for libtorch (default: libtorch's choice)
//! camera_preset = "cameras/raw-microscopy.toml"   # its [stages.NAME] keys set over every pipeline run
//! pipeline = ["black_level", "demosaic", "gamma"]   # stage names, in order
//!
//! [stages.demosaic]                 # one table per stage name
//! kind = "demosaic_bilinear"        # the component; `plugin = "..."` picks a plugin if several offer it
//! cfa_pattern = "RGGB"              # everything else is the component's own config
//!
//! [dataset]                         # the data (see `l2l-host plugins inspect synthetic`)
//! kind = "synthetic"                # a dataset component; `root`/`cache_dir` paths are relative to this file
//!
//! [input]                           # what a `pipeline` job processes (`run::pipeline_job`)
//! [job]                             # what `run` does (`run::Job`)
//! [sweep]                           # how `l2l-host sweep` splits the job (`sweep::SweepConfig`)
//! ```
//! Paths inside configs are relative to the top-level file.

mod components;
mod loaded;
mod loader;

pub use components::{check_stage_name, CameraPreset, ComponentSpec, PipelineSpec, StageSpec};
pub use loaded::{
    load, load_run, parse_table, Config, LoadedConfig, DATASET_PATH_KEYS, MAX_THREADS, TASK_MODEL_PATH_KEYS,
};
pub use loader::{apply_override, read_with_includes, Quote};
