//! Component specs: which plugin component a config table names (`kind`, optional `plugin`) and the
//! component's own keys, kept as a table until the plugin boundary turns them into the text the ABI
//! carries. A pipeline is the ordered list of its stages' specs (a pipeline file is read by
//! `PipelineSpec::load`, beside the loader).

use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeMap;

/// One stage of a pipeline, as its plugin will receive it.
#[derive(Debug, Clone, PartialEq)]
pub struct StageSpec {
    /// The stage's name in `pipeline`.
    pub name: String,
    /// The component (`kind`).
    pub kind: String,
    /// The plugin to take it from, when given.
    pub plugin: Option<String>,
    /// The component's own keys.
    pub config: toml::Table,
}

/// The longest stage name: names become file names (`stages/01-NAME.png`) and state keys.
pub const MAX_STAGE_NAME: usize = 64;

/// Refuses a stage name that is not a plain identifier (ASCII letters, digits, `_`, `-`; at most
/// [`MAX_STAGE_NAME`] characters): a name is written into file names, so `../x` or `a/b` must never
/// reach one.
pub fn check_stage_name(name: &str) -> Result<()> {
    let plain = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if name.is_empty() || name.len() > MAX_STAGE_NAME || !plain || name.starts_with('-') {
        bail!(
            "stage name `{}`: expected a plain name of 1 to {MAX_STAGE_NAME} ASCII letters, digits, `_` or `-` (not starting with `-`), e.g. `demosaic`",
            name.escape_debug()
        );
    }
    Ok(())
}

/// A dataset or task model: which component, and its config as its plugin will receive it.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentSpec {
    /// The component (`kind`).
    pub kind: String,
    /// The plugin to take it from, when given.
    pub plugin: Option<String>,
    /// The component's own keys.
    pub config: toml::Table,
}

impl ComponentSpec {
    /// Splits a component table (`[dataset]`, `[task_model]`) at the config key `path`; `example` is
    /// a kind to show when `kind` is missing.
    pub fn from_table(path: &str, table: &toml::Table, example: &str) -> Result<ComponentSpec> {
        let mut config = table.clone();
        let kind = match config.remove("kind") {
            Some(toml::Value::String(kind)) => kind,
            Some(other) => bail!("config key `{path}.kind`: expected a component name (string), found {other}"),
            None => bail!("config key `{path}.kind`: missing; expected the component, e.g. kind = \"{example}\""),
        };
        let plugin = match config.remove("plugin") {
            Some(toml::Value::String(plugin)) => Some(plugin),
            Some(other) => bail!("config key `{path}.plugin`: expected a plugin name (string), found {other}"),
            None => None,
        };
        Ok(ComponentSpec { kind, plugin, config })
    }

    /// The table a config holds for it (`kind`, `plugin`, the component's keys), for records.
    pub fn to_table(&self) -> toml::Table {
        let mut table = toml::Table::new();
        table.insert("kind".into(), toml::Value::String(self.kind.clone()));
        if let Some(plugin) = &self.plugin {
            table.insert("plugin".into(), toml::Value::String(plugin.clone()));
        }
        table.extend(self.config.clone());
        table
    }
}

/// A camera preset (`configs/cameras/*.toml`): per stage name, the keys that describe one camera
/// (black level, CFA, white balance, colour matrix), set over every pipeline a config runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CameraPreset {
    /// Stage name → its keys.
    pub stages: BTreeMap<String, toml::Table>,
}

impl CameraPreset {
    /// The preset of a file's `[stages.NAME]` tables; anything else, or a stage's `kind` / `plugin`
    /// (a preset describes a camera, not which components run), is refused.
    pub fn from_table(table: &toml::Table) -> Result<CameraPreset> {
        if let Some(other) = table.keys().find(|k| *k != "stages") {
            bail!("key `{other}`: a camera preset holds only `[stages.NAME]` tables of camera keys");
        }
        let mut stages = BTreeMap::new();
        for (name, keys) in table
            .get("stages")
            .and_then(toml::Value::as_table)
            .into_iter()
            .flatten()
        {
            let keys = keys
                .as_table()
                .ok_or_else(|| anyhow!("key `stages.{name}`: expected a table of the stage's keys"))?;
            if let Some(key) = ["kind", "plugin"].into_iter().find(|k| keys.contains_key(*k)) {
                bail!("key `stages.{name}.{key}`: a camera preset sets camera keys, not which component a stage is");
            }
            stages.insert(name.clone(), keys.clone());
        }
        Ok(CameraPreset { stages })
    }
}

/// A processing pipeline: its stages, in order, and the plugin directories its file names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PipelineSpec {
    /// The stages.
    pub stages: Vec<StageSpec>,
    /// The file's `plugin_dirs`, resolved (empty for a pipeline that is part of a larger config).
    pub plugin_dirs: Vec<std::path::PathBuf>,
}

impl PipelineSpec {
    /// The pipeline of a config's `pipeline` (stage names) and `stages` (one table each): every stage
    /// listed has a table with a `kind`, every table is listed.
    pub fn from_tables(pipeline: &[String], stages: &toml::Table) -> Result<PipelineSpec> {
        for (index, name) in pipeline.iter().enumerate() {
            check_stage_name(name).context("config key `pipeline`")?;
            if pipeline[..index].contains(name) {
                bail!("config key `pipeline`: stage `{name}` is listed twice (each stage has one name and one table)");
            }
        }
        if let Some(unused) = stages.keys().find(|k| !pipeline.contains(k)) {
            bail!(
                "config key `stages.{unused}`: stage is not listed in `pipeline` (pipeline: [{}])",
                pipeline.join(", ")
            );
        }
        let stages = pipeline
            .iter()
            .map(|name| {
                let table = stages
                    .get(name)
                    .and_then(toml::Value::as_table)
                    .ok_or_else(|| anyhow!("config key `pipeline`: stage `{name}` has no table `[stages.{name}]`"))?;
                let ComponentSpec { kind, plugin, config } =
                    ComponentSpec::from_table(&format!("stages.{name}"), table, "gamma")?;
                Ok(StageSpec {
                    name: name.clone(),
                    kind,
                    plugin,
                    config,
                })
            })
            .collect::<Result<_>>()?;
        Ok(PipelineSpec {
            stages,
            plugin_dirs: Vec::new(),
        })
    }

    /// The pipeline with a camera preset's settings (`[stages.NAME]` tables of keys) set over the
    /// stages of those names; a preset's stage this pipeline lacks is left out (a pipeline without a
    /// colour matrix still takes the preset's black level).
    pub fn with_camera(mut self, preset: &CameraPreset) -> PipelineSpec {
        for stage in &mut self.stages {
            if let Some(keys) = preset.stages.get(&stage.name) {
                stage.config.extend(keys.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        self
    }

    /// The pipeline up to and including stage `last` (what `process --until` runs).
    pub fn until(&self, last: &str) -> Result<PipelineSpec> {
        let end = self.stages.iter().position(|s| s.name == last).ok_or_else(|| {
            anyhow!(
                "--until `{last}`: the pipeline has no stage of that name (stages: {})",
                self.names().join(", ")
            )
        })?;
        Ok(PipelineSpec {
            stages: self.stages[..=end].to_vec(),
            plugin_dirs: self.plugin_dirs.clone(),
        })
    }

    /// The stage names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.stages.iter().map(|s| s.name.as_str()).collect()
    }

    /// The `pipeline` and `stages` keys a config holds for it, for records.
    pub fn to_tables(&self) -> (toml::Value, toml::Table) {
        let names = self
            .stages
            .iter()
            .map(|s| toml::Value::String(s.name.clone()))
            .collect();
        let mut stages = toml::Table::new();
        for stage in &self.stages {
            let component = ComponentSpec {
                kind: stage.kind.clone(),
                plugin: stage.plugin.clone(),
                config: stage.config.clone(),
            };
            stages.insert(stage.name.clone(), toml::Value::Table(component.to_table()));
        }
        (toml::Value::Array(names), stages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(text: &str) -> Result<PipelineSpec> {
        let table: toml::Table = text.parse().unwrap();
        let names: Vec<String> = table["pipeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        PipelineSpec::from_tables(
            &names,
            table
                .get("stages")
                .and_then(toml::Value::as_table)
                .unwrap_or(&toml::Table::new()),
        )
    }

    #[test]
    fn stages_must_be_listed_and_have_a_kind() {
        let err = pipeline("pipeline = [\"a\"]\n[stages.a]\nkind = \"gamma\"\n[stages.b]\nkind = \"clip\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`stages.b`") && err.contains("not listed"), "{err}");
        let err = pipeline("pipeline = [\"a\"]\n[stages.a]\ngamma = 2.0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`stages.a.kind`: missing"), "{err}");
        let spec = pipeline("pipeline = [\"a\"]\n[stages.a]\nkind = \"gamma\"\ngamma = 2.0\n").unwrap();
        assert_eq!(spec.stages[0].kind, "gamma");
        assert_eq!(
            spec.stages[0].config.get("gamma").and_then(toml::Value::as_float),
            Some(2.0)
        );
    }

    #[test]
    fn stage_names_are_plain_identifiers_listed_once() {
        for bad in ["../../../x", "a/b", "", "-a", "a b", "é"] {
            let text = format!("pipeline = [\"{bad}\"]\n[stages.\"{bad}\"]\nkind = \"gamma\"\n");
            let err = format!("{:#}", pipeline(&text).unwrap_err());
            assert!(err.contains("expected a plain name"), "{bad}: {err}");
        }
        let err = pipeline("pipeline = [\"a\", \"a\"]\n[stages.a]\nkind = \"gamma\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("listed twice"), "{err}");
        assert!(check_stage_name("denoise_2-b").is_ok());
    }

    #[test]
    fn a_pipeline_written_as_tables_reads_back_the_same() {
        let spec = pipeline("pipeline = [\"a\", \"b\"]\n[stages.a]\nkind = \"gamma\"\ngamma = 2.0\n[stages.b]\nkind = \"clip\"\nplugin = \"isp-core\"\n").unwrap();
        let (names, stages) = spec.to_tables();
        let names: Vec<String> = names
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(PipelineSpec::from_tables(&names, &stages).unwrap(), spec);
    }
}
