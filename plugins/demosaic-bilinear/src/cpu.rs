//! Bilinear demosaicing for inference on the CPU: [`super::DemosaicBilinear::demosaic_by_filters`] in
//! one pass per output row. The tensor path masks the mosaic into three sparse planes, copies two of
//! them out, filters them and joins the results; here each output row reads the mosaic rows it needs
//! and applies the same filters to the masked values directly.
//!
//! The float32 operations are the tensor path's, in its order (the mask as a product with 1 or 0;
//! red and blue by the separable `[½, 1, ½]`, down the columns first; green by the 3×3 cross, its
//! taps row by row; each sum from zero), so both give the same bits (tests).

use l2l_ops::cpu::{border_sources, for_each_row, with_output};
use l2l_ops::Padding;
use l2l_plugin_sdk::{CfaPattern, PluginResult};
use tch::Tensor;

/// Demosaics `x` `[B, 1, H, W]` (float32, CPU) into `[B, 3, H, W]` over a `padding` border.
pub fn demosaic(x: &Tensor, pattern: CfaPattern, padding: Padding) -> PluginResult<Tensor> {
    let size = x.size();
    let (h, w) = (size[2] as usize, size[3] as usize);
    let colours = pattern.colours();
    // extended by one on both sides: position p reads row/column sources[p] (None: zero)
    let (rows, columns) = (border_sources(h, 1, padding), border_sources(w, 1, padding));
    // the mask of each colour on a row of either parity, extended like the rows (1: the colour's site)
    let masks: Vec<[Vec<f32>; 2]> = (0..3)
        .map(|colour| {
            std::array::from_fn(|parity| {
                let site = |c: usize| colours[parity * 2 + c % 2] == colour;
                columns
                    .iter()
                    .map(|c| c.map_or(0.0, |c| if site(c) { 1.0 } else { 0.0 }))
                    .collect()
            })
        })
        .collect();
    // out += weight · values, element by element
    let add = |out: &mut [f32], values: &[f32], weight: f32| {
        out.iter_mut().zip(values).for_each(|(o, &v)| *o += weight * v);
    };
    with_output(x, &[size[0], 3, size[2], size[3]], |input, output| {
        for_each_row(output, w, h, |plane, i, out_row| {
            let (b, colour) = (plane / 3, plane % 3);
            let mosaic = &input[b * h * w..(b + 1) * h * w];
            // row r of the sparse plane of `colour` (the mosaic times the mask), extended by one column
            // on both sides; None: a row of the zero border
            let sparse = |r: Option<usize>| -> Option<Vec<f32>> {
                let r = r?;
                let row = &mosaic[r * w..(r + 1) * w];
                let values = columns.iter().map(|c| c.map_or(0.0, |c| row[c]));
                Some(values.zip(&masks[colour][r % 2]).map(|(v, &m)| v * m).collect())
            };
            let (above, here, below) = (sparse(rows[i]), sparse(rows[i + 1]), sparse(rows[i + 2]));
            let here = here.unwrap_or_else(|| vec![0.0; w + 2]);
            out_row.fill(0.0);
            if colour == 1 {
                // the cross [[0, ¼, 0], [¼, 1, ¼], [0, ¼, 0]], its taps row by row
                if let Some(above) = &above {
                    add(out_row, &above[1..w + 1], 0.25);
                }
                add(out_row, &here[..w], 0.25);
                add(out_row, &here[1..w + 1], 1.0);
                add(out_row, &here[2..], 0.25);
                if let Some(below) = &below {
                    add(out_row, &below[1..w + 1], 0.25);
                }
            } else {
                // [½, 1, ½] down the columns (the border's columns too), then along the row
                let mut vertical = vec![0f32; w + 2];
                for (source, weight) in [(&above, 0.5f32), (&Some(here), 1.0), (&below, 0.5)] {
                    if let Some(source) = source {
                        vertical.iter_mut().zip(source).for_each(|(v, &s)| *v += s * weight);
                    }
                }
                // the vertical sums extended as the row: border columns read the row's own sums
                let extended: Vec<f32> = columns.iter().map(|c| c.map_or(0.0, |c| vertical[c + 1])).collect();
                out_row.iter_mut().zip(&extended[..w]).for_each(|(o, &v)| *o += v * 0.5);
                out_row
                    .iter_mut()
                    .zip(&extended[1..w + 1])
                    .for_each(|(o, &v)| *o += v * 1.0);
                out_row.iter_mut().zip(&extended[2..]).for_each(|(o, &v)| *o += v * 0.5);
            }
        })
    })
}
