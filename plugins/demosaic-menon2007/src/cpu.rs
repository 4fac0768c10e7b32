//! Menon2007 for inference on the CPU: the same steps as the tensor path ([`super`]) on float32
//! planes, each step's filters and selections fused into one pass over the image, row by row. The
//! tensor path spends most of its time writing and reading back whole intermediate planes (some forty
//! of them at 12 MP); here a step computes its filters for one row into small buffers (loops the
//! compiler vectorises) and picks, per pixel, what the CFA site selects.
//!
//! Every value is computed with the tensor path's float32 operations in the same order (a filter is
//! `0 + Σ weight · (colour − base)` over its taps in order, mirrored borders; a decision window is the
//! same correlation over its non-zero taps, zero border), so both paths give the same bits, decisions
//! included (tests).

use l2l_ops::cpu::{for_each_row, with_output};
use l2l_ops::CfaSites;
use l2l_plugin_sdk::PluginResult;
use tch::Tensor;

/// The farthest any filter reaches along a row.
const REACH: usize = 2;

/// One H×W plane, row-major.
#[derive(Clone, Copy)]
struct Plane<'a> {
    values: &'a [f32],
    width: usize,
    height: usize,
}

impl<'a> Plane<'a> {
    fn new(values: &'a [f32], width: usize, height: usize) -> Self {
        Self { values, width, height }
    }

    /// A plane of this one's size over `values`.
    fn like<'b>(&self, values: &'b [f32]) -> Plane<'b> {
        Plane::new(values, self.width, self.height)
    }

    fn row(&self, i: usize) -> &'a [f32] {
        &self.values[i * self.width..(i + 1) * self.width]
    }
}

/// `k` mirrored into `0..n` (scipy's `mirror`; n > the reach).
fn mirror(k: isize, n: usize) -> usize {
    let last = n as isize - 1;
    (if k < 0 {
        -k
    } else if k > last {
        2 * last - k
    } else {
        k
    }) as usize
}

/// A row's filter: `0 + Σ w · (colour − base)` over `taps`, along the row or down the columns.
struct RowFilter<'a> {
    taps: &'a [(isize, f32)],
    along_rows: bool,
}

impl RowFilter<'_> {
    /// Row `i` of the filter of `colour − base` (`base` absent: of `colour`), into `out`.
    fn apply(&self, colour: Plane, base: Option<Plane>, i: usize, out: &mut [f32]) {
        let w = colour.width;
        let difference = |r: usize, into: &mut [f32]| match base {
            Some(base) => into
                .iter_mut()
                .zip(colour.row(r).iter().zip(base.row(r)))
                .for_each(|(d, (&c, &b))| *d = c - b),
            None => into.copy_from_slice(colour.row(r)),
        };
        out.fill(0.0);
        if self.along_rows {
            // the row's differences, mirrored REACH beyond both ends
            let mut padded = vec![0f32; w + 2 * REACH];
            difference(i, &mut padded[REACH..REACH + w]);
            for k in 1..=REACH {
                padded[REACH - k] = padded[REACH + mirror(-(k as isize), w)];
                padded[REACH + w - 1 + k] = padded[REACH + mirror((w - 1 + k) as isize, w)];
            }
            for &(offset, weight) in self.taps {
                let start = (REACH as isize + offset) as usize;
                out.iter_mut()
                    .zip(&padded[start..start + w])
                    .for_each(|(o, &d)| *o += d * weight);
            }
        } else {
            let mut row = vec![0f32; w];
            for &(offset, weight) in self.taps {
                difference(mirror(i as isize + offset, colour.height), &mut row);
                out.iter_mut().zip(&row).for_each(|(o, &d)| *o += d * weight);
            }
        }
    }
}

/// New planes, `count` of H×W, filled row by row on libtorch's threads: `fill(plane, i, row)`.
fn planes(count: usize, height: usize, width: usize, fill: impl Fn(usize, usize, &mut [f32]) + Sync) -> Vec<f32> {
    let mut out = vec![0f32; count * height * width];
    for_each_row(&mut out, width, height, fill);
    out
}

/// The filter taps, as float32 (the tensor path multiplies float32 tensors by them in float32).
struct Taps {
    green: Vec<(isize, f32)>,
    neighbours: Vec<(isize, f32)>,
    mean3: Vec<(isize, f32)>,
    /// The decision windows' non-zero taps (row, column, weight), horizontal then vertical.
    windows: [Vec<(usize, usize, f32)>; 2],
}

fn taps_f32(taps: &[(i64, f64)]) -> Vec<(isize, f32)> {
    taps.iter().map(|&(o, w)| (o as isize, w as f32)).collect()
}

/// Demosaics `x` `[B, 1, H, W]` (float32, CPU, H and W ≥ 3) into `[B, 3, H, W]`.
pub fn demosaic(x: &Tensor, sites: &CfaSites, windows: &[f32; 50], refine: bool) -> PluginResult<Tensor> {
    let size = x.size();
    let (batch, height, width) = (size[0] as usize, size[2] as usize, size[3] as usize);
    let window = |k: usize| -> Vec<(usize, usize, f32)> {
        (0..25)
            .filter(|&t| windows[k * 25 + t] != 0.0)
            .map(|t| (t / 5, t % 5, windows[k * 25 + t]))
            .collect()
    };
    let taps = Taps {
        green: taps_f32(&super::GREEN_TAPS),
        neighbours: taps_f32(&super::NEIGHBOUR_TAPS),
        mean3: taps_f32(&super::MEAN3_TAPS),
        windows: [window(0), window(1)],
    };
    let n = height * width;
    with_output(x, &[size[0], 3, size[2], size[3]], |input, output| {
        for b in 0..batch {
            let mosaic = Plane::new(&input[b * n..(b + 1) * n], width, height);
            demosaic_one(mosaic, sites, &taps, refine, &mut output[3 * b * n..3 * (b + 1) * n]);
        }
    })
}

/// Per pixel of row `i`: `chosen` where `sites` holds the pixel's site, `otherwise` elsewhere.
fn pick(sites: [bool; 4], i: usize, chosen: &[f32], otherwise: &[f32], out: &mut [f32]) {
    // by column parity: the even columns' site, then the odd columns'
    let parity = [sites[(i % 2) * 2], sites[(i % 2) * 2 + 1]];
    for (column, &selected) in parity.iter().enumerate() {
        let (chosen, otherwise) = (
            chosen.iter().skip(column).step_by(2),
            otherwise.iter().skip(column).step_by(2),
        );
        let from = if selected { chosen } else { otherwise };
        out.iter_mut()
            .skip(column)
            .step_by(2)
            .zip(from)
            .for_each(|(o, &v)| *o = v);
    }
}

fn demosaic_one(x: Plane, s: &CfaSites, taps: &Taps, refine: bool, out: &mut [f32]) {
    let (h, w) = (x.height, x.width);
    let n = h * w;
    let along = |taps| RowFilter { taps, along_rows: true };
    let down = |taps| RowFilter {
        taps,
        along_rows: false,
    };
    // a directional filter: along the row where `horizontal` is set, down the column elsewhere
    let directional = |taps, colour: Plane, base: Plane, horizontal: Plane, i: usize, out: &mut [f32]| {
        let (mut rows, mut columns) = (vec![0f32; w], vec![0f32; w]);
        along(taps).apply(colour, Some(base), i, &mut rows);
        down(taps).apply(colour, Some(base), i, &mut columns);
        for ((o, (&r, &c)), &decided) in out.iter_mut().zip(rows.iter().zip(&columns)).zip(horizontal.row(i)) {
            *o = if decided != 0.0 { r } else { c };
        }
    };

    // Every plane is a full image (48 MB at 12 MP): each is dropped once no later step reads it, so
    // the next ones reuse its memory instead of touching new pages (at most 7 live instead of 17).
    // Steps 1–3 leave only the decision and the decided green.
    let decided = {
        // 1. green along rows (plane 0) and down columns (plane 1); the mosaic itself at green sites
        let directional_green = planes(2, h, w, |p, i, row| {
            let mut filtered = vec![0f32; w];
            RowFilter {
                taps: &taps.green,
                along_rows: p == 0,
            }
            .apply(x, None, i, &mut filtered);
            pick(s.green, i, x.row(i), &filtered, row);
        });
        let (green_h, green_v) = (x.like(&directional_green[..n]), x.like(&directional_green[n..]));

        // 2. the colour differences' variation two samples away, |d(j) − d(j + 2)| along rows / down
        //    columns, d = 0 at green sites and mosaic − directional green elsewhere (the taps (0, 1),
        //    (2, −1) from zero: 0 + a·1 + b·(−1) is a − b exactly, but for the sign of a zero)
        let difference = |green: Plane, r: usize, into: &mut [f32]| {
            let mut raw = vec![0f32; w];
            raw.iter_mut()
                .zip(x.row(r).iter().zip(green.row(r)))
                .for_each(|(d, (&m, &g))| *d = m - g);
            pick(s.green, r, &vec![0f32; w], &raw, into);
        };
        let variation = planes(2, h, w, |p, i, row| {
            let mut here = vec![0f32; w];
            if p == 0 {
                difference(green_h, i, &mut here);
                let interior = w - 2;
                row[..interior]
                    .iter_mut()
                    .zip(here.iter().zip(&here[2..]))
                    .for_each(|(v, (&a, &b))| *v = (a - b).abs());
                for j in interior..w {
                    row[j] = (here[j] - here[mirror(j as isize + 2, w)]).abs();
                }
            } else {
                let mut below = vec![0f32; w];
                difference(green_v, i, &mut here);
                difference(green_v, mirror(i as isize + 2, h), &mut below);
                row.iter_mut()
                    .zip(here.iter().zip(&below))
                    .for_each(|(v, (&a, &b))| *v = (a - b).abs());
            }
        });
        let (variation_h, variation_v) = (x.like(&variation[..n]), x.like(&variation[n..]));

        // 3. the decision (1: horizontal) — the vertical window's sum at least the horizontal's — and green
        let weigh = |variation: Plane, window: &[(usize, usize, f32)], i: usize, out: &mut [f32]| {
            // the window's five rows, two zeros beyond both ends; None: a row beyond the image
            let rows: Vec<Option<Vec<f32>>> = (0..5)
                .map(|r| {
                    let row = i as isize + r as isize - 2;
                    (0..h as isize).contains(&row).then(|| {
                        let mut padded = vec![0f32; w + 4];
                        padded[2..w + 2].copy_from_slice(variation.row(row as usize));
                        padded
                    })
                })
                .collect();
            out.fill(0.0);
            for &(r, c, weight) in window {
                if let Some(padded) = &rows[r] {
                    out.iter_mut()
                        .zip(&padded[c..c + w])
                        .for_each(|(o, &v)| *o += weight * v);
                }
            }
        };
        planes(2, h, w, |p, i, row| {
            let (mut sum_h, mut sum_v) = (vec![0f32; w], vec![0f32; w]);
            weigh(variation_h, &taps.windows[0], i, &mut sum_h);
            weigh(variation_v, &taps.windows[1], i, &mut sum_v);
            for (j, value) in row.iter_mut().enumerate() {
                let horizontal = sum_v[j] >= sum_h[j];
                *value = match p {
                    0 => horizontal as u8 as f32,
                    _ if horizontal => green_h.row(i)[j],
                    _ => green_v.row(i)[j],
                };
            }
        })
    };
    let (horizontal, green) = (x.like(&decided[..n]), x.like(&decided[n..]));

    // 4. red (plane 0) and blue (plane 1): the samples, then green plus the neighbours' difference to
    //    green along the row at green sites of the colour's rows, down the column at the others
    let zeros = vec![0f32; w];
    let samples = planes(2, h, w, |p, i, row| {
        pick(if p == 0 { s.red } else { s.blue }, i, x.row(i), &zeros, row);
    });
    let plus_green = |filtered: &mut [f32], i: usize| {
        filtered.iter_mut().zip(green.row(i)).for_each(|(f, &g)| *f += g);
    };
    // green plus the neighbours' difference to green by `filter`, at `sites` of red (plane 0) and blue
    let from_green = |previous: &[f32], filter: RowFilter, sites: [[bool; 4]; 2]| {
        planes(2, h, w, |p, i, row| {
            let own = Plane::new(&previous[p * n..(p + 1) * n], w, h);
            let mut filtered = vec![0f32; w];
            filter.apply(own, Some(green), i, &mut filtered);
            plus_green(&mut filtered, i);
            pick(sites[p], i, &filtered, own.row(i), row);
        })
    };
    let along_own_rows = from_green(
        &samples,
        along(&taps.neighbours),
        [s.green_in_red_rows, s.green_in_blue_rows],
    );
    drop(samples);
    let filled = from_green(
        &along_own_rows,
        down(&taps.neighbours),
        [s.green_in_blue_rows, s.green_in_red_rows],
    );
    drop(along_own_rows);
    let (red, blue) = (x.like(&filled[..n]), x.like(&filled[n..]));

    // 5. red at blue sites, then blue at red sites, along the decided direction:
    //    base + filter(colour − base)
    let onto = |sites: [bool; 4], taps, colour: Plane, base: Plane, i: usize, row: &mut [f32]| {
        let mut filtered = vec![0f32; w];
        directional(taps, colour, base, horizontal, i, &mut filtered);
        filtered.iter_mut().zip(base.row(i)).for_each(|(f, &b)| *f += b);
        pick(sites, i, &filtered, colour.row(i), row);
    };
    let red_done = planes(1, h, w, |_, i, row| onto(s.blue, &taps.neighbours, red, blue, i, row));
    let red = x.like(&red_done);
    let blue_done = planes(1, h, w, |_, i, row| onto(s.red, &taps.neighbours, blue, red, i, row));
    let blue = x.like(&blue_done);
    drop(filled);
    if !refine {
        out[..n].copy_from_slice(red.values);
        out[n..2 * n].copy_from_slice(green.values);
        out[2 * n..].copy_from_slice(blue.values);
        return;
    }

    // 6. refining: green at red and blue sites from the colour minus its smoothed difference to green
    let colour_minus = |colour: Plane, base: Plane, i: usize, into: &mut [f32]| {
        directional(&taps.mean3, colour, base, horizontal, i, into);
        into.iter_mut().zip(colour.row(i)).for_each(|(f, &c)| *f = c - *f);
    };
    let refined_green = planes(1, h, w, |_, i, row| {
        let (mut from_red, mut from_blue, mut kept) = (vec![0f32; w], vec![0f32; w], vec![0f32; w]);
        colour_minus(red, green, i, &mut from_red);
        colour_minus(blue, green, i, &mut from_blue);
        pick(s.red, i, &from_red, green.row(i), &mut kept);
        pick(s.blue, i, &from_blue, &kept, row);
    });
    let green = x.like(&refined_green);
    // red and blue at green sites from the new green: along the row in their own rows, down the column
    // in the other colour's
    let at_green = planes(2, h, w, |p, i, row| {
        let colour = if p == 0 { red } else { blue };
        let (own_rows, other_rows) = if p == 0 {
            (s.green_in_red_rows, s.green_in_blue_rows)
        } else {
            (s.green_in_blue_rows, s.green_in_red_rows)
        };
        let (mut by_row, mut by_column, mut kept) = (vec![0f32; w], vec![0f32; w], vec![0f32; w]);
        along(&taps.neighbours).apply(colour, Some(green), i, &mut by_row);
        down(&taps.neighbours).apply(colour, Some(green), i, &mut by_column);
        plus_green(&mut by_row, i);
        plus_green(&mut by_column, i);
        pick(other_rows, i, &by_column, colour.row(i), &mut kept);
        pick(own_rows, i, &by_row, &kept, row);
    });
    let (red, blue) = (x.like(&at_green[..n]), x.like(&at_green[n..]));
    // red at blue sites and blue at red sites from the smoothed red − blue difference
    for_each_row(&mut out[..n], w, h, |_, i, row| {
        onto(s.blue, &taps.mean3, red, blue, i, row)
    });
    out[n..2 * n].copy_from_slice(green.values);
    for_each_row(&mut out[2 * n..], w, h, |_, i, row| {
        let mut from_red = vec![0f32; w];
        colour_minus(red, blue, i, &mut from_red);
        pick(s.red, i, &from_red, blue.row(i), row);
    });
}
