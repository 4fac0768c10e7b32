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
    let t = if t.size()[0] >= 3 { t.f_narrow(0, 0, 3)? } else { t.f_narrow(0, 0, 1)?.f_expand([3, -1, -1], false)? };
    let t = if symmetric {
        let scale = t.f_abs()?.f_max()?.f_clamp_min(1e-12)?;
        t.f_div(&scale)?.f_mul_scalar(0.5)?.f_add_scalar(0.5)?
    } else {
        let (low, high) = (t.f_min()?, t.f_max()?);
        t.f_sub(&low)?.f_div(&high.f_sub(&low)?.f_clamp_min(1e-12)?)?
    };
    Ok(t.f_unsqueeze(0)?.f_upsample_nearest2d([h, w], None, None)?.f_squeeze_dim(0)?)
}

/// Writes a grid of images (rows × columns of `[C, H, W]` tensors) as one PNG, every tile scaled to its
/// own range (`symmetric` for signed data such as gradients) and to the largest tile's size.
pub fn write_grid(path: &Path, rows: &[Vec<Tensor>], symmetric: bool) -> Result<()> {
    let (mut h, mut w) = (1, 1);
    for t in rows.iter().flatten() {
        let s = t.size();
        h = h.max(s[s.len() - 2]);
        w = w.max(s[s.len() - 1]);
    }
    let mut lines = Vec::new();
    for row in rows {
        let tiles = row.iter().map(|t| displayable(t, h, w, symmetric)).collect::<Result<Vec<_>>>()?;
        lines.push(Tensor::f_cat(&tiles, 2)?);
    }
    if lines.is_empty() {
        return Ok(());
    }
    write_image(path, &Tensor::f_cat(&lines, 1)?, 8)
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
            let (low, high) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
            let (low, high) = if low.is_finite() { (low, if high > low { high } else { low + 1.0 }) } else { (0.0, 1.0) };
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
                for (split, style) in [("train", Palette99::pick(2 * i).stroke_width(2)), ("validation", Palette99::pick(2 * i + 1).stroke_width(2))] {
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
            chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
        }
        root.present()?;
    }
    let height = 360 * metrics.len().max(1) as u32;
    write_rgb_buffer(path, &bytes, 900, height as i64)
}

/// A heatmap of `values` (rows × columns, `None` drawn grey) with the value in every cell and the row
/// and column names, as a PNG.
pub fn plot_heatmap(path: &Path, title: &str, rows: &[String], columns: &[String], values: &[Vec<Option<f64>>]) -> Result<()> {
    use plotters::prelude::*;
    ensure_font();
    let longest = |names: &[String]| names.iter().map(|n| n.chars().count()).max().unwrap_or(0) as i32;
    let (left, top, cell) = (20 + 7 * longest(rows), 40 + 7 * longest(columns), 70i32);
    let width = (left + cell * columns.len() as i32 + 20).max(400) as u32;
    let height = (top + cell * rows.len() as i32 + 20) as u32;
    let mut bytes = vec![0u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut bytes, (width, height)).into_drawing_area();
        root.fill(&WHITE)?;
        root.draw(&Text::new(title.to_string(), (10, 10), ("sans-serif", 20).into_font()))?;
        let present: Vec<f64> = values.iter().flatten().flatten().copied().collect();
        let (low, high) = present.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
        let span = if high > low { high - low } else { 1.0 };
        for (i, name) in rows.iter().enumerate() {
            let y = top + cell * i as i32;
            root.draw(&Text::new(name.clone(), (5, y + cell / 2 - 6), ("sans-serif", 12).into_font()))?;
            for (j, value) in values[i].iter().enumerate() {
                let x = left + cell * j as i32;
                let colour = match value {
                    Some(v) => {
                        let t = (v - low) / span;
                        RGBColor((40.0 + 200.0 * t) as u8, (60.0 + 140.0 * t) as u8, (140.0 - 100.0 * t) as u8)
                    }
                    None => RGBColor(200, 200, 200),
                };
                root.draw(&Rectangle::new([(x, y), (x + cell - 2, y + cell - 2)], colour.filled()))?;
                if let Some(v) = value {
                    root.draw(&Text::new(format!("{v:.3}"), (x + 10, y + cell / 2 - 6), ("sans-serif", 13).into_font().color(&WHITE)))?;
                }
            }
        }
        for (j, name) in columns.iter().enumerate() {
            let x = left + cell * j as i32 + cell / 2;
            let style = ("sans-serif", 12).into_font().transform(FontTransform::Rotate270);
            root.draw(&Text::new(name.clone(), (x - 6, top - 5), style))?;
        }
        root.present()?;
    }
    write_rgb_buffer(path, &bytes, width as i64, height as i64)
}

/// Curves with a ± band: for every series, its mean per epoch (from 1) and standard deviation, as a PNG.
pub fn plot_mean_curves(path: &Path, title: &str, series: &[(String, Vec<f64>, Vec<f64>)]) -> Result<()> {
    use plotters::prelude::*;
    ensure_font();
    let epochs = series.iter().map(|(_, m, _)| m.len()).max().unwrap_or(1).max(2);
    let values: Vec<f64> = series.iter().flat_map(|(_, m, s)| m.iter().zip(s).flat_map(|(m, s)| [m - s, m + s])).collect();
    let (low, high) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
    let (low, high) = if low.is_finite() && high > low { (low, high) } else { (0.0, 1.0) };
    let (width, height) = (900u32, 480u32);
    let mut bytes = vec![0u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut bytes, (width, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d(1usize..epochs, low..high)?;
        chart.configure_mesh().x_desc("epoch").draw()?;
        for (i, (name, mean, std)) in series.iter().enumerate() {
            let colour = Palette99::pick(i).to_rgba();
            let mut band: Vec<(usize, f64)> = mean.iter().zip(std).enumerate().map(|(e, (m, s))| (e + 1, m + s)).collect();
            band.extend(mean.iter().zip(std).enumerate().rev().map(|(e, (m, s))| (e + 1, m - s)));
            chart.draw_series(std::iter::once(Polygon::new(band, colour.mix(0.2).filled())))?;
            chart
                .draw_series(LineSeries::new(mean.iter().enumerate().map(|(e, m)| (e + 1, *m)), colour.stroke_width(2)))?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        }
        chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
        root.present()?;
    }
    write_rgb_buffer(path, &bytes, width as i64, height as i64)
}

/// A grouped bar chart: for every label, one bar per series, as a PNG.
pub fn plot_bars(path: &Path, title: &str, labels: &[String], series: &[(&str, Vec<f64>)]) -> Result<()> {
    use plotters::prelude::*;
    ensure_font();
    let (width, height) = ((120 + 90 * labels.len().max(1) * series.len().max(1)).clamp(500, 1800) as u32, 420u32);
    let mut bytes = vec![0u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut bytes, (width, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let high = series.iter().flat_map(|(_, v)| v.iter().copied()).fold(0.0f64, f64::max);
        let low = series.iter().flat_map(|(_, v)| v.iter().copied()).fold(0.0f64, f64::min);
        let slots = labels.len() * (series.len() + 1);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(60)
            .y_label_area_size(60)
            .build_cartesian_2d(0..slots.max(1), low..(if high > low { high * 1.05 } else { low + 1.0 }))?;
        let names = labels.to_vec();
        let per = series.len() + 1;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(slots.max(1))
            .x_label_formatter(&move |x| if x % per == per / 2 { names.get(x / per).cloned().unwrap_or_default() } else { String::new() })
            .draw()?;
        for (s, (name, values)) in series.iter().enumerate() {
            let colour = Palette99::pick(s).to_rgba();
            chart
                .draw_series(values.iter().enumerate().map(|(i, v)| {
                    let x = i * per + s;
                    Rectangle::new([(x, 0.0), (x + 1, *v)], colour.filled())
                }))?
                .label(*name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled()));
        }
        chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
        root.present()?;
    }
    write_rgb_buffer(path, &bytes, width as i64, height as i64)
}

/// Writes an interleaved 8-bit RGB buffer (as plotters draws it) as a PNG.
fn write_rgb_buffer(path: &Path, bytes: &[u8], width: i64, height: i64) -> Result<()> {
    let image = Tensor::from_slice(bytes)
        .f_view([height, width, 3])?
        .f_permute([2, 0, 1])?
        .f_to_kind(Kind::Float)?
        .f_div_scalar(255.0)?;
    write_image(path, &image, 8)
}

/// Registers DejaVu Sans (or another system TrueType font) as plotters' sans-serif once; without one
/// the charts are drawn without text.
fn ensure_font() {
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
