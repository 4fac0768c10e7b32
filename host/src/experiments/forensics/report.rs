//! A forensics search's results: `results.json`, the bar plots and `report.md`.

use crate::imageio::{write_atomically, write_json};
use crate::tracking;
use crate::uncertainty::{Estimate, RESAMPLES};
use anyhow::Result;
use std::fmt::Write as _;
use std::path::Path;

/// What one forensics search found.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ForensicsResult {
    /// The attacked group (`all` or a stage name).
    pub group: String,
    /// w of the search's objective −task_loss + w · distance.
    pub similarity_weight: f64,
    /// The metric behind the default processing.
    pub default_metric: f64,
    /// The metric behind the adversarial processing.
    pub adversarial_metric: f64,
    /// Default − adversarial, with its 95 % bootstrap interval over the attacked samples (paired).
    pub drop: Estimate,
    /// SSIM of the adversarial output to the default output.
    pub ssim: f64,
    /// How many validation samples were attacked.
    pub samples: usize,
    /// The attacked parameters: values before and after, and the range the stage declares.
    pub parameters: Vec<AttackedParameter>,
    /// Every tensor of the processing (parameters and buffers) whose value the search changed.
    pub changed: Vec<String>,
}

/// One attacked parameter.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AttackedParameter {
    /// `stage.parameter`.
    pub name: String,
    /// Its values at the pipeline's defaults.
    pub before: Vec<f64>,
    /// Its values after the search.
    pub after: Vec<f64>,
    /// The range its stage declares (the search stays inside it), if any.
    pub bounds: Option<(f64, f64)>,
}

/// How much one learnable parameter of the default processing moves the task loss.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ParameterAttribution {
    /// `stage.parameter`.
    pub name: String,
    /// Mean over its elements of |∂ task loss / ∂θ| · |θ|: the loss's first-order change when the
    /// parameter is scaled by a small relative amount — comparable across parameters of any units.
    pub attribution: f64,
}

/// `results.json` of a forensics experiment.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ForensicsResults {
    /// One search per group.
    pub groups: Vec<ForensicsResult>,
    /// The metric.
    pub metric: String,
    /// Per learnable parameter of the default processing, its attribution.
    pub parameter_attribution: Vec<ParameterAttribution>,
    /// Mean |∂ task loss / ∂ stage output| per stage, behind the default processing.
    pub stage_gradients: Vec<(String, f64)>,
}

/// `results.json`, `forensics.png`, `stage_gradients.png` and `report.md`.
pub fn write_report(
    dir: &Path,
    metric: &str,
    results: &[ForensicsResult],
    gradients: &[(String, f64)],
    attribution: &[ParameterAttribution],
) -> Result<()> {
    let json = ForensicsResults {
        groups: results.to_vec(),
        metric: metric.into(),
        parameter_attribution: attribution.to_vec(),
        stage_gradients: gradients.to_vec(),
    };
    write_json(&dir.join("results.json"), &json)?;
    let swept = results
        .iter()
        .any(|r| r.similarity_weight != results[0].similarity_weight);
    let label = |r: &ForensicsResult| {
        if swept {
            format!("{} w={} (SSIM {:.2})", r.group, r.similarity_weight, r.ssim)
        } else {
            format!("{} (SSIM {:.2})", r.group, r.ssim)
        }
    };
    let drops: Vec<(String, Estimate)> = results.iter().map(|r| (label(r), r.drop)).collect();
    tracking::plot_estimate_bars(
        &dir.join("forensics.png"),
        &format!("drop of {metric} under each group's attack (95 % interval)"),
        &format!("drop of {metric}"),
        &drops,
        None,
    )?;
    let exact = |(name, value): &(String, f64)| {
        (
            name.clone(),
            Estimate {
                value: *value,
                low: *value,
                high: *value,
            },
        )
    };
    tracking::plot_estimate_bars(
        &dir.join("stage_gradients.png"),
        "task loss's gradient at each stage's output",
        "mean |∂ loss / ∂ output|",
        &gradients.iter().map(exact).collect::<Vec<_>>(),
        None,
    )?;
    let mut md = String::from("# Drift forensics\n\nThe task model is frozen; each group's parameters are searched (Adam) to raise its task loss while the processing's output stays close to the default output.\n\n![forensics](forensics.png)\n\n");
    let samples = results.first().map_or(0, |r| r.samples);
    let _ = writeln!(md, "On {samples} validation samples; the drop's 95 % interval is a bootstrap over them (paired: the same samples behind both processings, {RESAMPLES} draws).\n");
    if swept {
        let mut groups: Vec<&str> = results.iter().map(|r| r.group.as_str()).collect();
        groups.dedup();
        let curves: Vec<(String, Vec<(f64, Estimate)>)> = groups
            .iter()
            .map(|g| {
                (
                    g.to_string(),
                    results
                        .iter()
                        .filter(|r| r.group == *g)
                        .map(|r| (r.ssim, r.drop))
                        .collect(),
                )
            })
            .collect();
        tracking::plot_estimate_curves(
            &dir.join("drop_vs_ssim.png"),
            &format!("drop of {metric} against the similarity kept, one point per similarity weight"),
            "SSIM of the adversarial to the default output",
            &format!("drop of {metric}"),
            tracking::XScale::Linear,
            &curves,
        )?;
        let _ = writeln!(md, "The similarity weight w trades the drop against how close the image stays: each group searched at w ∈ {:?}.\n\n![drop against SSIM](drop_vs_ssim.png)\n", results.iter().map(|r| r.similarity_weight).fold(Vec::new(), |mut v, w| { if !v.contains(&w) { v.push(w) } v }));
    }
    let _ = writeln!(
        md,
        "| group | w | {metric} (default) | {metric} (adversarial) | drop [95 %] | SSIM to default | verdict |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|");
    for r in results {
        let verdict = if r.drop.contains(0.0) {
            "no drop resolved"
        } else if r.ssim >= 0.9 {
            "breaks the model at SSIM ≥ 0.9"
        } else {
            "breaks the model, visibly (SSIM < 0.9)"
        };
        let _ = writeln!(
            md,
            "| {} | {} | {:.3} | {:.3} | {} | {:.3} | {verdict} |",
            r.group,
            r.similarity_weight,
            r.default_metric,
            r.adversarial_metric,
            r.drop.show(),
            r.ssim
        );
    }
    let _ = writeln!(md, "\n## Adversarial parameter values\n");
    for r in results {
        for p in &r.parameters {
            let show = |v: &Vec<f64>| {
                if v.len() <= 9 {
                    format!("{:?}", v.iter().map(|x| (x * 1e4).round() / 1e4).collect::<Vec<_>>())
                } else {
                    format!("{} values", v.len())
                }
            };
            let bounds = p
                .bounds
                .map(|(min, max)| format!(" (kept in [{min}, {max}], the range its stage declares)"))
                .unwrap_or_default();
            let _ = writeln!(
                md,
                "- `{}` (w = {}) / `{}`: {} → {}{bounds}",
                r.group,
                r.similarity_weight,
                p.name,
                show(&p.before),
                show(&p.after)
            );
        }
    }
    let _ = writeln!(md, "\n## Where the model is most sensitive\n\nThe gradient of the task loss with respect to each stage's output (mean |∂ loss / ∂ output| over the attacked samples, behind the default processing). It says how strongly the model reacts to a change of that image, not which stage's parameters matter: a stage that starts as the identity shows about the same value as the stage before it.\n\n![stage gradients](stage_gradients.png)\n");
    for (name, g) in gradients {
        let _ = writeln!(md, "- `{name}`: {g:.3e}");
    }
    let _ = writeln!(md, "\n### Per parameter\n\nFor each learnable parameter θ, the mean over its elements of |∂ task loss / ∂θ| · |θ|: the first-order change of the loss when θ is scaled by a small relative amount, comparable across parameters of different units.\n");
    let _ = writeln!(md, "| parameter | attribution |\n|---|---|");
    for a in attribution {
        let _ = writeln!(md, "| `{}` | {:.3e} |", a.name, a.attribution);
    }
    write_atomically(&dir.join("report.md"), |out| Ok(out.write_all(md.as_bytes())?))
}
