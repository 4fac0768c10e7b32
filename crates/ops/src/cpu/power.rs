//! `max(x, 0)^p` over float32 values: the display gamma of every exported image. libtorch's `pow`
//! (SLEEF's 1-ulp power, exp and log per value) was the largest single cost of a 12-MP export; this
//! splits x = 2^e · a_j · (1 + d), with a_j = 1 + j/16 the start of the sixteenth of [1, 2) the
//! mantissa falls in and 0 ≤ d < 1/16, so that
//!
//! ```text
//! x^p = [2^(e·p) · a_j^p] · (1 + d)^p,
//! ```
//!
//! the bracket from a table made once per call in float64 (4 480 entries: every float32 exponent ×
//! 16), `(1 + d)^p` from its binomial series to d⁶ (the first term left out is below 1e-10 for
//! 0 < p ≤ [`MAX_EXPONENT`]). No branch and no call per value, so the loop is vectorised; it is
//! compiled for AVX-512 and AVX2 as well and picked at run time. Without fused multiply-add, so every
//! CPU computes the same values: within 3 ulp of the exactly rounded power (tests), exact for x = 1
//! and for powers of two whose power is a float32.

use super::rows::{for_each_row, map_planes};
use l2l_plugin_sdk::PluginResult;
use tch::Tensor;

/// The largest exponent [`power`] takes (a gamma of 1 or more): beyond it, the series' larger terms
/// round to more than 3 ulp.
pub const MAX_EXPONENT: f64 = 1.0;

/// Entries per binary exponent: the sixteenths of [1, 2).
const INTERVALS: usize = 16;
/// Table rows: biased exponents 0..=255 (255: ∞ and NaN) plus 24 below for subnormals, which are
/// scaled by 2^24 first.
const ROWS: usize = 256 + 24;
const SUBNORMAL_SCALE: f32 = 16_777_216.0; // 2^24
/// Terms of the binomial series of `(1 + d)^p`, d⁰ to d⁶.
const TERMS: usize = 7;

/// What `x^p` needs besides `x`: the table of `2^(e·p) · a_j^p` and the series' coefficients.
struct PowerTable {
    scale: Box<[f32; ROWS * INTERVALS]>,
    series: [f32; TERMS],
}

impl PowerTable {
    fn new(p: f64) -> Self {
        let mut scale = Box::new([0f32; ROWS * INTERVALS]);
        for row in 0..ROWS {
            // row r holds biased exponent r − 24 (rows 0..24: subnormals scaled by 2^24), i.e. e = r − 151
            let e = row as f64 - 151.0;
            for j in 0..INTERVALS {
                let start = 1.0 + j as f64 / INTERVALS as f64;
                scale[row * INTERVALS + j] = if row == ROWS - 1 {
                    f32::INFINITY
                } else {
                    ((e * p).exp2() * start.powf(p)) as f32
                };
            }
        }
        // binom(p, k) = binom(p, k − 1) · (p − k + 1) / k
        let mut series = [0f32; TERMS];
        let mut coefficient = 1.0f64;
        for (k, term) in series.iter_mut().enumerate() {
            if k > 0 {
                coefficient *= (p - (k as f64 - 1.0)) / k as f64;
            }
            *term = coefficient as f32;
        }
        Self { scale, series }
    }

    /// `max(x, 0)^p`; NaN stays NaN.
    #[inline(always)]
    fn power(&self, x: f32) -> f32 {
        let subnormal = x < f32::MIN_POSITIVE;
        let normal = if subnormal { x * SUBNORMAL_SCALE } else { x };
        let bits = normal.to_bits();
        let biased = ((bits >> 23) & 0xff) as usize;
        let row = if subnormal { biased } else { biased + 24 };
        let j = ((bits >> 19) & 0xf) as usize;
        let mantissa = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
        // m − a is exact (both in [1, 2), less than 1/16 apart); one rounding in the division
        let start = 1.0 + j as f32 * (1.0 / INTERVALS as f32);
        let d = (mantissa - start) / start;
        let s = &self.series;
        let series = s[0] + d * (s[1] + d * (s[2] + d * (s[3] + d * (s[4] + d * (s[5] + d * s[6])))));
        let value = self.scale[row * INTERVALS + j] * series;
        if x > 0.0 {
            value
        } else if x.is_nan() {
            x
        } else {
            0.0
        }
    }

    #[inline(always)]
    fn apply(&self, input: &[f32], output: &mut [f32]) {
        output.iter_mut().zip(input).for_each(|(o, &x)| *o = self.power(x));
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn apply_avx512(&self, input: &[f32], output: &mut [f32]) {
        self.apply(input, output)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn apply_avx2(&self, input: &[f32], output: &mut [f32]) {
        self.apply(input, output)
    }

    /// [`Self::apply`] compiled for the widest vectors this CPU has.
    fn apply_widest(&self, input: &[f32], output: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F (checked above)
                return unsafe { self.apply_avx512(input, output) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2 (checked above)
                return unsafe { self.apply_avx2(input, output) };
            }
        }
        self.apply(input, output)
    }
}

/// The table for exponent `p`, built once for a run of calls with the same exponent (an export
/// calls [`power`] once per band of every image, always with the same gamma).
fn table_for(p: f64) -> std::sync::Arc<PowerTable> {
    static LAST: std::sync::Mutex<Option<(u64, std::sync::Arc<PowerTable>)>> = std::sync::Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    match &*last {
        Some((bits, table)) if *bits == p.to_bits() => table.clone(),
        _ => {
            let table = std::sync::Arc::new(PowerTable::new(p));
            *last = Some((p.to_bits(), table.clone()));
            table
        }
    }
}

/// `max(x, 0)^p` of every value of `x` (float32, CPU; see [`super::eligible`]) for
/// 0 < p ≤ [`MAX_EXPONENT`], NaN kept; within 3 ulp of the exactly rounded power.
pub fn power(x: &Tensor, p: f64) -> PluginResult<Tensor> {
    if !(p > 0.0 && p <= MAX_EXPONENT) {
        return Err(l2l_plugin_sdk::PluginError::Input(format!(
            "power: expected an exponent in (0, {MAX_EXPONENT}], found {p}"
        )));
    }
    let table = table_for(p);
    map_planes(x, |input, h, w, output| {
        for_each_row(output, w, h, |plane, i, out_row| {
            let start = (plane * h + i) * w;
            table.apply_widest(&input[start..start + w], out_row);
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two positive finite floats.
    fn ulps(a: f32, b: f32) -> u32 {
        a.to_bits().abs_diff(b.to_bits())
    }

    /// Values spread over every binary exponent, subnormals included, and the mantissa's sixteenths.
    fn samples() -> Vec<f32> {
        let mut values = Vec::new();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // any positive finite float32: a random bit pattern below +∞
            values.push(f32::from_bits((state >> 33) as u32 % 0x7f80_0000));
        }
        values.extend((0..4096).map(|k| k as f32 / 4095.0));
        values
    }

    #[test]
    fn power_is_within_3_ulp_of_the_exactly_rounded_power() {
        for p in [1.0 / 2.2, 1.0 / 2.4, 0.5, 1.0 / 3.0, 0.1, 0.999, 1.0] {
            let table = PowerTable::new(p);
            let mut worst = (0, 0.0f32);
            for x in samples().into_iter().filter(|&x| x > 0.0) {
                let exact = (x as f64).powf(p) as f32;
                if exact.is_infinite() {
                    assert!(
                        table.power(x) >= f32::MAX * 0.999_999,
                        "p = {p}: x = {x:e} gives {}",
                        table.power(x)
                    );
                    continue;
                }
                if exact < f32::MIN_POSITIVE {
                    // a subnormal result: its precision is absolute, a few steps of 2^-149
                    let error = (table.power(x) as f64 - (x as f64).powf(p)).abs();
                    assert!(error <= 3e-45, "p = {p}: x = {x:e} off by {error:e}");
                    continue;
                }
                let error = ulps(table.power(x), exact);
                if error > worst.0 {
                    worst = (error, x);
                }
            }
            assert!(worst.0 <= 3, "p = {p}: {} ulp at x = {:e}", worst.0, worst.1);
        }
    }

    #[test]
    fn power_is_exact_at_one_and_at_powers_of_two_and_keeps_zero_negative_nan_and_infinity() {
        let table = PowerTable::new(0.5);
        assert_eq!(table.power(1.0), 1.0);
        assert_eq!(table.power(4.0), 2.0);
        assert_eq!(table.power(0.25), 0.5);
        // 2^-140 (subnormal) and 2^-70, exactly: `powi` may compute 2^140 first and overflow
        let (subnormal, root) = (f32::from_bits(1 << 9), f32::from_bits((127 - 70) << 23));
        assert_eq!(table.power(subnormal), root);
        assert_eq!(table.power(0.0), 0.0);
        assert_eq!(table.power(-0.3), 0.0);
        assert_eq!(table.power(f32::NEG_INFINITY), 0.0);
        assert_eq!(table.power(f32::INFINITY), f32::INFINITY);
        assert!(table.power(f32::NAN).is_nan());
        assert_eq!(PowerTable::new(1.0 / 2.2).power(1.0), 1.0);
    }

    /// Every branch this CPU can run (plain, AVX2, AVX-512F) against the plain one, bit for bit: on
    /// a machine with AVX-512 its branch is checked too (it prints which ran).
    #[test]
    fn every_vector_width_this_cpu_has_computes_the_same_values() {
        let table = PowerTable::new(1.0 / 2.2);
        let input = samples();
        let run = |apply: &dyn Fn(&[f32], &mut [f32])| {
            let mut output = vec![0f32; input.len()];
            apply(&input, &mut output);
            output
        };
        let plain = run(&|i, o| table.apply(i, o));
        let mut branches: Vec<(&str, Vec<f32>)> = vec![("widest", run(&|i, o| table.apply_widest(i, o)))];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU has AVX2 (checked above)
                branches.push(("avx2", run(&|i, o| unsafe { table.apply_avx2(i, o) })));
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the CPU has AVX-512F (checked above)
                branches.push(("avx512f", run(&|i, o| unsafe { table.apply_avx512(i, o) })));
            }
        }
        eprintln!(
            "compared with the plain loop: {:?}",
            branches.iter().map(|(name, _)| *name).collect::<Vec<_>>()
        );
        for (name, output) in &branches {
            assert!(
                plain.iter().zip(output).all(|(a, b)| a.to_bits() == b.to_bits()),
                "{name} differs from the plain loop"
            );
        }
    }

    #[test]
    fn power_of_a_tensor_matches_libtorch_and_refuses_exponents_out_of_range() {
        let x = Tensor::from_slice(&[-1.0f32, 0.0, 1e-3, 0.18, 0.5, 0.999, 1.0, 3.0]).view([1, 2, 2, 2]);
        let fast = power(&x, 1.0 / 2.2).unwrap();
        assert_eq!(fast.size(), x.size());
        let expected = x.clamp_min(0.0).pow_tensor_scalar(1.0 / 2.2);
        let difference = f64::try_from((fast - expected).abs().max()).unwrap();
        assert!(difference < 1e-6, "{difference}");
        assert!(power(&x, 0.0).is_err());
        assert!(power(&x, 1.5).is_err());
        assert!(power(&x, f64::NAN).is_err());
    }
}
