//! What the workbench page offers: every installed stage component with its documented keys (the
//! page makes its controls from them), read from the plugins themselves, so a third party's stage
//! shows up with no change to the page.

use crate::plugins::inspect::kind_word;
use crate::plugins::Registry;
use l2l_plugin_api::ffi::ComponentKind;
use serde::Serialize;

/// One stage component, as the page lists it.
#[derive(Debug, Clone, Serialize)]
pub struct StageEntry {
    /// The component (`kind` in configs).
    pub name: String,
    /// The plugin it comes from.
    pub plugin: String,
    /// One line on what it does.
    pub summary: String,
    /// What it takes and gives: `mosaic`, `rgb`, `packed` or `any`.
    pub takes: String,
    pub gives: String,
    /// Its config keys.
    pub keys: Vec<KeyEntry>,
}

/// One config key: a control on the page.
#[derive(Debug, Clone, Serialize)]
pub struct KeyEntry {
    pub name: String,
    /// The default as a JSON value (`null` when unset or required).
    pub default: serde_json::Value,
    pub doc: String,
    pub required: bool,
    /// The valid range of its numbers (`null`: unbounded).
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// For a key that takes one of a few words: the words (as the component declares them).
    pub choices: Vec<String>,
}

/// Every stage component of the registry's plugins, in search order.
pub fn stages(registry: &Registry) -> Vec<StageEntry> {
    let mut entries = Vec::new();
    for plugin in registry.plugins() {
        for component in plugin.components.iter().filter(|c| c.kind == ComponentKind::Stage) {
            let keys = component
                .config_keys
                .iter()
                .map(|key| {
                    let default: Option<toml::Value> = toml::from_str::<toml::Table>(&format!("v = {}", key.default))
                        .ok()
                        .and_then(|mut t| t.remove("v"));
                    KeyEntry {
                        name: key.name.to_string(),
                        default: default
                            .map_or(serde_json::Value::Null, |v| serde_json::to_value(v).unwrap_or_default()),
                        doc: key.doc.to_string(),
                        required: key.required,
                        min: key.min.is_finite().then_some(key.min),
                        max: key.max.is_finite().then_some(key.max),
                        choices: key.choices.iter().map(|word| word.to_string()).collect(),
                    }
                })
                .collect();
            entries.push(StageEntry {
                name: component.name.to_string(),
                plugin: plugin.name.clone(),
                summary: component.summary.to_string(),
                takes: kind_word(component.input),
                gives: kind_word(component.output),
                keys,
            });
        }
    }
    entries
}
