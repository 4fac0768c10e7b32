//! Gradient checks for plugin tests: autograd against central finite differences in float64, the
//! independent reference every differentiable stage is held to.

use l2l_plugin_sdk::{Module, PluginResult};
use tch::{Device, Kind, Tensor};

/// Up to `limit` flat indices spread evenly over `numel` elements.
fn probe_indices(numel: i64, limit: i64) -> Vec<i64> {
    let step = (numel / limit).max(1);
    (0..numel).step_by(step as usize).take(limit as usize).collect()
}

/// Largest error, relative to max(1, |numeric|), between autograd's gradient of `Σ w · module(x)` and a
/// central finite difference (step `1e-6`), over up to 24 entries of the input and of every trainable
/// parameter. The module is moved to float64 on the CPU; `w` is a fixed pseudo-random weighting.
pub fn max_gradient_error(module: &mut dyn Module, input: &Tensor) -> PluginResult<f64> {
    module.to(Device::Cpu, Kind::Double)?;
    let x = input.f_to_kind(Kind::Double)?.f_detach_copy()?.set_requires_grad(true);
    let output_shape = module.forward(&x)?.size();
    let numel: i64 = output_shape.iter().product();
    // a smooth, sign-changing weighting, the same on every run
    let w = Tensor::f_arange(numel, (Kind::Double, Device::Cpu))?
        .f_mul_scalar(0.7)?
        .f_sin()?
        .f_view(output_shape.as_slice())?;
    let loss = |module: &mut dyn Module, x: &Tensor| -> PluginResult<Tensor> {
        Ok(module.forward(x)?.f_mul(&w)?.f_sum(Kind::Double)?)
    };
    loss(module, &x)?.f_backward()?;

    let mut probes: Vec<(Tensor, Tensor)> = vec![(x.shallow_clone(), x.grad())];
    for p in module.parameter_set().iter().filter(|p| p.trainable) {
        probes.push((p.tensor.shallow_clone(), p.tensor.grad()));
    }
    let eps = 1e-6;
    let mut worst: f64 = 0.0;
    for (tensor, grad) in probes {
        let flat = tensor.f_view([-1])?;
        let grad = grad.f_reshape([-1])?;
        for index in probe_indices(flat.size()[0], 24) {
            let mut at = |delta: f64| -> PluginResult<f64> {
                tch::no_grad(|| -> PluginResult<f64> {
                    let mut entry = flat.f_get(index)?;
                    let _ = entry.f_add_scalar_(delta)?;
                    let value = loss(module, &x)?.f_double_value(&[])?;
                    let _ = entry.f_sub_scalar_(delta)?;
                    Ok(value)
                })
            };
            let numeric = (at(eps)? - at(-eps)?) / (2.0 * eps);
            let analytic = grad.f_double_value(&[index])?;
            worst = worst.max((analytic - numeric).abs() / numeric.abs().max(1.0));
        }
    }
    Ok(worst)
}
