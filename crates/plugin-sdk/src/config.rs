//! A component's config: its keys as the derive declares them, parsed from the TOML table the host
//! sends; unknown keys, ranges and choices checked once here, for every path that builds a
//! component. Shared groups of keys ([`CfaKeys`]) are flattened into the configs that take them.

use crate::error::{PluginError, PluginResult};
use l2l_plugin_api::ffi::ConfigKeyInfo;
use serde::{de::DeserializeOwned, Serialize};

/// One config key of a component: its name, what it means and whether a config must set it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConfigKey {
    /// The key in the component's TOML table.
    pub name: &'static str,
    /// What it means (the field's doc comment).
    pub doc: &'static str,
    /// Whether a config must set it.
    pub required: bool,
    /// The smallest value the key's numbers may take (and, for a learnable parameter of the same
    /// name, what forensics and training keep it at or above).
    pub min: Option<f64>,
    /// The largest value the key's numbers may take (likewise for the parameter).
    pub max: Option<f64>,
    /// The words a text key takes (`#[config(choices)]` on a key whose type derives `Choices`);
    /// empty for free text and numbers.
    pub choices: &'static [&'static str],
}

/// A component's config: a serde struct (use `#[serde(default)]`) whose `Default` is the
/// documented default. Derive it (`#[derive(ComponentConfig)]`): the keys then come from the fields
/// and their doc comments, so the documented keys are the accepted ones — [`parse_config`] refuses
/// any other.
pub trait ComponentConfig: DeserializeOwned + Serialize + Default {
    /// Every key, in the order `plugins inspect` shows them.
    fn keys() -> Vec<ConfigKey>;
}

/// Parses a component's config from TOML text: keys it does not declare, numbers outside a key's
/// range and words outside its choices are refused naming the key, the rest with serde's message.
pub fn parse_config<C: ComponentConfig>(text: &str) -> PluginResult<C> {
    let table: toml::Table = toml::from_str(text).map_err(|e| PluginError::Config(e.message().trim().to_string()))?;
    let keys = C::keys();
    for (name, value) in &table {
        let key = keys.iter().find(|k| k.name == name).ok_or_else(|| {
            let names: Vec<String> = keys.iter().map(|k| format!("`{}`", k.name)).collect();
            PluginError::Config(format!("unknown field `{name}`, expected one of {}", names.join(", ")))
        })?;
        check_range(key, value)?;
        check_choice(key, value)?;
    }
    toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| PluginError::Config(e.message().trim().to_string()))
}

/// Every number in `value` (a number, or arrays of them) lies in the key's declared range.
fn check_range(key: &ConfigKey, value: &toml::Value) -> PluginResult<()> {
    let number = match value {
        toml::Value::Float(x) => *x,
        toml::Value::Integer(i) => *i as f64,
        toml::Value::Array(items) => return items.iter().try_for_each(|item| check_range(key, item)),
        _ => return Ok(()),
    };
    let (min, max) = (key.min.unwrap_or(f64::NEG_INFINITY), key.max.unwrap_or(f64::INFINITY));
    if (number >= min && number <= max) || (key.min.is_none() && key.max.is_none()) {
        return Ok(());
    }
    Err(PluginError::Config(format!(
        "{}: expected values in [{min}, {max}], found {number}",
        key.name
    )))
}

/// A text key with declared choices holds one of them.
fn check_choice(key: &ConfigKey, value: &toml::Value) -> PluginResult<()> {
    match value {
        toml::Value::String(word) if !key.choices.is_empty() && !key.choices.contains(&word.as_str()) => {
            let words: Vec<String> = key.choices.iter().map(|w| format!("`{w}`")).collect();
            Err(PluginError::Config(format!(
                "{}: expected one of {}, found `{word}`",
                key.name,
                words.join(", ")
            )))
        }
        _ => Ok(()),
    }
}

/// The keys of `C` as they cross the ABI, with their defaults.
pub(crate) fn describe_config<C: ComponentConfig>() -> Vec<ConfigKeyInfo> {
    let defaults = toml::Table::try_from(C::default()).unwrap_or_default();
    C::keys()
        .iter()
        .map(|key| ConfigKeyInfo {
            name: key.name.into(),
            default: defaults.get(key.name).map(|v| v.to_string()).unwrap_or_default().into(),
            doc: key.doc.into(),
            required: key.required,
            min: key.min.unwrap_or(f64::NEG_INFINITY),
            max: key.max.unwrap_or(f64::INFINITY),
            choices: key.choices.iter().map(|w| (*w).into()).collect(),
        })
        .collect()
}
