//! Reference cases for plugin tests: inputs and the outputs a reference implementation computed for
//! them (written by `tests/fixtures/make_reference_fixtures.py` from the libraries the published
//! pipelines used), read from a plugin's `tests/fixtures/reference.json`.

use serde::Deserialize;
use tch::{Device, Kind, Tensor};

/// One input with its reference output.
#[derive(Debug, Deserialize)]
pub struct ReferenceCase {
    /// CFA pattern, for demosaicing cases.
    #[serde(default)]
    pub pattern: Option<String>,
    /// Menon's refining step, where the case sets it.
    #[serde(default)]
    pub refine: Option<bool>,
    /// Stage config keys of the case.
    #[serde(default)]
    pub config: serde_json::Map<String, serde_json::Value>,
    /// Height and width.
    pub shape: [i64; 2],
    /// Mosaic (H×W) or image (3×H×W), row-major.
    pub input: Vec<f64>,
    /// Reference output, 3×H×W.
    pub output: Vec<f64>,
}

/// Parses a fixture file's cases.
pub fn reference_cases(json: &str) -> Vec<ReferenceCase> {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("reference fixture does not parse: {e}"))
}

impl ReferenceCase {
    /// The input as a float64 batch of one: `[1, 1, H, W]` or `[1, 3, H, W]`.
    pub fn input(&self) -> Tensor {
        let [h, w] = self.shape;
        let channels = self.input.len() as i64 / (h * w);
        Tensor::from_slice(&self.input).view([1, channels, h, w])
    }

    /// The reference output `[1, 3, H, W]`.
    pub fn expected(&self) -> Tensor {
        let [h, w] = self.shape;
        Tensor::from_slice(&self.output).view([1, 3, h, w])
    }

    /// The stage config of this case, as TOML.
    pub fn config_toml(&self) -> String {
        let mut lines: Vec<String> = self.config.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        if let Some(pattern) = &self.pattern {
            lines.push(format!("cfa_pattern = \"{pattern}\""));
        }
        if let Some(refine) = self.refine {
            lines.push(format!("refine = {refine}"));
        }
        lines.join("\n")
    }
}

/// Largest absolute difference of two `[.., H, W]` tensors, `border` pixels on each side excluded.
pub fn max_difference(a: &Tensor, b: &Tensor, border: i64) -> f64 {
    let size = b.size();
    let (h, w) = (size[size.len() - 2], size[size.len() - 1]);
    let crop = |t: &Tensor| {
        t.narrow(-2, border, h - 2 * border)
            .narrow(-1, border, w - 2 * border)
            .to_kind(Kind::Double)
            .to_device(Device::Cpu)
    };
    (crop(a) - crop(b)).abs().max().double_value(&[])
}

/// Builds `S` from each case's config, runs it in float64 and asserts that its output is within
/// `tolerance` of the reference everywhere but `border` pixels at each side.
pub fn assert_matches_reference<S: l2l_plugin_sdk::BuildStage>(json: &str, border: i64, tolerance: f64) {
    let cases = reference_cases(json);
    assert!(!cases.is_empty(), "no reference cases");
    for case in cases {
        let config = case.config_toml();
        let mut stage = l2l_plugin_sdk::parse_config(&config)
            .and_then(S::build)
            .unwrap_or_else(|e| panic!("`{config}`: {e}"));
        l2l_plugin_sdk::Module::to(&mut stage, Device::Cpu, Kind::Double).unwrap();
        let out =
            l2l_plugin_sdk::Module::forward(&mut stage, &case.input()).unwrap_or_else(|e| panic!("`{config}`: {e}"));
        let error = max_difference(&out, &case.expected(), border);
        assert!(
            error < tolerance,
            "`{config}` {:?}: max difference {error} (tolerance {tolerance})",
            case.shape
        );
    }
}

/// Asserts that `S` built from `config` passes the float64 gradient check on `input`.
pub fn assert_differentiable<S: l2l_plugin_sdk::BuildStage>(config: &str, input: &Tensor) {
    let mut stage = l2l_plugin_sdk::parse_config(config)
        .and_then(S::build)
        .unwrap_or_else(|e| panic!("`{config}`: {e}"));
    let error = crate::gradcheck::max_gradient_error(&mut stage, input).unwrap();
    assert!(error < 1e-6, "`{config}`: gradient error {error}");
}

/// Asserts that `S` built from `config` refuses `input` with an error that contains `expected`.
pub fn assert_refuses_input<S: l2l_plugin_sdk::BuildStage>(config: &str, input: &Tensor, expected: &str) {
    let mut stage = l2l_plugin_sdk::parse_config(config)
        .and_then(S::build)
        .unwrap_or_else(|e| panic!("`{config}`: {e}"));
    match l2l_plugin_sdk::Module::forward(&mut stage, input) {
        Ok(out) => panic!("`{config}`: accepted {:?}, gave {:?}", input.size(), out.size()),
        Err(e) => assert!(
            e.to_string().contains(expected),
            "`{config}`: `{e}` does not say `{expected}`"
        ),
    }
}

/// Asserts that building `S` from `config` fails with an error that contains `expected`.
pub fn assert_refuses_config<S: l2l_plugin_sdk::BuildStage>(config: &str, expected: &str) {
    match l2l_plugin_sdk::parse_config(config).and_then(S::build) {
        Ok(_) => panic!("`{config}` was accepted"),
        Err(e) => assert!(
            e.to_string().contains(expected),
            "`{config}`: `{e}` does not say `{expected}`"
        ),
    }
}
