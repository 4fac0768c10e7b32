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
    /// For a key that takes one of a few words: the words (from the component's own error).
    pub choices: Vec<String>,
}

/// The words a string key accepts, asked of the component itself: built with a value no enum has,
/// its config parser answers "expected one of `A`, `B`" (serde's wording), or nothing for free text.
fn choices(registry: &Registry, component: &str, plugin: &str, key: &str) -> Vec<String> {
    let mut table = toml::Table::new();
    table.insert(key.into(), toml::Value::String("\u{1}".into()));
    let Err(err) = registry.build_stage(component, Some(plugin), &table, "probe") else {
        return Vec::new();
    };
    let message = err.to_string();
    let Some(expected) = message.split("expected").nth(1) else {
        return Vec::new();
    };
    expected.split('`').skip(1).step_by(2).map(str::to_string).collect()
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
                    let is_text = matches!(default, Some(toml::Value::String(_)));
                    KeyEntry {
                        name: key.name.to_string(),
                        default: default
                            .map_or(serde_json::Value::Null, |v| serde_json::to_value(v).unwrap_or_default()),
                        doc: key.doc.to_string(),
                        required: key.required,
                        min: key.min.is_finite().then_some(key.min),
                        max: key.max.is_finite().then_some(key.max),
                        choices: if is_text {
                            choices(registry, &component.name, &plugin.name, &key.name)
                        } else {
                            Vec::new()
                        },
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
