//! Python values to the host's types and back: config values (to TOML, as a config file would hold
//! them) and camera metadata (a dict per sample, with the keys of `RawMetadata`).

use crate::L2LError;
use l2l_plugin_api::{CfaPattern, RawMetadata};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// A Python value as the TOML value a config file would hold (`at` names the key in errors): bool,
/// int, float, str (or a path), list/tuple, dict.
pub fn toml_value(value: &Bound<'_, PyAny>, at: &str) -> PyResult<toml::Value> {
    if value.is_instance_of::<PyBool>() {
        return Ok(toml::Value::Boolean(value.extract()?));
    }
    if value.is_instance_of::<PyInt>() {
        return Ok(toml::Value::Integer(value.extract()?));
    }
    if value.is_instance_of::<PyFloat>() {
        return Ok(toml::Value::Float(value.extract()?));
    }
    if value.is_instance_of::<PyString>() {
        return Ok(toml::Value::String(value.extract()?));
    }
    if value.hasattr("__fspath__")? {
        return Ok(toml::Value::String(value.call_method0("__fspath__")?.extract()?));
    }
    if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
        let items = value.try_iter()?;
        return items
            .enumerate()
            .map(|(i, item)| toml_value(&item?, &format!("{at}[{i}]")))
            .collect::<PyResult<Vec<_>>>()
            .map(toml::Value::Array);
    }
    if let Ok(dict) = value.downcast::<PyDict>() {
        return toml_table(dict, at).map(toml::Value::Table);
    }
    Err(L2LError::new_err(format!(
        "config key `{at}`: cannot hold a Python {}; expected a bool, int, float, str, list or dict",
        value.get_type().name()?
    )))
}

/// A dict with string keys as a TOML table (`at` prefixes the keys in errors).
pub fn toml_table(dict: &Bound<'_, PyDict>, at: &str) -> PyResult<toml::Table> {
    let mut table = toml::Table::new();
    for (key, value) in dict.iter() {
        let key: String = key
            .extract()
            .map_err(|_| L2LError::new_err(format!("config key `{at}`: keys must be strings, found {key}")))?;
        let path = if at.is_empty() {
            key.clone()
        } else {
            format!("{at}.{key}")
        };
        table.insert(key, toml_value(&value, &path)?);
    }
    Ok(table)
}

/// `key=value` assignments, as `--set` takes them, from Python keyword overrides.
pub fn override_assignments(overrides: &Bound<'_, PyDict>) -> PyResult<Vec<String>> {
    overrides
        .iter()
        .map(|(key, value)| {
            let key: String = key.extract()?;
            Ok(format!("{key}={}", toml_value(&value, &key)?))
        })
        .collect()
}

const CAMERA_KEYS: &str = "cfa_pattern, black_level, white_balance, colour_matrix, intensity";

/// A sample's camera metadata as a dict.
pub fn camera_dict<'py>(py: Python<'py>, camera: &RawMetadata) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("cfa_pattern", format!("{:?}", camera.cfa_pattern).to_uppercase())?;
    dict.set_item("black_level", camera.black_level.to_vec())?;
    dict.set_item("white_balance", camera.white_balance.to_vec())?;
    dict.set_item("colour_matrix", camera.colour_matrix.to_vec())?;
    dict.set_item("intensity", camera.intensity)?;
    Ok(dict)
}

fn floats<const N: usize>(dict: &Bound<'_, PyDict>, key: &str, at: &str) -> PyResult<[f32; N]> {
    let value = dict
        .get_item(key)?
        .ok_or_else(|| L2LError::new_err(format!("{at}: missing `{key}` (a camera has {CAMERA_KEYS})")))?;
    let values: Vec<f32> = value
        .extract()
        .map_err(|_| L2LError::new_err(format!("{at}.{key}: expected {N} numbers, found {value}")))?;
    values
        .try_into()
        .map_err(|v: Vec<f32>| L2LError::new_err(format!("{at}.{key}: expected {N} numbers, found {}", v.len())))
}

/// A camera dict (the keys [`camera_dict`] writes) as metadata; `at` names it in errors.
pub fn camera_from_dict(dict: &Bound<'_, PyDict>, at: &str) -> PyResult<RawMetadata> {
    for key in dict.keys() {
        let key: String = key.extract()?;
        if !CAMERA_KEYS.split(", ").any(|k| k == key) {
            return Err(L2LError::new_err(format!(
                "{at}: unknown key `{key}`; a camera has {CAMERA_KEYS}"
            )));
        }
    }
    let pattern: String = dict
        .get_item("cfa_pattern")?
        .ok_or_else(|| L2LError::new_err(format!("{at}: missing `cfa_pattern` (a camera has {CAMERA_KEYS})")))?
        .extract()?;
    let cfa_pattern = CfaPattern::parse(&pattern).ok_or_else(|| {
        L2LError::new_err(format!(
            "{at}.cfa_pattern: expected RGGB, BGGR, GRBG or GBRG, found `{pattern}`"
        ))
    })?;
    let intensity: f32 = match dict.get_item("intensity")? {
        Some(value) => value.extract()?,
        None => 100.0,
    };
    Ok(RawMetadata {
        cfa_pattern,
        black_level: floats(dict, "black_level", at)?,
        white_balance: floats(dict, "white_balance", at)?,
        colour_matrix: floats(dict, "colour_matrix", at)?,
        intensity,
    })
}
