//! What `plugins inspect` and `plugins list` print: a component's contract (what a stage takes and
//! gives), its config keys with defaults and docs, and its learnable parameters; refused files.

use super::{Refusal, Registry};
use anyhow::{anyhow, Context, Result};
use l2l_plugin_api::ffi::{ComponentKind, ImageKind};
use std::fmt::Write as _;
use tch::Kind;

/// Every component named `name`, or every component of the plugin named `name`: kind, summary,
/// plugin, contract, config keys and (for stages) the parameters of a default-built instance.
pub fn describe_component(registry: &Registry, name: &str) -> Result<String> {
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
    let mut text = String::new();
    for (plugin, component) in matches {
        writeln!(
            text,
            "{} `{}` — {}",
            component.kind.as_str(),
            component.name,
            component.summary
        )?;
        writeln!(
            text,
            "  plugin {} {} ({})",
            plugin.name,
            plugin.version,
            plugin.file.display()
        )?;
        if component.kind == ComponentKind::Stage {
            let gives = match component.output {
                ImageKind::Any => "what it takes".to_string(),
                kind => kind.as_str().to_string(),
            };
            writeln!(text, "  takes: {}; gives: {gives}", component.input.as_str())?;
        }
        writeln!(
            text,
            "  config keys:{}",
            if component.config_keys.is_empty() { " none" } else { "" }
        )?;
        for key in component.config_keys.iter() {
            let default = match (key.required, key.default.is_empty()) {
                (true, _) => "required".to_string(),
                (false, true) => "optional, unset".to_string(),
                (false, false) => format!("default {}", key.default),
            };
            let range = match (key.min.is_finite(), key.max.is_finite()) {
                (false, false) => String::new(),
                _ => format!(" Range [{}, {}].", key.min, key.max),
            };
            let choices = if key.choices.is_empty() {
                String::new()
            } else {
                let words: Vec<&str> = key.choices.iter().map(|word| word.as_str()).collect();
                format!(" One of: {}.", words.join(", "))
            };
            writeln!(text, "    {:<14} {:<28} {}{range}{choices}", key.name, default, key.doc)?;
        }
        if component.kind == ComponentKind::Stage {
            let stage = registry
                .build_stage(
                    &component.name,
                    Some(&plugin.name),
                    &toml::Table::new(),
                    &format!("default `{}`", component.name),
                )
                .context("building the stage with its defaults")?;
            let parameters = stage.parameters()?;
            writeln!(
                text,
                "  learnable parameters:{}",
                if parameters.is_empty() { " none" } else { "" }
            )?;
            for p in parameters {
                let values: Vec<f64> = Vec::<f64>::try_from(p.tensor.f_to_kind(Kind::Double)?.f_flatten(0, -1)?)?;
                let shown = if values.len() <= 9 {
                    format!("{values:?}")
                } else {
                    format!("{} values", values.len())
                };
                writeln!(
                    text,
                    "    {:<14} shape {:?}, trainable {}, default {shown}",
                    p.name,
                    p.tensor.size(),
                    p.trainable
                )?;
            }
        }
        writeln!(text)?;
    }
    Ok(text)
}

/// What a stage takes or gives as one word (`mosaic`, `rgb`, `packed`, `any`): for programs (the
/// workbench's page, the Python package), where `ImageKind::as_str` is for people.
pub fn kind_word(kind: ImageKind) -> String {
    format!("{kind:?}").to_lowercase()
}

/// Renders a refusal list for people: one line per file.
pub fn describe_refusals(refused: &[Refusal]) -> String {
    refused
        .iter()
        .map(|r| format!("refused {}: {}", r.file.display(), r.reason))
        .collect::<Vec<_>>()
        .join("\n")
}
