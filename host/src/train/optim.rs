//! Adam (Kingma & Ba, 2015) exactly as `torch.optim.Adam` computes it (L2 weight decay added to the
//! gradient, bias-corrected moments), written here so that its moments can be checkpointed and a
//! resumed run continues with the same optimiser state.

use anyhow::Result;
use tch::Tensor;

/// One group of parameters sharing a learning rate.
pub struct ParameterGroup {
    /// The shared parameter tensors (autograd leaves).
    pub parameters: Vec<Tensor>,
    /// Its learning rate.
    pub lr: f64,
}

/// Adam over parameter groups.
pub struct Adam {
    groups: Vec<ParameterGroup>,
    weight_decay: f64,
    betas: (f64, f64),
    eps: f64,
    step: i64,
    /// First and second moments, one pair per parameter in group order.
    moments: Vec<(Tensor, Tensor)>,
    /// The learning-rate schedule's current factor on every group's rate.
    lr_factor: f64,
}

impl Adam {
    /// Adam with β = (0.9, 0.999), ε = 1e-8 (PyTorch's defaults).
    pub fn new(groups: Vec<ParameterGroup>, weight_decay: f64) -> Result<Self> {
        let moments = groups
            .iter()
            .flat_map(|g| g.parameters.iter())
            .map(|p| Ok((p.f_zeros_like()?, p.f_zeros_like()?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            groups,
            weight_decay,
            betas: (0.9, 0.999),
            eps: 1e-8,
            step: 0,
            moments,
            lr_factor: 1.0,
        })
    }

    /// Clears every parameter's gradient.
    pub fn zero_grad(&mut self) {
        for p in self.groups.iter_mut().flat_map(|g| g.parameters.iter_mut()) {
            p.zero_grad();
        }
    }

    /// Scales every group's learning rate by `factor` from the next step on (a schedule's value).
    pub fn set_lr_factor(&mut self, factor: f64) {
        self.lr_factor = factor;
    }

    /// One update from the current gradients (parameters without a gradient are left alone).
    pub fn step(&mut self) -> Result<()> {
        self.step += 1;
        let (b1, b2) = self.betas;
        let correction1 = 1.0 - b1.powi(self.step as i32);
        let correction2 = 1.0 - b2.powi(self.step as i32);
        let mut index = 0;
        tch::no_grad(|| -> Result<()> {
            for group in &mut self.groups {
                for p in &mut group.parameters {
                    let (m, v) = &mut self.moments[index];
                    index += 1;
                    let grad = p.grad();
                    if !grad.defined() {
                        continue;
                    }
                    let grad = if self.weight_decay != 0.0 {
                        grad.f_add(&p.f_mul_scalar(self.weight_decay)?)?
                    } else {
                        grad
                    };
                    let _ = m.f_mul_scalar_(b1)?.f_add_(&grad.f_mul_scalar(1.0 - b1)?)?;
                    let _ = v.f_mul_scalar_(b2)?.f_addcmul_(&grad, &grad.f_mul_scalar(1.0 - b2)?)?;
                    let denominator = v.f_sqrt()?.f_div_scalar(correction2.sqrt())?.f_add_scalar(self.eps)?;
                    let _ = p.f_sub_(
                        &m.f_div(&denominator)?
                            .f_mul_scalar(group.lr * self.lr_factor / correction1)?,
                    )?;
                }
            }
            Ok(())
        })
    }

    /// The optimiser's state as named tensors (`step`, `m.I`, `v.I`), for a checkpoint.
    pub fn state(&self) -> Result<Vec<(String, Tensor)>> {
        let mut state = vec![("step".to_string(), Tensor::from(self.step))];
        for (i, (m, v)) in self.moments.iter().enumerate() {
            state.push((format!("m.{i}"), m.f_detach_copy()?));
            state.push((format!("v.{i}"), v.f_detach_copy()?));
        }
        Ok(state)
    }

    /// Restores what [`Adam::state`] gave.
    pub fn load_state(&mut self, state: &[(String, Tensor)]) -> Result<()> {
        let find = |name: &str| {
            state
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t)
                .ok_or_else(|| anyhow::anyhow!("optimiser state lacks `{name}`"))
        };
        self.step = find("step")?.f_int64_value(&[])?;
        for (i, (m, v)) in self.moments.iter_mut().enumerate() {
            tch::no_grad(|| -> Result<()> {
                m.f_copy_(find(&format!("m.{i}"))?)?;
                v.f_copy_(find(&format!("v.{i}"))?)?;
                Ok(())
            })?;
        }
        Ok(())
    }
}
