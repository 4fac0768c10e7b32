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
    /// w of the search's objective −task_loss + w · distance (0 under a budget, which is a
    /// constraint instead).
    pub similarity_weight: f64,
    /// The SSIM budget the search kept to on the fitted images, when searching under budgets.
    #[serde(default)]
    pub ssim_budget: Option<f64>,
    /// The metric behind the default processing.
    pub default_metric: f64,
    /// The metric behind the adversarial processing.
    pub adversarial_metric: f64,
    /// Default − adversarial on the held-out images, with its 95 % bootstrap interval over models (by
    /// training seed) and held-out images (paired).
    pub drop: Estimate,
    /// SSIM of the adversarial output to the default output on the held-out images (mean over models).
    pub ssim: f64,
    /// How many held-out images score the search (none of them was fitted on).
    pub samples: usize,
    /// The drop on the images the search was fitted on (mean over models): against `drop`, how much
    /// of the attack is specific to those images.
    #[serde(default)]
    pub fit_drop: f64,
    /// SSIM on the fitted images.
    #[serde(default)]
    pub fit_ssim: f64,
    /// How many images the search was fitted on.
    #[serde(default)]
    pub fit_samples: usize,
    /// How many trained models (one per training seed) were attacked.
    #[serde(default)]
    pub models: usize,
    /// Adam steps each model's search took.
    #[serde(default)]
    pub steps: Vec<usize>,
    /// How many of the searches stopped because the objective stopped improving (the others hit the
    /// step limit).
    #[serde(default)]
    pub converged: usize,
    /// The attacked parameters (the first model's search): values before and after, and the range the
    /// stage declares.
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

/// The SSIM budgets of the budget table: how close to the default output an attack must stay.
pub const SSIM_BUDGETS: [f64; 3] = [0.99, 0.95, 0.90];

/// Per group, the largest held-out drop found within each SSIM budget, as a markdown table: the search
/// run under that budget when the experiment searched under budgets, else the largest drop of any
/// similarity weight whose held-out SSIM kept to the budget.
fn budget_table(results: &[ForensicsResult], metric: &str) -> String {
    let mut groups: Vec<&str> = results.iter().map(|r| r.group.as_str()).collect();
    groups.dedup();
    let budgeted = results.iter().any(|r| r.ssim_budget.is_some());
    let budgets: Vec<f64> = if budgeted {
        results
            .iter()
            .filter_map(|r| r.ssim_budget)
            .fold(Vec::new(), |mut v, b| {
                if !v.contains(&b) {
                    v.push(b);
                }
                v
            })
    } else {
        SSIM_BUDGETS.to_vec()
    };
    let how = if budgeted {
        "each group searched once per budget, kept at or above it on the fitted images; held-out SSIM in brackets"
    } else {
        "over every similarity weight searched, the held-out SSIM kept to the budget; –: no search stayed that close"
    };
    let mut md = format!(
        "## SSIM budget\n\nThe largest held-out drop of {metric} found while the output stayed within each SSIM budget of the default output ({how}).\n\n| group | {} |\n|---|{}",
        budgets.iter().map(|b| format!("SSIM ≥ {b}")).collect::<Vec<_>>().join(" | "),
        "---|".repeat(budgets.len())
    );
    for group in groups {
        let cells: Vec<String> = budgets
            .iter()
            .map(|&budget| {
                let within = |r: &&ForensicsResult| {
                    r.group == group
                        && if budgeted {
                            r.ssim_budget == Some(budget)
                        } else {
                            r.ssim >= budget
                        }
                };
                results
                    .iter()
                    .filter(within)
                    .max_by(|a, b| a.drop.value.total_cmp(&b.drop.value))
                    .map_or("–".into(), |r| {
                        if budgeted {
                            format!("{} (held-out SSIM {:.3})", r.drop.show(), r.ssim)
                        } else {
                            format!("{} (w = {})", r.drop.show(), r.similarity_weight)
                        }
                    })
            })
            .collect();
        md.push_str(&format!("\n| {group} | {} |", cells.join(" | ")));
    }
    md.push('\n');
    md
}

/// `results.json`, `forensics.png`, `stage_gradients.png` and `report.md`.
pub fn write_report(
    dir: &Path,
    metric: &str,
    results: &[ForensicsResult],
    gradients: &[(String, f64)],
    attribution: &[ParameterAttribution],
    figures: &[(String, String)],
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
        .any(|r| r.similarity_weight != results[0].similarity_weight || r.ssim_budget != results[0].ssim_budget);
    let label = |r: &ForensicsResult| match r.ssim_budget {
        Some(budget) => format!("{} SSIM≥{budget} (held-out {:.2})", r.group, r.ssim),
        None if swept => format!("{} w={} (SSIM {:.2})", r.group, r.similarity_weight, r.ssim),
        None => format!("{} (SSIM {:.2})", r.group, r.ssim),
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
    let mut md = String::from("# Drift forensics\n\nThe task model is frozen; each group's parameters are searched (Adam, in units of each parameter's declared range, until the objective stops improving) to raise its task loss on the fitted images while the processing's output stays close to the default output; the values found are then scored on held-out images the search never saw.\n\n![forensics](forensics.png)\n\n");
    if let Some(first) = results.first() {
        let _ = writeln!(md, "Fitted on {} images, scored on {} other images, against {} trained model(s) (one per training seed); the held-out drop's 95 % interval resamples models by seed, then the held-out images (paired: the same images behind both processings, {RESAMPLES} draws). The fitted drop beside it shows how much of an attack is specific to the images it was fitted on.\n", first.fit_samples, first.samples, first.models);
    }
    let _ = writeln!(md, "{}", budget_table(results, metric));
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
            &format!("held-out drop of {metric} against the similarity kept, one point per search"),
            "SSIM of the adversarial to the default output",
            &format!("drop of {metric}"),
            tracking::XScale::Linear,
            &curves,
            &[],
        )?;
        let _ = writeln!(md, "How much the model can be broken against how close the image stays (the SSIM-budget curve of each group): one point per search.\n\n![drop against SSIM](drop_vs_ssim.png)\n");
    }
    let _ = writeln!(
        md,
        "| group | w | SSIM budget | {metric} (default) | {metric} (adversarial) | held-out drop [95 %] | fitted drop | held-out SSIM | steps (converged) | verdict |"
    );
    let _ = writeln!(md, "|---|---|---|---|---|---|---|---|---|---|");
    for r in results {
        let verdict = if r.drop.contains(0.0) {
            "no drop resolved"
        } else if r.ssim >= 0.9 {
            "breaks the model at SSIM ≥ 0.9"
        } else {
            "breaks the model, visibly (SSIM < 0.9)"
        };
        let steps: Vec<String> = r.steps.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.3} | {:.3} | {} | {:.3} | {:.3} | {} ({} of {}) | {verdict} |",
            r.group,
            r.similarity_weight,
            r.ssim_budget.map_or("–".into(), |b| format!("≥ {b}")),
            r.default_metric,
            r.adversarial_metric,
            r.drop.show(),
            r.fit_drop,
            r.ssim,
            steps.join(", "),
            r.converged,
            r.models
        );
    }
    if results.iter().any(|r| r.converged < r.models) {
        let _ = writeln!(md, "\nA search that hit the step limit before its objective stopped improving may not have found the largest drop: raise `steps`.");
    }
    if !figures.is_empty() {
        let _ = writeln!(md, "\n## The strongest attack of each group\n\nHeld-out images behind the default processing (top) and behind the values found (bottom), both shown with the default output's range.\n");
        for (group, file) in figures {
            let _ = writeln!(md, "`{group}`:\n\n![attack on {group}]({file})\n");
        }
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
