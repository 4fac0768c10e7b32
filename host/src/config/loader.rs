//! Reading config files: `include`s merged in, `--set` overrides applied, size and type checked.
//!
//! `include = ["cameras/raw-drone.toml"]` (paths relative to the including file) merges other files
//! in first, table by table, so camera presets and pipelines can be combined; the including file's
//! own keys win — except `plugin_dirs`, which every file states relative to itself and which add up
//! (an included pipeline brings its plugins along). Overrides: `--set KEY.PATH=VALUE`, VALUE in TOML syntax (`2.4`, `[1, 2]`, `"text"`);
//! a bare word that is not TOML is taken as a string (`--set stages.demosaic.kind=demosaic_bilinear`).

use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;

/// A config is a short TOML file; anything larger is not one (and an `include` of a device such as
/// `/dev/zero` would otherwise be read until memory runs out).
pub(crate) const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// The text of one config file: a regular file of at most [`MAX_CONFIG_BYTES`], UTF-8.
fn read_config_text(path: &Path) -> Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path).with_context(|| format!("reading config {}", path.display()))?;
    if !file
        .metadata()
        .with_context(|| format!("reading config {}", path.display()))?
        .is_file()
    {
        bail!("config {}: not a regular file", path.display());
    }
    let mut text = String::new();
    file.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("reading config {}", path.display()))?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        bail!(
            "config {}: larger than {} MiB; expected a short TOML file",
            path.display(),
            MAX_CONFIG_BYTES >> 20
        );
    }
    Ok(text)
}

/// How much of a file that is not TOML an error may show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    /// The file given on the command line: its offending line is shown, as the TOML parser does.
    Text,
    /// A file another file names (`include`, `camera_preset`): it may be anything readable
    /// (`/etc/shadow` as root), so only the position is shown, never the text.
    PositionOnly,
}

/// Reads one config file with its `include`s merged in (at most 8 levels deep).
pub fn read_with_includes(path: &Path, quote: Quote) -> Result<toml::Table> {
    read_nested(path, 0, quote)
}

fn read_nested(path: &Path, depth: usize, quote: Quote) -> Result<toml::Table> {
    if depth > 8 {
        bail!("config {}: includes nest more than 8 levels (a cycle?)", path.display());
    }
    let text = read_config_text(path)?;
    let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        if quote == Quote::Text {
            anyhow!("config {}: {}", path.display(), e.to_string().trim_end())
        } else {
            let line = e
                .span()
                .map(|span| text[..span.start].lines().count().max(1))
                .unwrap_or(0);
            anyhow!(
                "config {} (named by another file): not TOML at line {line}: {}",
                path.display(),
                e.message().trim()
            )
        }
    })?;
    resolve_plugin_dirs(&mut table, path)?;
    let Some(include) = table.remove("include") else {
        return Ok(table);
    };
    let files = include
        .as_array()
        .and_then(|items| items.iter().map(|i| i.as_str()).collect::<Option<Vec<_>>>())
        .ok_or_else(|| {
            anyhow!(
                "config {}: key `include`: expected a list of file names",
                path.display()
            )
        })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut merged = toml::Table::new();
    for file in files {
        merge(
            &mut merged,
            read_nested(&dir.join(file), depth + 1, Quote::PositionOnly)
                .with_context(|| format!("included from {}", path.display()))?,
        );
    }
    merge(&mut merged, table);
    Ok(merged)
}

/// Makes the file's `plugin_dirs` absolute, taken relative to the file itself, so that they mean the
/// same once merged into the including config.
fn resolve_plugin_dirs(table: &mut toml::Table, path: &Path) -> Result<()> {
    let Some(value) = table.get_mut("plugin_dirs") else {
        return Ok(());
    };
    let dirs = value.as_array_mut().ok_or_else(|| {
        anyhow!(
            "config {}: key `plugin_dirs`: expected a list of directories",
            path.display()
        )
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    for dir in dirs.iter_mut() {
        let text = dir.as_str().ok_or_else(|| {
            anyhow!(
                "config {}: key `plugin_dirs`: expected a list of directories",
                path.display()
            )
        })?;
        let resolved = std::path::absolute(base.join(text))
            .with_context(|| format!("config {}: plugin dir `{text}`", path.display()))?;
        *dir = toml::Value::String(resolved.to_string_lossy().into_owned());
    }
    Ok(())
}

/// Applies one `KEY.PATH=VALUE` override to the table.
pub fn apply_override(table: &mut toml::Table, assignment: &str) -> Result<()> {
    let (path, value_text) = assignment
        .split_once('=')
        .ok_or_else(|| anyhow!("override `{assignment}`: expected KEY.PATH=VALUE"))?;
    let keys = key_path(path.trim()).ok_or_else(|| {
        anyhow!(
            "override `{assignment}`: `{}` is not a key path (a.b.c, quoted parts as \"a.b\")",
            path.trim()
        )
    })?;
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let value = parse_override_value(value_text.trim());
    let (last, parents) = keys.split_last().expect("split of a non-empty path");
    let mut current = table;
    for (depth, key) in parents.iter().enumerate() {
        let entry = current
            .entry(key.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry
            .as_table_mut()
            .ok_or_else(|| anyhow!("override `{assignment}`: `{}` is not a table", keys[..=depth].join(".")))?;
    }
    current.insert(last.to_string(), value);
    Ok(())
}

/// The keys of a dotted TOML key path, read as TOML reads it: `stages."a.b".gamma` is three keys.
fn key_path(path: &str) -> Option<Vec<String>> {
    let mut table: toml::Table = format!("{path} = 0").parse().ok()?;
    let mut keys = Vec::new();
    loop {
        let (key, value) = table.into_iter().next()?;
        keys.push(key);
        match value {
            toml::Value::Table(inner) if inner.len() == 1 => table = inner,
            toml::Value::Integer(0) => return Some(keys),
            _ => return None,
        }
    }
}

fn parse_override_value(text: &str) -> toml::Value {
    let wrapped = format!("value = {text}");
    match wrapped.parse::<toml::Table>() {
        Ok(mut table) => table
            .remove("value")
            .unwrap_or_else(|| toml::Value::String(text.into())),
        Err(_) => toml::Value::String(text.into()),
    }
}

/// Merges `over` into `base`: tables key by key, `plugin_dirs` lists added up, anything else replaced.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base_table)), toml::Value::Table(over_table)) => merge(base_table, over_table),
            (Some(toml::Value::Array(base_dirs)), toml::Value::Array(over_dirs)) if key == "plugin_dirs" => {
                base_dirs.extend(
                    over_dirs
                        .into_iter()
                        .filter(|d| !base_dirs.contains(d))
                        .collect::<Vec<_>>(),
                );
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        text.parse().unwrap()
    }

    #[test]
    fn overrides_parse_toml_values_and_fall_back_to_strings() {
        let mut t = table("[stages.gamma]\nkind = \"gamma\"\n");
        apply_override(&mut t, "stages.gamma.gamma=2.4").unwrap();
        apply_override(&mut t, "stages.wb.gains=[2.0, 1.0, 1.5]").unwrap();
        apply_override(&mut t, "stages.demosaic.kind=demosaic_bilinear").unwrap();
        assert_eq!(t["stages"]["gamma"]["gamma"].as_float(), Some(2.4));
        assert_eq!(t["stages"]["wb"]["gains"].as_array().unwrap().len(), 3);
        assert_eq!(t["stages"]["demosaic"]["kind"].as_str(), Some("demosaic_bilinear"));
    }

    #[test]
    fn an_include_of_a_device_or_a_huge_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("c.toml");
        std::fs::write(&config, "include = [\"/dev/zero\"]\n").unwrap();
        let err = format!("{:#}", read_with_includes(&config, Quote::Text).unwrap_err());
        assert!(err.contains("/dev/zero: not a regular file"), "{err}");
        let huge = dir.path().join("huge.toml");
        std::fs::write(&huge, vec![b'#'; (MAX_CONFIG_BYTES + 1) as usize]).unwrap();
        let err = format!("{:#}", read_with_includes(&huge, Quote::Text).unwrap_err());
        assert!(err.contains("larger than 16 MiB"), "{err}");
    }

    #[test]
    fn plugin_dirs_are_relative_to_their_file_and_add_up_over_includes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("pipelines")).unwrap();
        std::fs::write(dir.path().join("pipelines/p.toml"), "plugin_dirs = [\"vendor\"]\n").unwrap();
        std::fs::write(
            dir.path().join("main.toml"),
            "include = [\"pipelines/p.toml\"]\nplugin_dirs = [\"mine\"]\n",
        )
        .unwrap();
        let table = read_with_includes(&dir.path().join("main.toml"), Quote::Text).unwrap();
        let dirs: Vec<&str> = table["plugin_dirs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap())
            .collect();
        let absolute = |p: &str| {
            std::path::absolute(dir.path().join(p))
                .unwrap()
                .to_string_lossy()
                .into_owned()
        };
        assert_eq!(dirs, [absolute("pipelines/vendor"), absolute("mine")]);
    }

    #[test]
    fn quoted_keys_in_an_override_keep_their_dots() {
        let mut t = table("");
        apply_override(&mut t, "stages.\"a.b\".gamma=2.4").unwrap();
        assert_eq!(t["stages"]["a.b"]["gamma"].as_float(), Some(2.4));
        assert!(apply_override(&mut t, "stages..gamma=1").is_err());
    }

    #[test]
    fn an_included_file_that_is_not_toml_is_named_without_its_text() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret"), "root:$6$secret-hash:19000:0:99999:7:::\n").unwrap();
        std::fs::write(dir.path().join("c.toml"), "include = [\"secret\"]\n").unwrap();
        let err = format!(
            "{:#}",
            read_with_includes(&dir.path().join("c.toml"), Quote::Text).unwrap_err()
        );
        assert!(
            err.contains("not TOML at line 1") && !err.contains("secret-hash"),
            "{err}"
        );
        // a camera preset is a file another file names, too
        std::fs::write(dir.path().join("p.toml"), "camera_preset = \"secret\"\n").unwrap();
        let err = format!(
            "{:#}",
            crate::config::load(&dir.path().join("p.toml"), &[]).unwrap_err()
        );
        assert!(
            err.contains("camera_preset") && err.contains("not TOML at line 1") && !err.contains("secret-hash"),
            "{err}"
        );
    }

    #[test]
    fn an_override_through_a_value_names_the_key() {
        let mut t = table("device = \"cpu\"\n");
        let err = apply_override(&mut t, "device.x=1").unwrap_err().to_string();
        assert!(err.contains("`device` is not a table"), "{err}");
        assert!(apply_override(&mut t, "no-equals-sign").is_err());
    }
}
