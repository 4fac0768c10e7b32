//! Charts of estimates with intervals: a matrix of cells (value and 95 % interval in every cell, a
//! colour bar, labels wrapped to fit) and bars with error bars. Sized to their labels, nothing
//! drawn over anything else.

use super::plots::{baseline_legend, ensure_font, series_colour, write_rgb_buffer, BASELINE};
use crate::uncertainty::Estimate;
use anyhow::Result;
use plotters::prelude::*;
use std::path::Path;

/// Pixels per character of the 12-px label font (DejaVu Sans, generous).
const CHAR: i32 = 7;
/// Line height of wrapped labels.
const LINE: i32 = 15;

/// `name` in lines of at most `width` characters, broken at `_`, `-` or spaces where possible.
fn wrap(name: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for part in name.split_inclusive(['_', '-', ' ']) {
        if !current.is_empty() && current.chars().count() + part.chars().count() > width {
            lines.push(std::mem::take(&mut current));
        }
        current.push_str(part);
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

/// How a matrix chart maps its range to colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColourScale {
    /// Low to high, dark blue → green → yellow (viridis' anchor colours): accuracies and IoUs.
    Sequential,
    /// Blue below the range's middle, white at it, red above (ColorBrewer's RdBu, reversed): signed
    /// differences such as drops, where the middle (zero) means "no change".
    Diverging,
}

impl ColourScale {
    /// The colour of `t` in [0, 1] (clamped), interpolated between the scale's anchor colours.
    fn colour(self, t: f64) -> RGBColor {
        const VIRIDIS: [(f64, f64, f64); 5] = [
            (68.0, 1.0, 84.0),
            (59.0, 82.0, 139.0),
            (33.0, 145.0, 140.0),
            (94.0, 201.0, 98.0),
            (253.0, 231.0, 37.0),
        ];
        const BLUE_WHITE_RED: [(f64, f64, f64); 7] = [
            (33.0, 102.0, 172.0),
            (103.0, 169.0, 207.0),
            (209.0, 229.0, 240.0),
            (247.0, 247.0, 247.0),
            (253.0, 219.0, 199.0),
            (239.0, 138.0, 98.0),
            (178.0, 24.0, 43.0),
        ];
        let anchors: &[(f64, f64, f64)] = match self {
            Self::Sequential => &VIRIDIS,
            Self::Diverging => &BLUE_WHITE_RED,
        };
        let last = (anchors.len() - 1) as f64;
        let t = t.clamp(0.0, 1.0) * last;
        let i = (t.floor() as usize).min(anchors.len() - 2);
        let f = t - i as f64;
        let (a, b) = (anchors[i], anchors[i + 1]);
        let mix = |x: f64, y: f64| (x + (y - x) * f).round() as u8;
        RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }
}

/// Black or white, whichever reads on `colour`.
fn text_on(colour: RGBColor) -> RGBColor {
    let luminance = 0.299 * f64::from(colour.0) + 0.587 * f64::from(colour.1) + 0.114 * f64::from(colour.2);
    if luminance > 140.0 {
        BLACK
    } else {
        WHITE
    }
}

/// A matrix chart: `values[i][j]` (`None` grey) coloured on `range` by `scale` with a colour bar, each cell
/// showing the value and its interval; rows are labelled `row_axis` (↓), columns `column_axis` (→).
#[allow(clippy::too_many_arguments)]
pub fn plot_matrix(
    path: &Path,
    title: &str,
    row_axis: &str,
    column_axis: &str,
    rows: &[String],
    columns: &[String],
    values: &[Vec<Option<Estimate>>],
    range: (f64, f64),
    scale: ColourScale,
) -> Result<()> {
    ensure_font();
    let column_labels: Vec<Vec<String>> = columns.iter().map(|c| wrap(c, 18)).collect();
    let row_labels: Vec<Vec<String>> = rows.iter().map(|r| wrap(r, 24)).collect();
    let longest = |labels: &[Vec<String>]| {
        labels
            .iter()
            .flatten()
            .map(|l| l.chars().count() as i32)
            .max()
            .unwrap_or(4)
    };
    let cell_width = (longest(&column_labels) * CHAR + 16).max(124);
    let row_lines = row_labels.iter().map(Vec::len).max().unwrap_or(1) as i32;
    let cell_height = (row_lines * LINE + 10).max(48);
    let header = column_labels.iter().map(Vec::len).max().unwrap_or(1) as i32 * LINE + 30;
    let (left, top) = (longest(&row_labels) * CHAR + 24, 40 + header);
    let bar_x = left + cell_width * columns.len() as i32 + 24;
    let (width, height) = ((bar_x + 90).max(520), top + cell_height * rows.len() as i32 + 20);
    let mut bytes = vec![0u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut bytes, (width as u32, height as u32)).into_drawing_area();
        root.fill(&WHITE)?;
        let font = |size: i32| ("sans-serif", size).into_font();
        root.draw(&Text::new(title.to_string(), (10, 8), font(18)))?;
        root.draw(&Text::new(
            format!("{column_axis} →"),
            (left, 32),
            font(13).color(&RGBColor(90, 90, 90)),
        ))?;
        root.draw(&Text::new(
            format!("{row_axis} ↓"),
            (8, top - 18),
            font(13).color(&RGBColor(90, 90, 90)),
        ))?;
        for (j, lines) in column_labels.iter().enumerate() {
            for (k, line) in lines.iter().enumerate() {
                root.draw(&Text::new(
                    line.clone(),
                    (left + cell_width * j as i32 + 6, 52 + LINE * k as i32),
                    font(12),
                ))?;
            }
        }
        let span = if range.1 > range.0 { range.1 - range.0 } else { 1.0 };
        for (i, lines) in row_labels.iter().enumerate() {
            let y = top + cell_height * i as i32;
            for (k, line) in lines.iter().enumerate() {
                root.draw(&Text::new(line.clone(), (8, y + 6 + LINE * k as i32), font(12)))?;
            }
            for (j, value) in values[i].iter().enumerate() {
                let x = left + cell_width * j as i32;
                let colour = value.map_or(RGBColor(210, 210, 210), |e| scale.colour((e.value - range.0) / span));
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell_width - 3, y + cell_height - 3)],
                    colour.filled(),
                ))?;
                if let Some(e) = value {
                    let ink = text_on(colour);
                    root.draw(&Text::new(
                        format!("{:.3}", e.value),
                        (x + 8, y + 6),
                        font(15).color(&ink),
                    ))?;
                    root.draw(&Text::new(
                        format!("[{:.3}, {:.3}]", e.low, e.high),
                        (x + 8, y + 26),
                        font(11).color(&ink),
                    ))?;
                }
            }
        }
        // the colour bar, with its range
        let bar_height = (cell_height * rows.len() as i32).max(60);
        for step in 0..bar_height {
            let t = 1.0 - f64::from(step) / f64::from(bar_height - 1);
            root.draw(&Rectangle::new(
                [(bar_x, top + step), (bar_x + 18, top + step + 1)],
                scale.colour(t).filled(),
            ))?;
        }
        for (t, label) in [(1.0, range.1), (0.5, (range.0 + range.1) / 2.0), (0.0, range.0)] {
            let y = top + ((1.0 - t) * f64::from(bar_height - 1)) as i32;
            root.draw(&Text::new(
                format!("{label:.2}"),
                (bar_x + 24, (y - 6).max(top - 6)),
                font(12),
            ))?;
        }
        root.present()?;
    }
    write_rgb_buffer(path, &bytes, i64::from(width), i64::from(height))
}

/// A y-axis label precise enough for an axis spanning `span`: two decimals from a span of 0.1 up,
/// otherwise three significant digits in scientific notation, so that small quantities (gradients
/// around 1e-5) get an axis of their own and labels that differ.
fn axis_number(value: f64, span: f64) -> String {
    if span >= 0.1 || value == 0.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.2e}")
    }
}

/// Bars with 95 % error bars (none where an estimate has no spread), one per `(label, estimate)`, the
/// y axis titled `y_label`; the bar named `highlight` (if any) drawn in its own colour.
pub fn plot_estimate_bars(
    path: &Path,
    title: &str,
    y_label: &str,
    bars: &[(String, Estimate)],
    highlight: Option<&str>,
) -> Result<()> {
    ensure_font();
    let labels: Vec<Vec<String>> = bars.iter().map(|(name, _)| wrap(name, 12)).collect();
    let slot = labels
        .iter()
        .flatten()
        .map(|l| l.chars().count() as i32)
        .max()
        .unwrap_or(4)
        * CHAR
        + 14;
    let label_lines = labels.iter().map(Vec::len).max().unwrap_or(1) as i32;
    let (width, height) = ((90 + slot * bars.len() as i32 + 20).max(520), 360 + label_lines * LINE);
    let low = bars.iter().map(|(_, e)| e.low.min(e.value)).fold(0.0f64, f64::min);
    let high = bars.iter().map(|(_, e)| e.high.max(e.value)).fold(0.0f64, f64::max);
    let span = high - low;
    let pad = if span > 0.0 { span * 0.08 } else { 0.01 };
    let mut bytes = vec![0u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut bytes, (width as u32, height as u32)).into_drawing_area();
        root.fill(&WHITE)?;
        let (plot_area, label_area) = root.split_vertically(height - label_lines * LINE - 8);
        let mut chart = ChartBuilder::on(&plot_area)
            .caption(title, ("sans-serif", 17))
            .margin(10)
            .x_label_area_size(4)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..bars.len() as f64, (low - pad)..(high + pad))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc(y_label)
            .y_label_formatter(&|v| axis_number(*v, span))
            .draw()?;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(0.0, 0.0), (bars.len() as f64, 0.0)],
            BLACK,
        )))?;
        for (k, (name, e)) in bars.iter().enumerate() {
            let x = k as f64;
            let colour = if Some(name.as_str()) == highlight {
                RGBColor(214, 96, 39)
            } else {
                RGBColor(70, 110, 170)
            };
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x + 0.15, 0.0), (x + 0.85, e.value)],
                colour.filled(),
            )))?;
            if e.high > e.low {
                let whisker = |y: f64| PathElement::new(vec![(x + 0.4, y), (x + 0.6, y)], BLACK.stroke_width(2));
                chart.draw_series([
                    PathElement::new(vec![(x + 0.5, e.low), (x + 0.5, e.high)], BLACK.stroke_width(2)),
                    whisker(e.low),
                    whisker(e.high),
                ])?;
            }
        }
        let (origin, _) = chart.backend_coord(&(0.0, 0.0));
        for (k, lines) in labels.iter().enumerate() {
            let (x, _) = chart.backend_coord(&(k as f64 + 0.1, 0.0));
            for (l, line) in lines.iter().enumerate() {
                label_area.draw(&Text::new(
                    line.clone(),
                    (x.max(origin), 4 + LINE * l as i32),
                    ("sans-serif", 12).into_font(),
                ))?;
            }
        }
        root.present()?;
    }
    write_rgb_buffer(path, &bytes, i64::from(width), i64::from(height))
}

/// How a curve chart's x axis reads: linear, or logarithmic (positive values, e.g. light intensity).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XScale {
    /// x as it is.
    Linear,
    /// log10 x, labelled with x.
    Log,
}

/// Points with 95 % error bars, one line and colour per series (its points in drawing order), the
/// legend beside the chart: accuracy against light intensity per training pipeline, or a forensics
/// group's drop against the SSIM it reached; `baselines` (a trivial predictor's level) dashed.
pub fn plot_estimate_curves(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    scale: XScale,
    series: &[(String, Vec<(f64, Estimate)>)],
    baselines: &[(&str, f64)],
) -> Result<()> {
    ensure_font();
    let to_axis = |x: f64| if scale == XScale::Log { x.log10() } else { x };
    let legend_lines: Vec<Vec<String>> = series.iter().map(|(name, _)| wrap(name, 26)).collect();
    // tall enough for every legend entry (12 pipelines of two lines each need more than 480 px)
    let legend_height: i32 = legend_lines.iter().map(|l| LINE * l.len() as i32 + 8).sum::<i32>() + 70;
    let (width, height, legend) = (1000i32, legend_height.max(480), 230i32);
    let xs: Vec<f64> = series
        .iter()
        .flat_map(|(_, points)| points.iter().map(|(x, _)| to_axis(*x)))
        .collect();
    let (x_low, x_high) = xs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(*x), b.max(*x)));
    let pad = if x_high > x_low { (x_high - x_low) * 0.06 } else { 0.5 };
    let (x_low, x_high) = if x_low.is_finite() {
        (x_low - pad, x_high + pad)
    } else {
        (0.0, 1.0)
    };
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|(_, points)| points.iter().flat_map(|(_, e)| [e.low, e.high, e.value]))
        .chain(baselines.iter().map(|(_, level)| *level))
        .filter(|v| v.is_finite())
        .collect();
    let (y_low, y_high) = ys.iter().fold((0.0f64, 1.0f64), |(a, b), y| (a.min(*y), b.max(*y)));
    let mut bytes = vec![0u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut bytes, (width as u32, height as u32)).into_drawing_area();
        root.fill(&WHITE)?;
        let (plot_area, legend_area) = root.split_horizontally(width - legend);
        let mut chart = ChartBuilder::on(&plot_area)
            .caption(title, ("sans-serif", 17))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x_low..x_high, (y_low - 0.02)..(y_high + 0.02))?;
        // a narrow linear axis needs more decimals to tell its ticks apart
        let decimals = if x_high - x_low < 0.1 { 3 } else { 2 };
        // a log axis's ticks as two significant digits of x (10, 13, 16, 20, …)
        let label = move |x: &f64| match scale {
            XScale::Log => {
                let value = 10f64.powf(*x);
                let digits = (1 - value.log10().floor() as i32).max(0) as usize;
                format!("{value:.digits$}")
            }
            XScale::Linear => format!("{x:.decimals$}"),
        };
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .x_label_formatter(&label)
            .y_label_formatter(&|y| format!("{y:.2}"))
            .draw()?;
        let mut y = 40;
        for (i, ((_, points), lines)) in series.iter().zip(&legend_lines).enumerate() {
            let colour = series_colour(i);
            chart.draw_series(LineSeries::new(
                points.iter().map(|(x, e)| (to_axis(*x), e.value)),
                colour.stroke_width(2),
            ))?;
            for (x, e) in points {
                let x = to_axis(*x);
                chart.draw_series([PathElement::new(vec![(x, e.low), (x, e.high)], colour.stroke_width(2))])?;
                chart.draw_series(std::iter::once(Circle::new((x, e.value), 4, colour.filled())))?;
            }
            legend_area.draw(&PathElement::new(vec![(8, y + 6), (34, y + 6)], colour.stroke_width(3)))?;
            for (k, line) in lines.iter().enumerate() {
                legend_area.draw(&Text::new(
                    line.clone(),
                    (40, y + LINE * k as i32),
                    ("sans-serif", 12).into_font(),
                ))?;
            }
            y += LINE * lines.len() as i32 + 8;
        }
        for (name, level) in baselines {
            let style = BASELINE.stroke_width(2);
            chart.draw_series(DashedLineSeries::new([(x_low, *level), (x_high, *level)], 8, 6, style))?;
            baseline_legend(&legend_area, name, *level, y, 12)?;
            y += LINE + 8;
        }
        legend_area.draw(&Text::new(
            "bars: 95 % interval",
            (8, y + 4),
            ("sans-serif", 11).into_font().color(&RGBColor(90, 90, 90)),
        ))?;
        root.present()?;
    }
    write_rgb_buffer(path, &bytes, i64::from(width), i64::from(height))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_wrap_at_separators_within_their_width() {
        assert_eq!(
            wrap("menon2007_unsharp_masking_gaussian_denoising", 18),
            ["menon2007_unsharp_", "masking_gaussian_", "denoising"]
        );
        assert_eq!(wrap("short", 18), ["short"]);
    }

    #[test]
    fn small_quantities_get_labels_that_differ() {
        assert_eq!(axis_number(0.5, 1.0), "0.50");
        assert_eq!(axis_number(1.5e-5, 6e-5), "1.50e-5");
        assert_ne!(axis_number(1.0e-5, 6e-5), axis_number(2.0e-5, 6e-5));
        assert_eq!(axis_number(0.0, 6e-5), "0.00");
    }

    /// The scales end on their published anchor colours and a signed scale's middle (no change) is
    /// RdBu's near-white.
    #[test]
    fn colour_scales_end_on_their_anchors_and_diverge_from_white() {
        assert_eq!(ColourScale::Sequential.colour(0.0), RGBColor(68, 1, 84));
        assert_eq!(ColourScale::Sequential.colour(1.0), RGBColor(253, 231, 37));
        assert_eq!(ColourScale::Diverging.colour(-3.0), RGBColor(33, 102, 172));
        assert_eq!(ColourScale::Diverging.colour(0.5), RGBColor(247, 247, 247));
        assert_eq!(ColourScale::Diverging.colour(1.0), RGBColor(178, 24, 43));
    }
}
