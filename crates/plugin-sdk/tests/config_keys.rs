//! The derive and `parse_config` together, as a plugin uses them: keys in place (flattened groups
//! included), declared choices in serde's spelling, unknown keys, ranges and words refused naming the key.

use l2l_plugin_sdk::{parse_config, CfaKeys, CfaPattern, Choices, ComponentConfig};
use serde::{Deserialize, Serialize};

/// A key's words, spelled as serde spells them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Choices)]
#[serde(rename_all = "snake_case")]
enum Shape {
    Round,
    AerialCar,
    #[serde(rename = "flat-top")]
    FlatTop,
}

#[derive(Debug, Clone, Serialize, Deserialize, ComponentConfig)]
#[serde(default)]
struct Probe {
    /// A number in [0, 1].
    #[config(min = 0.0, max = 1.0)]
    weight: f64,
    /// The mosaic's layout.
    #[serde(flatten)]
    cfa: CfaKeys,
    /// One of the shapes.
    #[config(choices)]
    shape: Shape,
}

impl Default for Probe {
    fn default() -> Self {
        Probe {
            weight: 0.5,
            cfa: CfaKeys::default(),
            shape: Shape::Round,
        }
    }
}

#[test]
fn choices_follow_serdes_spelling() {
    assert_eq!(Shape::CHOICES, ["round", "aerial_car", "flat-top"]);
    assert_eq!(CfaPattern::CHOICES, ["RGGB", "BGGR", "GRBG", "GBRG"]);
    let probe: Probe = parse_config("shape = \"aerial_car\"").unwrap();
    assert_eq!(probe.shape, Shape::AerialCar);
}

#[test]
fn flattened_keys_are_keys_in_place_and_parse() {
    let names: Vec<&str> = Probe::keys().iter().map(|k| k.name).collect();
    assert_eq!(names, ["weight", "cfa_pattern", "cfa_from_metadata", "shape"]);
    let probe: Probe = parse_config("cfa_pattern = \"GBRG\"\ncfa_from_metadata = true\nshape = \"flat-top\"").unwrap();
    assert_eq!(probe.cfa.cfa_pattern, CfaPattern::Gbrg);
    assert!(probe.cfa.cfa_from_metadata);
    assert_eq!(probe.shape, Shape::FlatTop);
    assert_eq!(probe.weight, 0.5);
    // the defaults are written flattened too (what `plugins inspect` shows)
    let defaults = toml::Table::try_from(Probe::default()).unwrap();
    assert_eq!(defaults["cfa_pattern"].as_str(), Some("RGGB"));
    assert_eq!(Probe::keys()[1].choices.len(), 4);
}

#[test]
fn unknown_keys_ranges_and_words_are_refused_naming_the_key() {
    let message = |text: &str| parse_config::<Probe>(text).unwrap_err().to_string();
    assert_eq!(
        message("cfa_patern = \"RGGB\""),
        "unknown field `cfa_patern`, expected one of `weight`, `cfa_pattern`, `cfa_from_metadata`, `shape`"
    );
    assert_eq!(message("weight = 1.5"), "weight: expected values in [0, 1], found 1.5");
    assert_eq!(message("weight = nan"), "weight: expected values in [0, 1], found NaN");
    assert_eq!(
        message("shape = \"square\""),
        "shape: expected one of `round`, `aerial_car`, `flat-top`, found `square`"
    );
    assert_eq!(
        message("cfa_pattern = \"RGBG\""),
        "cfa_pattern: expected one of `RGGB`, `BGGR`, `GRBG`, `GBRG`, found `RGBG`"
    );
}
