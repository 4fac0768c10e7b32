//! "Cells": a white blood cell on a smear, in the spirit of Raw-Microscopy. Four classes, told apart the
//! way a haematologist does — size, nucleus shape (round, kidney, two lobes, several lobes), granules
//! and cytoplasm stain — with random position, orientation, size and stain strength within each class.
//! Class names are the Raw-Microscopy codes of the cells they imitate.

use crate::draw::{box_distance, circle_distance, mix, scale, Canvas, Rgb, ValueNoise};
use rand::Rng;
use std::f32::consts::TAU;

/// Class names, sorted: eosinophil, typical lymphocyte, monocyte, segmented neutrophil.
pub const CLASSES: [&str; 4] = ["EOS", "LYT", "MON", "NGS"];

const PLASMA: Rgb = [0.90, 0.83, 0.85];
const RED_CELL: Rgb = [0.86, 0.47, 0.52];
const NUCLEUS: Rgb = [0.32, 0.19, 0.47];

/// Renders one cell of class `class` (an index into [`CLASSES`]) on a `size`×`size` canvas.
pub fn render(rng: &mut impl Rng, class: usize, size: usize) -> Canvas {
    let texture = ValueNoise::new(rng, 5);
    let mut canvas = Canvas::new(size, |x, y| scale(PLASMA, 0.96 + 0.08 * texture.at(x, y)));
    let radius = match class {
        1 => rng.gen_range(0.16..0.19),
        3 => rng.gen_range(0.23..0.26),
        0 => rng.gen_range(0.25..0.28),
        _ => rng.gen_range(0.30..0.34),
    };
    let centre = (0.5 + rng.gen_range(-0.05..0.05), 0.5 + rng.gen_range(-0.05..0.05));
    draw_red_cells(&mut canvas, rng, centre, radius);
    let angle = rng.gen_range(0.0..TAU);
    let stain: f32 = rng.gen_range(0.9..1.1);
    let nucleus = scale(NUCLEUS, stain);
    match class {
        0 => eosinophil(&mut canvas, rng, centre, radius, angle, nucleus),
        1 => lymphocyte(&mut canvas, rng, centre, radius, nucleus),
        2 => monocyte(&mut canvas, rng, centre, radius, angle, nucleus),
        _ => neutrophil(&mut canvas, rng, centre, radius, angle, nucleus),
    }
    canvas
}

/// Red cells around the white one: pink discs with a paler centre.
fn draw_red_cells(canvas: &mut Canvas, rng: &mut impl Rng, centre: (f32, f32), radius: f32) {
    for _ in 0..rng.gen_range(3..7) {
        let r = rng.gen_range(0.08..0.11);
        let direction = rng.gen_range(0.0..TAU);
        let distance = radius + r * rng.gen_range(0.6..1.6);
        let c = (
            centre.0 + distance * direction.cos(),
            centre.1 + distance * direction.sin(),
        );
        canvas.disc(c, r, RED_CELL);
        canvas.disc(c, 0.45 * r, mix(RED_CELL, PLASMA, 0.45));
    }
}

fn lymphocyte(canvas: &mut Canvas, rng: &mut impl Rng, centre: (f32, f32), radius: f32, nucleus: Rgb) {
    canvas.disc(centre, radius, [0.62, 0.68, 0.88]);
    let offset = radius * 0.08;
    let direction = rng.gen_range(0.0..TAU);
    canvas.disc(
        (centre.0 + offset * direction.cos(), centre.1 + offset * direction.sin()),
        radius * 0.82,
        nucleus,
    );
}

fn neutrophil(canvas: &mut Canvas, rng: &mut impl Rng, centre: (f32, f32), radius: f32, angle: f32, nucleus: Rgb) {
    canvas.disc(centre, radius, [0.86, 0.76, 0.84]);
    let lobes = rng.gen_range(3..5);
    for k in 0..lobes {
        let a = angle + k as f32 * TAU / (lobes as f32 + 1.5);
        let c = (centre.0 + 0.45 * radius * a.cos(), centre.1 + 0.45 * radius * a.sin());
        canvas.disc(c, 0.26 * radius, nucleus);
        if k + 1 < lobes {
            // a thin strand to the next lobe
            let b = angle + (k as f32 + 0.5) * TAU / (lobes as f32 + 1.5);
            let s = (centre.0 + 0.45 * radius * b.cos(), centre.1 + 0.45 * radius * b.sin());
            canvas.paint(
                |x, y| box_distance(x, y, s, (0.15 * radius, 0.04 * radius), b + TAU / 4.0),
                |_, _| nucleus,
            );
        }
    }
}

fn eosinophil(canvas: &mut Canvas, rng: &mut impl Rng, centre: (f32, f32), radius: f32, angle: f32, nucleus: Rgb) {
    canvas.disc(centre, radius, [0.94, 0.70, 0.56]);
    for _ in 0..45 {
        let r = radius * rng.gen_range(0.0..0.92f32).sqrt();
        let a = rng.gen_range(0.0..TAU);
        canvas.disc(
            (centre.0 + r * a.cos(), centre.1 + r * a.sin()),
            0.022,
            [0.84, 0.33, 0.22],
        );
    }
    for side in [-1.0, 1.0] {
        let c = (
            centre.0 + side * 0.38 * radius * angle.cos(),
            centre.1 + side * 0.38 * radius * angle.sin(),
        );
        canvas.disc(c, 0.33 * radius, nucleus);
    }
}

fn monocyte(canvas: &mut Canvas, rng: &mut impl Rng, centre: (f32, f32), radius: f32, angle: f32, nucleus: Rgb) {
    let cytoplasm = [0.70, 0.72, 0.84];
    canvas.disc(centre, radius, cytoplasm);
    for _ in 0..rng.gen_range(2..5) {
        let r = radius * rng.gen_range(0.55..0.85);
        let a = rng.gen_range(0.0..TAU);
        canvas.disc(
            (centre.0 + r * a.cos(), centre.1 + r * a.sin()),
            0.03,
            mix(cytoplasm, [1.0; 3], 0.5),
        );
    }
    // a kidney: a disc with a bite taken out of one side
    let (dx, dy) = (angle.cos(), angle.sin());
    let body = (centre.0 - 0.12 * radius * dx, centre.1 - 0.12 * radius * dy);
    let bite = (centre.0 + 0.55 * radius * dx, centre.1 + 0.55 * radius * dy);
    canvas.paint(
        |x, y| circle_distance(x, y, body, 0.62 * radius).max(-circle_distance(x, y, bite, 0.36 * radius)),
        |_, _| nucleus,
    );
}
