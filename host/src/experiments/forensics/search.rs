//! The search itself: Adam over a group's parameters in units of each parameter's declared range,
//! stopped when the objective stops improving, kept inside a constraint (an SSIM budget) by halving
//! the steps that leave it.

use crate::plugins::SharedParameter;
use crate::train::optim;
use anyhow::Result;
use tch::Tensor;

/// The size of one search unit of parameter `p`: the width of the range its stage declares, so that
/// one learning rate moves gains, kernels and gamma alike by the same share of their range; without a
/// finite range, its largest initial magnitude (at least 1).
pub(super) fn range_unit(p: &SharedParameter) -> Result<f64> {
    Ok(match p.bounds {
        Some((min, max)) if min.is_finite() && max.is_finite() && max > min => max - min,
        _ => p.tensor.f_detach()?.f_abs()?.f_max()?.f_double_value(&[])?.max(1.0),
    })
}

/// How a search ended: after how many Adam steps, and whether because the objective stopped
/// improving (else the step limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchEnd {
    /// Adam steps taken.
    pub steps: usize,
    /// Whether the objective stopped improving before the limit.
    pub converged: bool,
}

/// Halvings of a step that leaves the feasible set before the step is given up.
const HALVINGS: usize = 12;

/// Adam over `groups` minimising `objective`, `project` after every step, until the objective has not
/// improved by more than `tolerance` over its best for `patience` evaluations, or `max_steps` steps. A
/// step after which `feasible` is false is halved back toward where it started until it is feasible
/// (or undone): a constraint, such as an SSIM budget, that holds at the start holds throughout. The
/// parameters are left at the best values evaluated (Adam's last steps may overshoot them).
pub fn search(
    groups: Vec<optim::ParameterGroup>,
    max_steps: usize,
    tolerance: f64,
    patience: usize,
    mut objective: impl FnMut() -> Result<Tensor>,
    mut project: impl FnMut() -> Result<()>,
    mut feasible: impl FnMut() -> Result<bool>,
) -> Result<SearchEnd> {
    let parameters: Vec<Tensor> = groups
        .iter()
        .flat_map(|g| g.parameters.iter().map(Tensor::shallow_clone))
        .collect();
    let snapshot = || -> Result<Vec<Tensor>> { parameters.iter().map(|p| Ok(p.f_detach()?.copy())).collect() };
    let set = |values: &[Tensor]| -> Result<()> {
        tch::no_grad(|| {
            for (parameter, value) in parameters.iter().zip(values) {
                parameter.shallow_clone().f_copy_(value)?;
            }
            Ok(())
        })
    };
    let mut adam = optim::Adam::new(groups, 0.0)?;
    let (mut best, mut best_values, mut stale) = (f64::INFINITY, snapshot()?, 0);
    let mut end = SearchEnd {
        steps: max_steps,
        converged: false,
    };
    for step in 0..max_steps {
        let value = objective()?;
        let current = value.f_double_value(&[])?;
        if current < best - tolerance {
            (best, best_values, stale) = (current, snapshot()?, 0);
        } else {
            stale += 1;
            if stale >= patience.max(1) {
                end = SearchEnd {
                    steps: step,
                    converged: true,
                };
                break;
            }
        }
        let start = snapshot()?;
        adam.zero_grad();
        value.f_backward()?;
        adam.step()?;
        project()?;
        let mut halvings = 0;
        while !feasible()? {
            halvings += 1;
            if halvings > HALVINGS {
                set(&start)?;
                break;
            }
            let halfway: Vec<Tensor> = parameters
                .iter()
                .zip(&start)
                .map(|(p, s)| Ok(p.f_detach()?.f_add(s)?.f_mul_scalar(0.5)?))
                .collect::<Result<_>>()?;
            set(&halfway)?;
        }
    }
    set(&best_values)?;
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (x − 3)² from x = 0 at a rate of 0.1: Adam reaches the minimum and the objective stops
    /// improving long before the step limit, and the search says it converged.
    #[test]
    fn the_search_stops_when_its_objective_stops_improving() {
        // (x − 3)² searched from x = 0 at rate 0.1 for at most `steps` steps: how it ended, and x
        let toy = |steps: usize| {
            let x = Tensor::zeros([1], (tch::Kind::Double, tch::Device::Cpu)).set_requires_grad(true);
            let groups = vec![optim::ParameterGroup {
                parameters: vec![x.shallow_clone()],
                lr: 0.1,
            }];
            let objective = || Ok((&x - 3.0).square().sum(tch::Kind::Double));
            let end = search(groups, steps, 1e-6, 10, objective, || Ok(()), || Ok(true)).unwrap();
            (end, x.double_value(&[0]))
        };
        let (end, x) = toy(10_000);
        assert!(end.converged && end.steps < 1_000, "{end:?}");
        assert!((x - 3.0).abs() < 0.05, "{x}");
        // a limit below what convergence needs is reported as the limit
        let (end, _) = toy(5);
        assert_eq!(
            end,
            SearchEnd {
                steps: 5,
                converged: false
            }
        );
    }
}
