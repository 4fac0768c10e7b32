//! Fast paths for inference on the CPU: plain loops over float32 planes, split across libtorch's
//! intra-op threads, for the filters a 12-MP export spends its time in. A weighted sum of shifted
//! tensor views reads and writes the whole image once per tap; these loops keep a few rows in cache
//! and touch each pixel once per pass.
//!
//! Only for what no gradient can be asked of (the callers check [`crate::grad_enabled`] and that no
//! tensor argument requires one). The filters' values equal the differentiable tensor paths' bit for
//! bit (the same float32 products and sums in the same order); the channel mixing's differ by float32
//! rounding at most. Tests compare both.

mod power;
mod rows;

use crate::padding::{padded_indices, Padding};
use l2l_plugin_sdk::PluginResult;
pub use power::{power, MAX_EXPONENT};
use rows::map_planes;
pub use rows::{for_each_row, with_output};
use tch::{Device, Kind, Tensor};

/// Whether `x` can take a CPU fast path: a float32 tensor on the CPU with at least 2 dimensions.
pub fn eligible(x: &Tensor) -> bool {
    x.device() == Device::Cpu && x.kind() == Kind::Float && x.dim() >= 2 && !x.requires_grad()
}

/// Where each position of an axis of length `n`, extended by `reach` on both sides, reads from —
/// [`crate::pad`]'s indices; `None` is a zero (the `Zero` border).
pub fn border_sources(n: usize, reach: usize, mode: Padding) -> Vec<Option<usize>> {
    padded_indices(n as i64, reach as i64, reach as i64, mode)
        .into_iter()
        .enumerate()
        .map(|(position, source)| {
            let inside = (reach..reach + n).contains(&position);
            (inside || mode != Padding::Zero).then_some(source as usize)
        })
        .collect()
}

/// `row` extended by `reach` on both sides as `cols` (from [`border_sources`]) says, into `out`.
fn pad_row(row: &[f32], cols: &[Option<usize>], reach: usize, out: &mut Vec<f32>) {
    out.clear();
    out.extend(cols[..reach].iter().map(|c| c.map_or(0.0, |c| row[c])));
    out.extend_from_slice(row);
    out.extend(cols[reach + row.len()..].iter().map(|c| c.map_or(0.0, |c| row[c])));
}

/// `Σ_k w_k · x[.., i + o_k]` along `axis` (-2: down the columns, -1: along the rows) of every H×W
/// plane over a `padding` border, for `taps` `(o_k, w_k)` — [`crate::shifted_sum`]'s values.
pub fn shifted_sum(x: &Tensor, axis: i64, taps: &[(i64, f32)], padding: Padding) -> PluginResult<Tensor> {
    map_planes(x, |input, h, w, output| {
        shifted_sum_planes(input, h, w, axis, taps, padding, output)
    })
}

fn shifted_sum_planes(
    input: &[f32],
    h: usize,
    w: usize,
    axis: i64,
    taps: &[(i64, f32)],
    padding: Padding,
    output: &mut [f32],
) {
    let reach = taps.iter().map(|(o, _)| o.unsigned_abs() as usize).max().unwrap_or(0);
    // a tap's start in the extended axis
    let start = |offset: i64| (reach as i64 + offset) as usize;
    if axis == -2 {
        let rows = border_sources(h, reach, padding);
        for_each_row(output, w, h, |plane, i, out_row| {
            let plane_values = &input[plane * h * w..(plane + 1) * h * w];
            // 0 + s·w is s·w exactly, so starting from zero adds in the tensor path's order
            out_row.fill(0.0);
            for &(offset, weight) in taps {
                // a row of the zero border adds nothing
                if let Some(source) = rows[i + start(offset)] {
                    let source = &plane_values[source * w..(source + 1) * w];
                    out_row.iter_mut().zip(source).for_each(|(o, &s)| *o += s * weight);
                }
            }
        });
    } else {
        let cols = border_sources(w, reach, padding);
        for_each_row(output, w, h, |plane, i, out_row| {
            let row = &input[(plane * h + i) * w..(plane * h + i + 1) * w];
            let mut padded = Vec::with_capacity(w + 2 * reach);
            pad_row(row, &cols, reach, &mut padded);
            out_row.fill(0.0);
            for &(offset, weight) in taps {
                let shifted = &padded[start(offset)..start(offset) + w];
                out_row.iter_mut().zip(shifted).for_each(|(o, &s)| *o += s * weight);
            }
        });
    }
}

/// The separable filter of every H×W plane with `kernel` (odd length) along columns, then rows, over a
/// `padding` border — [`crate::filter_separable`]'s values.
pub fn filter_separable(x: &Tensor, kernel: &[f32], padding: Padding) -> PluginResult<Tensor> {
    let reach = (kernel.len() / 2) as i64;
    let taps: Vec<(i64, f32)> = kernel.iter().enumerate().map(|(t, &k)| (t as i64 - reach, k)).collect();
    map_planes(x, |input, h, w, output| {
        let mut vertical = vec![0f32; input.len()];
        shifted_sum_planes(input, h, w, -2, &taps, padding, &mut vertical);
        shifted_sum_planes(&vertical, h, w, -1, &taps, padding, output);
    })
}

/// `y_k = Σ_c M[k][c] x_c` per pixel of `x` `[B, C, H, W]` with `matrix` `[K, C]` row-major —
/// [`crate::mix_channels`]'s values up to float32 rounding (the BLAS product it replaces may fuse
/// multiply and add): each output plane is one pass over the C input planes instead of a matrix product
/// with an inner dimension of 3.
pub fn mix_channels(x: &Tensor, matrix: &[f32], rows: usize) -> PluginResult<Tensor> {
    let size = x.size();
    let (channels, h, w) = (size[1] as usize, size[2] as usize, size[3] as usize);
    with_output(x, &[size[0], rows as i64, size[2], size[3]], |input, output| {
        for_each_row(output, w, h, |plane, i, out_row| {
            let (b, k) = (plane / rows, plane % rows);
            for c in 0..channels {
                let weight = matrix[k * channels + c];
                let source = &input[((b * channels + c) * h + i) * w..((b * channels + c) * h + i + 1) * w];
                if c == 0 {
                    // `0 + w·s`, as accumulating from a zeroed row would (−0 becomes +0), in one pass
                    out_row.iter_mut().zip(source).for_each(|(o, &s)| *o = 0.0 + weight * s);
                } else {
                    out_row.iter_mut().zip(source).for_each(|(o, &s)| *o += weight * s);
                }
            }
        });
    })
}

/// A linear demosaicer as a bank of per-site filters: output channel `c` at a pixel of CFA position
/// `p` (`(row % 2) · 2 + column % 2`) is the mosaic itself where `choice[c][p]` is `None`, else the
/// mosaic correlated with kernel `choice[c][p]` of `kernels` (`F` row-major `size × size` kernels, odd
/// `size`) over a `padding` border. `x` is `[B, 1, H, W]`; the result `[B, C, H, W]`. The values are
/// those of the same correlation by convolution, up to float32 rounding.
///
/// Each output row is at most two filtered rows (one per column parity), each a sum of contiguous
/// shifted rows for the kernel's non-zero taps.
pub fn site_filter_bank(
    x: &Tensor,
    kernels: &[f32],
    size: usize,
    choice: &[[Option<usize>; 4]],
    padding: Padding,
) -> PluginResult<Tensor> {
    let shape = x.size();
    let (h, w) = (shape[2] as usize, shape[3] as usize);
    let channels = choice.len();
    let reach = size / 2;
    let rows = border_sources(h, reach, padding);
    let cols = border_sources(w, reach, padding);
    // the non-zero taps of each kernel: (row, column, weight)
    let taps: Vec<Vec<(usize, usize, f32)>> = kernels
        .chunks(size * size)
        .map(|k| {
            k.iter()
                .enumerate()
                .filter(|(_, &v)| v != 0.0)
                .map(|(t, &v)| (t / size, t % size, v))
                .collect()
        })
        .collect();
    with_output(x, &[shape[0], channels as i64, shape[2], shape[3]], |input, output| {
        for_each_row(output, w, h, |plane, i, out_row| {
            let (b, c) = (plane / channels, plane % channels);
            let mosaic = &input[b * h * w..(b + 1) * h * w];
            let padded_rows: Vec<Option<Vec<f32>>> = (0..size)
                .map(|r| {
                    rows[i + r].map(|source| {
                        let mut padded = Vec::with_capacity(w + 2 * reach);
                        pad_row(&mosaic[source * w..(source + 1) * w], &cols, reach, &mut padded);
                        padded
                    })
                })
                .collect();
            let mut filtered = vec![0f32; w];
            // the kernel `filtered` holds, when both column parities use the same one
            let mut filtered_with = None;
            for parity in 0..2 {
                let values: &[f32] = match choice[c][(i % 2) * 2 + parity] {
                    None => &mosaic[i * w..(i + 1) * w],
                    Some(kernel) => {
                        if filtered_with != Some(kernel) {
                            correlate_row(&taps[kernel], &padded_rows, &mut filtered);
                            filtered_with = Some(kernel);
                        }
                        &filtered
                    }
                };
                for j in (parity..w).step_by(2) {
                    out_row[j] = values[j];
                }
            }
        });
    })
}

/// One output row of a 2-D correlation: `Σ weight · row[r][col + j]` over a kernel's non-zero `taps`
/// `(r, col, weight)`, from the padded input rows (`None`: a row of the zero border).
fn correlate_row(taps: &[(usize, usize, f32)], rows: &[Option<Vec<f32>>], out: &mut [f32]) {
    let w = out.len();
    out.fill(0.0);
    for &(r, col, weight) in taps {
        if let Some(row) = &rows[r] {
            out.iter_mut()
                .zip(&row[col..col + w])
                .for_each(|(o, &s)| *o += weight * s);
        }
    }
}

/// The median of every 3×3 window of each H×W plane over a `padding` border, by sorted columns as the
/// tensor path computes it (min/max only, so the values are the same).
pub fn median3x3(x: &Tensor, padding: Padding) -> PluginResult<Tensor> {
    map_planes(x, |input, h, w, output| {
        let rows = border_sources(h, 1, padding);
        let cols = border_sources(w, 1, padding);
        for_each_row(output, w, h, |plane, i, out_row| {
            let plane_values = &input[plane * h * w..(plane + 1) * h * w];
            let padded_row = |r: Option<usize>| -> Vec<f32> {
                let mut padded = Vec::with_capacity(w + 2);
                match r {
                    Some(r) => pad_row(&plane_values[r * w..(r + 1) * w], &cols, 1, &mut padded),
                    None => padded.resize(w + 2, 0.0),
                }
                padded
            };
            let (a, b, c) = (padded_row(rows[i]), padded_row(rows[i + 1]), padded_row(rows[i + 2]));
            let mut low = vec![0f32; w + 2];
            let mut middle = vec![0f32; w + 2];
            let mut high = vec![0f32; w + 2];
            for j in 0..w + 2 {
                let (l, hi) = (a[j].min(b[j]), a[j].max(b[j]));
                let (m, hi) = (hi.min(c[j]), hi.max(c[j]));
                low[j] = l.min(m);
                middle[j] = l.max(m);
                high[j] = hi;
            }
            for j in 0..w {
                let max_low = low[j].max(low[j + 1]).max(low[j + 2]);
                let min_high = high[j].min(high[j + 1]).min(high[j + 2]);
                let mid = median3(middle[j], middle[j + 1], middle[j + 2]);
                out_row[j] = median3(max_low, mid, min_high);
            }
        });
    })
}

/// max(min(a, b), min(max(a, b), c)), as the tensor path's `median3`.
fn median3(a: f32, b: f32, c: f32) -> f32 {
    a.min(b).max(a.max(b).min(c))
}

#[cfg(test)]
mod tests {
    use super::for_each_row;

    #[test]
    fn for_each_row_visits_every_row_of_every_plane_once_with_its_own_slice() {
        for (planes, height, width) in [(1, 1, 3), (3, 2, 4), (2, 5, 1), (4, 7, 3), (1, 64, 2)] {
            let mut out = vec![-1f32; planes * height * width];
            for_each_row(&mut out, width, height, |plane, i, row| {
                assert_eq!(row.len(), width);
                row.iter_mut().for_each(|v| *v = (plane * 1000 + i) as f32);
            });
            for (index, &value) in out.iter().enumerate() {
                let (plane, i) = (index / (height * width), index / width % height);
                assert_eq!(value, (plane * 1000 + i) as f32, "{planes}×{height}×{width} at {index}");
            }
        }
    }
}
