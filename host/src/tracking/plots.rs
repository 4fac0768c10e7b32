//! Pictures of runs: image grids of tensors (stage outputs, gradients, predictions), learning curves,
//! metric matrices and bar charts, as PNG.

use super::metrics::MetricsRow;
use crate::imageio::write_image;
use anyhow::Result;
use std::path::Path;
use tch::{Kind, Tensor};

/// `t` `[C, H, W]` as a displayable RGB `[3, h, w]` in [0, 1]: one channel as grey, the first three
/// otherwise; scaled to its own range (`symmetric`: zero at mid grey, for gradients) and resized by
/// nearest neighbour to `h`×`w`.
fn displayable(t: &Tensor, h: i64, w: i64, symmetric: bool) -> Result<Tensor> {
    let t = t.f_detach()?.f_to_device(tch::Device::Cpu)?.f_to_kind(Kind::Float)?;
    let t = if t.size()[0] >= 3 {
        t.f_narrow(0, 0, 3)?
    } else {
        t.f_narrow(0, 0, 1)?.f_expand([3, -1, -1], false)?
    };
    let t = if symmetric {
        let scale = t.f_abs()?.f_max()?.f_clamp_min(1e-12)?;
        t.f_div(&scale)?.f_mul_scalar(0.5)?.f_add_scalar(0.5)?
    } else {
        let (low, high) = (t.f_min()?, t.f_max()?);
        t.f_sub(&low)?.f_div(&high.f_sub(&low)?.f_clamp_min(1e-12)?)?
    };
    Ok(t.f_unsqueeze(0)?
        .f_upsample_nearest2d([h, w], None, None)?
        .f_squeeze_dim(0)?)
}

/// Writes a grid of images (rows × columns of `[C, H, W]` tensors) as one PNG under a strip of column
/// `titles`, every tile scaled to its own range (`symmetric` for signed data such as gradients) and
/// to the largest tile's size (at least 96 pixels wide, so that a title fits).
pub fn write_grid(path: &Path, titles: &[String], rows: &[Vec<Tensor>], symmetric: bool) -> Result<()> {
    let (mut h, mut w) = (1, 1);
    for t in rows.iter().flatten() {
        let s = t.size();
        h = h.max(s[s.len() - 2]);
        w = w.max(s[s.len() - 1]);
    }
    if w < 96 {
        h = h * 96 / w;
        w = 96;
    }
    let mut lines = Vec::new();
    for row in rows {
        let tiles = row
            .iter()
            .map(|t| displayable(t, h, w, symmetric))
            .collect::<Result<Vec<_>>>()?;
        lines.push(Tensor::f_cat(&tiles, 2)?);
    }
    let Some(first) = lines.first() else { return Ok(()) };
    lines.insert(0, title_strip(titles, w, first.size()[2])?);
    write_image(path, &Tensor::f_cat(&lines, 1)?, 8)
}

/// A white strip `[3, 20, width]` with `titles[k]` over the column starting at `k × column`,
/// shortened with "…" to fit.
fn title_strip(titles: &[String], column: i64, width: i64) -> Result<Tensor> {
    use plotters::prelude::*;
    ensure_font();
    let height = 20i64;
    let mut bytes = vec![255u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut bytes, (width as u32, height as u32)).into_drawing_area();
        let fits = (column as usize).saturating_sub(6) / 7;
        for (k, title) in titles.iter().enumerate() {
            let text = if title.chars().count() > fits {
                format!("{}…", title.chars().take(fits.saturating_sub(1)).collect::<String>())
            } else {
                title.clone()
            };
            root.draw(&Text::new(
                text,
                (k as i32 * column as i32 + 3, 3),
                ("sans-serif", 12).into_font(),
            ))?;
        }
        root.present()?;
    }
    Ok(Tensor::from_slice(&bytes)
        .f_view([height, width, 3])?
        .f_permute([2, 0, 1])?
        .f_to_kind(Kind::Float)?
        .f_div_scalar(255.0)?)
}

/// Learning curves: for every metric in `metrics`, its train and validation values per epoch (one
/// line per fold and split), as a PNG chart.
pub fn plot_learning_curves(path: &Path, rows: &[MetricsRow], metrics: &[&str]) -> Result<()> {
    use plotters::prelude::*;
    ensure_font();
    let epochs = rows.iter().map(|r| r.epoch).max().unwrap_or(1).max(2);
    let mut bytes = vec![0u8; 900 * 360 * metrics.len().max(1) * 3];
    {
        let root = BitMapBackend::with_buffer(&mut bytes, (900, 360 * metrics.len().max(1) as u32)).into_drawing_area();
        root.fill(&WHITE)?;
        let panels = root.split_evenly((metrics.len().max(1), 1));
        for (panel, metric) in panels.iter().zip(metrics) {
            let values: Vec<f64> = rows.iter().filter_map(|r| r.values.get(*metric).copied()).collect();
            let (low, high) = values
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
            let (low, high) = if low.is_finite() {
                (low, if high > low { high } else { low + 1.0 })
            } else {
                (0.0, 1.0)
            };
            let mut chart = ChartBuilder::on(panel)
                .caption(*metric, ("sans-serif", 20))
                .margin(10)
                .x_label_area_size(30)
                .y_label_area_size(50)
                .build_cartesian_2d(1usize..epochs, low..high)?;
            chart.configure_mesh().x_desc("epoch").draw()?;
            let folds: Vec<usize> = {
                let mut f: Vec<usize> = rows.iter().map(|r| r.fold).collect();
                f.dedup();
                f
            };
            for (i, fold) in folds.iter().enumerate() {
                for (split, style) in [
                    ("train", series_colour(2 * i).stroke_width(2)),
                    ("validation", series_colour(2 * i + 1).stroke_width(2)),
                ] {
                    let points: Vec<(usize, f64)> = rows
                        .iter()
                        .filter(|r| r.fold == *fold && r.split == split)
                        .filter_map(|r| r.values.get(*metric).map(|v| (r.epoch, *v)))
                        .collect();
                    if points.is_empty() {
                        continue;
                    }
                    let color = style.color;
                    chart
                        .draw_series(LineSeries::new(points, style))?
                        .label(format!("fold {fold} {split}"))
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
                }
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()?;
        }
        root.present()?;
    }
    let height = 360 * metrics.len().max(1) as u32;
    write_rgb_buffer(path, &bytes, 900, height as i64)
}

/// Curves with a ± band: for every series, its mean per epoch (from 1) and standard deviation, as a
/// PNG titled `title` with the y axis `y_label`; bands are cut to `bounds` (a metric's [0, 1]), one
/// colour per series, the legend beside the chart; `baselines` (a trivial predictor's level) dashed.
pub fn plot_mean_curves(
    path: &Path,
    title: &str,
    y_label: &str,
    series: &[(String, Vec<f64>, Vec<f64>)],
    bounds: (f64, f64),
    baselines: &[(&str, f64)],
) -> Result<()> {
    use plotters::prelude::*;
    ensure_font();
    let clamp = |v: f64| v.clamp(bounds.0, bounds.1);
    let epochs = series.iter().map(|(_, m, _)| m.len()).max().unwrap_or(1).max(2);
    let values: Vec<f64> = series
        .iter()
        .flat_map(|(_, m, s)| m.iter().zip(s).flat_map(|(m, s)| [clamp(m - s), clamp(m + s)]))
        .chain(baselines.iter().map(|(_, level)| clamp(*level)))
        .collect();
    let (low, high) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
    let (low, high) = if low.is_finite() && high > low {
        (low, high)
    } else {
        bounds
    };
    let pad = (high - low) * 0.04;
    let (width, height, legend) = (1000u32, 480u32, 190u32);
    let mut bytes = vec![0u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut bytes, (width, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let (plot_area, legend_area) = root.split_horizontally(width - legend);
        let mut chart = ChartBuilder::on(&plot_area)
            .caption(title, ("sans-serif", 17))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(
                1usize..epochs,
                (low - pad).max(bounds.0 - pad)..(high + pad).min(bounds.1 + pad),
            )?;
        chart.configure_mesh().x_desc("epoch").y_desc(y_label).draw()?;
        for (i, (name, mean, std)) in series.iter().enumerate() {
            let colour = series_colour(i).to_rgba();
            let mut band: Vec<(usize, f64)> = mean
                .iter()
                .zip(std)
                .enumerate()
                .map(|(e, (m, s))| (e + 1, clamp(m + s)))
                .collect();
            band.extend(
                mean.iter()
                    .zip(std)
                    .enumerate()
                    .rev()
                    .map(|(e, (m, s))| (e + 1, clamp(m - s))),
            );
            chart.draw_series(std::iter::once(Polygon::new(band, colour.mix(0.18).filled())))?;
            chart.draw_series(LineSeries::new(
                mean.iter().enumerate().map(|(e, m)| (e + 1, *m)),
                colour.stroke_width(2),
            ))?;
            let y = 50 + 24 * i as i32;
            legend_area.draw(&PathElement::new(vec![(8, y + 6), (34, y + 6)], colour.stroke_width(3)))?;
            legend_area.draw(&Text::new(name.clone(), (40, y), ("sans-serif", 13).into_font()))?;
        }
        for (k, (name, level)) in baselines.iter().enumerate() {
            let style = BASELINE.stroke_width(2);
            chart.draw_series(DashedLineSeries::new([(1, *level), (epochs, *level)], 8, 6, style))?;
            baseline_legend(&legend_area, name, *level, 50 + 24 * (series.len() + k) as i32, 13)?;
        }
        legend_area.draw(&Text::new(
            "band: ± std over models",
            (8, 50 + 24 * (series.len() + baselines.len()) as i32),
            ("sans-serif", 11).into_font().color(&RGBColor(90, 90, 90)),
        ))?;
        root.present()?;
    }
    write_rgb_buffer(path, &bytes, width as i64, height as i64)
}

/// The colour of a trivial predictor's level (dashed), apart from every series colour.
pub(super) const BASELINE: plotters::style::RGBColor = plotters::style::RGBColor(120, 120, 120);

/// A trivial predictor's legend entry at height `y`: a dashed sample and "name level".
pub(super) fn baseline_legend<DB: plotters::prelude::DrawingBackend>(
    area: &plotters::prelude::DrawingArea<DB, plotters::coord::Shift>,
    name: &str,
    level: f64,
    y: i32,
    font: u32,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    use plotters::prelude::*;
    let style = BASELINE.stroke_width(2);
    area.draw(&PathElement::new(vec![(8, y + 6), (16, y + 6)], style))?;
    area.draw(&PathElement::new(vec![(24, y + 6), (34, y + 6)], style))?;
    area.draw(&Text::new(
        format!("{name} {level:.3}"),
        (40, y),
        ("sans-serif", font).into_font(),
    ))?;
    Ok(())
}

/// The `i`th of twelve colours that stay apart from each other and readable on white (Tableau's ten,
/// then black and navy), enough for the 12 published pipelines.
pub(super) fn series_colour(i: usize) -> plotters::style::RGBColor {
    const COLOURS: [(u8, u8, u8); 12] = [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
        (0, 0, 0),
        (0, 0, 110),
    ];
    let (r, g, b) = COLOURS[i % COLOURS.len()];
    plotters::style::RGBColor(r, g, b)
}

/// Writes an interleaved 8-bit RGB buffer (as plotters draws it) as a PNG.
pub(super) fn write_rgb_buffer(path: &Path, bytes: &[u8], width: i64, height: i64) -> Result<()> {
    let image = Tensor::from_slice(bytes)
        .f_view([height, width, 3])?
        .f_permute([2, 0, 1])?
        .f_to_kind(Kind::Float)?
        .f_div_scalar(255.0)?;
    write_image(path, &image, 8)
}

/// Registers DejaVu Sans (or another system TrueType font) as plotters' sans-serif once; without one
/// the charts are drawn without text.
pub(super) fn ensure_font() {
    static FONT: std::sync::Once = std::sync::Once::new();
    FONT.call_once(|| {
        let candidates = [
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/TTF/DejaVuSans.ttf",
            "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        ];
        if let Some(bytes) = candidates.iter().find_map(|p| std::fs::read(p).ok()) {
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, bytes).is_err() {
                tracing::warn!("could not register a font for charts; they will have no text");
            }
        } else {
            tracing::warn!("no TrueType font found for charts; they will have no text");
        }
    });
}
