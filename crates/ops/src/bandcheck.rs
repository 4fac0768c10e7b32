//! Band checks for plugin tests: a module that states a row reach must give, band by band, exactly
//! what it gives on the whole image — the promise `l2l-host export` relies on when it runs the module
//! on bands (see `Module::row_reach` and `Module::forward_band`). The bands are cut as the host cuts
//! them: starting at even rows, with the reach (rounded up to even) added on both sides.

use l2l_plugin_sdk::{Band, Module, PluginError, PluginResult};
use tch::Tensor;

/// Largest absolute difference between the module on the whole of `input` `[B, C, H, W]` and the
/// module run on bands of `band_rows` output rows (even) joined; an error when the module states no
/// row reach (it is never banded, nothing to check).
pub fn max_band_difference(module: &mut dyn Module, input: &Tensor, band_rows: i64) -> PluginResult<f64> {
    let reach = module
        .row_reach()
        .ok_or_else(|| PluginError::Input("the module states no row reach: it is never run in bands".into()))?;
    if band_rows < 2 || band_rows % 2 != 0 {
        return Err(PluginError::Input(format!(
            "band_rows: expected an even number ≥ 2, found {band_rows}"
        )));
    }
    let whole = tch::no_grad(|| module.forward(input))?;
    let height = input.size()[2];
    let reach = (reach + reach % 2) as i64;
    let mut largest = 0f64;
    for top in (0..height).step_by(band_rows as usize) {
        let bottom = (top + band_rows).min(height);
        let (first, last) = ((top - reach).max(0), (bottom + reach).min(height));
        let band = input.f_narrow(2, first, last - first)?;
        let output = tch::no_grad(|| {
            module.forward_band(
                &band,
                Band {
                    first_row: first,
                    full_height: height,
                },
            )
        })?;
        let inner = output.f_narrow(2, top - first, bottom - top)?;
        let expected = whole.f_narrow(2, top, bottom - top)?;
        largest = largest.max(inner.f_sub(&expected)?.f_abs()?.f_max()?.f_double_value(&[])?);
    }
    Ok(largest)
}
