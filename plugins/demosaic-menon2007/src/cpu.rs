//! Menon2007 for inference on the CPU: the same steps as the tensor path ([`super`]) on float32
//! planes, with each step's selections and filters fused into one pass over the image. The tensor path
//! spends most of its time writing and reading back whole intermediate planes (some forty of them at
//! 12 MP); here each filter is evaluated only where its result is selected, straight from its inputs.
//!
//! Every value is computed with the tensor path's float32 operations in the same order (a filter is
//! `0 + Σ weight · (colour − base)` over its taps in order, mirrored borders; a decision window is the
//! same correlation over its non-zero taps, zero border), so both paths give the same bits, decisions
//! included (tests).

use l2l_ops::cpu::{for_each_row, with_output};
use l2l_ops::CfaSites;
use l2l_plugin_api::PluginResult;
use tch::Tensor;

/// One colour plane of one image, H×W row-major.
struct Plane<'a> {
    values: &'a [f32],
    width: usize,
    height: usize,
}

impl<'a> Plane<'a> {
    fn new(values: &'a [f32], width: usize, height: usize) -> Self {
        Self { values, width, height }
    }

    fn at(&self, i: usize, j: usize) -> f32 {
        self.values[i * self.width + j]
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

/// `0 + Σ w · (colour − base)` over `taps` along a row (`along_rows`) or a column at (i, j).
fn filter_difference(colour: &Plane, base: &Plane, i: usize, j: usize, taps: &[(isize, f32)], along_rows: bool) -> f32 {
    let mut sum = 0.0f32;
    for &(offset, weight) in taps {
        let (r, c) = if along_rows {
            (i, mirror(j as isize + offset, colour.width))
        } else {
            (mirror(i as isize + offset, colour.height), j)
        };
        sum += (colour.at(r, c) - base.at(r, c)) * weight;
    }
    sum
}

/// The CFA site of pixel (i, j): `(i % 2) · 2 + j % 2`.
fn site(i: usize, j: usize) -> usize {
    (i % 2) * 2 + j % 2
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
            let mosaic = Plane {
                values: &input[b * n..(b + 1) * n],
                width,
                height,
            };
            demosaic_one(&mosaic, sites, &taps, refine, &mut output[3 * b * n..3 * (b + 1) * n]);
        }
    })
}

fn demosaic_one(x: &Plane, s: &CfaSites, taps: &Taps, refine: bool, out: &mut [f32]) {
    let (h, w) = (x.height, x.width);
    let n = h * w;
    let zero = vec![0f32; n];
    let zero = Plane::new(&zero, w, h);

    // 1. green along rows (plane 0) and columns (plane 1); the mosaic itself at green sites
    let directional = planes(2, h, w, |p, i, row| {
        for (j, value) in row.iter_mut().enumerate() {
            *value = if s.green[site(i, j)] {
                x.at(i, j)
            } else {
                filter_difference(x, &zero, i, j, &taps.green, p == 0)
            };
        }
    });
    let (green_h, green_v) = (Plane::new(&directional[..n], w, h), Plane::new(&directional[n..], w, h));

    // 2. the colour differences' variation two samples away: |d(j) − d(j + 2)| along rows / columns,
    //    d = 0 at green sites, mosaic − directional green elsewhere
    let difference = |green: &Plane, i: usize, j: usize| -> f32 {
        if s.green[site(i, j)] {
            0.0
        } else {
            x.at(i, j) - green.at(i, j)
        }
    };
    let variation = planes(2, h, w, |p, i, row| {
        let (green, along_rows) = if p == 0 { (&green_h, true) } else { (&green_v, false) };
        for (j, value) in row.iter_mut().enumerate() {
            let (i2, j2) = if along_rows { (i, mirror(j as isize + 2, w)) } else { (mirror(i as isize + 2, h), j) };
            // the taps (0, 1), (2, −1) from zero: 0 + a·1 + b·(−1) is a − b exactly, but for the sign of a zero
            *value = (difference(green, i, j) - difference(green, i2, j2)).abs();
        }
    });
    let (variation_h, variation_v) = (Plane::new(&variation[..n], w, h), Plane::new(&variation[n..], w, h));

    // 3. the decision (1: horizontal) — the vertical window's sum at least the horizontal's — and green
    let weigh = |variation: &Plane, window: &[(usize, usize, f32)], i: usize, j: usize| -> f32 {
        let mut sum = 0.0f32;
        for &(r, c, weight) in window {
            let (row, col) = (i as isize + r as isize - 2, j as isize + c as isize - 2);
            if (0..h as isize).contains(&row) && (0..w as isize).contains(&col) {
                sum += weight * variation.at(row as usize, col as usize);
            }
        }
        sum
    };
    let decided = planes(2, h, w, |p, i, row| {
        for (j, value) in row.iter_mut().enumerate() {
            let horizontal = weigh(&variation_v, &taps.windows[1], i, j) >= weigh(&variation_h, &taps.windows[0], i, j);
            *value = match p {
                0 => horizontal as u8 as f32,
                _ if horizontal => green_h.at(i, j),
                _ => green_v.at(i, j),
            };
        }
    });
    let (horizontal, green) = (Plane::new(&decided[..n], w, h), Plane::new(&decided[n..], w, h));
    let rows_at = |i: usize, j: usize| horizontal.at(i, j) != 0.0;

    // 4. red (plane 0) and blue (plane 1): the samples, then green plus the neighbours' difference to
    //    green along the row at green sites of the colour's rows, along the column at the others
    let (red_sites, blue_sites) = (s.red, s.blue);
    let samples = planes(2, h, w, |p, i, row| {
        let sites = if p == 0 { red_sites } else { blue_sites };
        for (j, value) in row.iter_mut().enumerate() {
            *value = if sites[site(i, j)] { x.at(i, j) } else { 0.0 };
        }
    });
    let along_own_rows = planes(2, h, w, |p, i, row| {
        let own = Plane::new(&samples[p * n..(p + 1) * n], w, h);
        let own_rows = if p == 0 { s.green_in_red_rows } else { s.green_in_blue_rows };
        for (j, value) in row.iter_mut().enumerate() {
            *value = if own_rows[site(i, j)] {
                green.at(i, j) + filter_difference(&own, &green, i, j, &taps.neighbours, true)
            } else {
                own.at(i, j)
            };
        }
    });
    let filled = planes(2, h, w, |p, i, row| {
        let own = Plane::new(&along_own_rows[p * n..(p + 1) * n], w, h);
        let other_rows = if p == 0 { s.green_in_blue_rows } else { s.green_in_red_rows };
        for (j, value) in row.iter_mut().enumerate() {
            *value = if other_rows[site(i, j)] {
                green.at(i, j) + filter_difference(&own, &green, i, j, &taps.neighbours, false)
            } else {
                own.at(i, j)
            };
        }
    });
    let (red, blue) = (Plane::new(&filled[..n], w, h), Plane::new(&filled[n..], w, h));

    // 5. red at blue sites, then blue at red sites, along the decided direction
    let red_done = planes(1, h, w, |_, i, row| {
        for (j, value) in row.iter_mut().enumerate() {
            *value = if blue_sites[site(i, j)] {
                blue.at(i, j) + filter_difference(&red, &blue, i, j, &taps.neighbours, rows_at(i, j))
            } else {
                red.at(i, j)
            };
        }
    });
    let red = Plane::new(&red_done, w, h);
    let blue_done = planes(1, h, w, |_, i, row| {
        for (j, value) in row.iter_mut().enumerate() {
            *value = if red_sites[site(i, j)] {
                red.at(i, j) + filter_difference(&blue, &red, i, j, &taps.neighbours, rows_at(i, j))
            } else {
                blue.at(i, j)
            };
        }
    });
    let blue = Plane::new(&blue_done, w, h);
    if !refine {
        out[..n].copy_from_slice(red.values);
        out[n..2 * n].copy_from_slice(green.values);
        out[2 * n..].copy_from_slice(blue.values);
        return;
    }

    // 6. refining: green at red and blue sites from the colour minus its smoothed difference to green
    let refined_green = planes(1, h, w, |_, i, row| {
        for (j, value) in row.iter_mut().enumerate() {
            let k = site(i, j);
            *value = if red_sites[k] {
                red.at(i, j) - filter_difference(&red, &green, i, j, &taps.mean3, rows_at(i, j))
            } else if blue_sites[k] {
                blue.at(i, j) - filter_difference(&blue, &green, i, j, &taps.mean3, rows_at(i, j))
            } else {
                green.at(i, j)
            };
        }
    });
    let green = Plane::new(&refined_green, w, h);
    // red and blue at green sites from the new green: along the column in the rows of the other colour,
    // along the row in their own
    let at_green = planes(2, h, w, |p, i, row| {
        let colour = if p == 0 { &red } else { &blue };
        let (own_rows, other_rows) = if p == 0 {
            (s.green_in_red_rows, s.green_in_blue_rows)
        } else {
            (s.green_in_blue_rows, s.green_in_red_rows)
        };
        for (j, value) in row.iter_mut().enumerate() {
            let k = site(i, j);
            *value = if own_rows[k] {
                green.at(i, j) + filter_difference(colour, &green, i, j, &taps.neighbours, true)
            } else if other_rows[k] {
                green.at(i, j) + filter_difference(colour, &green, i, j, &taps.neighbours, false)
            } else {
                colour.at(i, j)
            };
        }
    });
    let (red, blue) = (Plane::new(&at_green[..n], w, h), Plane::new(&at_green[n..], w, h));
    // red at blue sites and blue at red sites from the smoothed red − blue difference
    for_each_row(&mut out[..n], w, h, |_, i, row| {
        for (j, value) in row.iter_mut().enumerate() {
            *value = if blue_sites[site(i, j)] {
                blue.at(i, j) + filter_difference(&red, &blue, i, j, &taps.mean3, rows_at(i, j))
            } else {
                red.at(i, j)
            };
        }
    });
    out[n..2 * n].copy_from_slice(green.values);
    for_each_row(&mut out[2 * n..], w, h, |_, i, row| {
        for (j, value) in row.iter_mut().enumerate() {
            *value = if red_sites[site(i, j)] {
                red.at(i, j) - filter_difference(&red, &blue, i, j, &taps.mean3, rows_at(i, j))
            } else {
                blue.at(i, j)
            };
        }
    });
}
