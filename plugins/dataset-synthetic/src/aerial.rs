//! "Aerial cars": a top-down view of textured ground (grass and soil), sometimes a road with a dashed
//! centre line, trees, and cars — mostly on the road, some parked off it — in the spirit of Raw-Drone.
//! The mask marks every pixel whose centre lies on a car, exactly.

use crate::draw::{box_distance, mix, scale, Canvas, Rgb, ValueNoise};
use rand::Rng;
use std::f32::consts::{PI, TAU};

const GRASS: Rgb = [0.20, 0.34, 0.12];
const SOIL: Rgb = [0.42, 0.35, 0.25];
const ASPHALT: Rgb = [0.26, 0.26, 0.28];
const MARKING: Rgb = [0.82, 0.82, 0.76];
const TREE: Rgb = [0.08, 0.22, 0.07];
const CAR_COLOURS: [Rgb; 6] = [
    [0.85, 0.85, 0.85],
    [0.05, 0.05, 0.06],
    [0.65, 0.08, 0.07],
    [0.10, 0.18, 0.55],
    [0.55, 0.57, 0.60],
    [0.80, 0.65, 0.12],
];

/// A scene and its car mask (row-major, 1 on cars).
pub struct AerialScene {
    /// The rendered image.
    pub canvas: Canvas,
    /// 1 where a pixel's centre lies on a car.
    pub car_mask: Vec<u8>,
}

/// A straight road: a point on it, its direction, its half width.
struct Road {
    through: (f32, f32),
    angle: f32,
    half_width: f32,
}

impl Road {
    fn distance(&self, x: f32, y: f32) -> f32 {
        let (dx, dy) = (x - self.through.0, y - self.through.1);
        (-dx * self.angle.sin() + dy * self.angle.cos()).abs() - self.half_width
    }
}

/// Renders one scene; `car_probability` is the chance that it has cars at all, `car_scale` multiplies
/// their size (1: a car is about an eighth of the image long).
pub fn render(rng: &mut impl Rng, size: usize, car_probability: f64, car_scale: f32) -> AerialScene {
    let coarse = ValueNoise::new(rng, 4);
    let fine = ValueNoise::new(rng, 24);
    let mut canvas = Canvas::new(size, |x, y| {
        let ground = mix(GRASS, SOIL, (coarse.at(x, y) * 1.6 - 0.3).clamp(0.0, 1.0));
        scale(ground, 0.85 + 0.3 * fine.at(x, y))
    });
    let road = rng.gen_bool(0.7).then(|| Road {
        through: (rng.gen_range(0.3..0.7), rng.gen_range(0.3..0.7)),
        angle: rng.gen_range(0.0..PI),
        half_width: rng.gen_range(0.06..0.09),
    });
    if let Some(road) = &road {
        canvas.paint(
            |x, y| road.distance(x, y),
            |x, y| scale(ASPHALT, 0.93 + 0.14 * fine.at(x, y)),
        );
        let (c, s) = (road.angle.cos(), road.angle.sin());
        canvas.paint(
            |x, y| {
                let (dx, dy) = (x - road.through.0, y - road.through.1);
                let along = (dx * c + dy * s).rem_euclid(0.08);
                let across = (-dx * s + dy * c).abs() - 0.004;
                across.max((along - 0.04).abs() - 0.02)
            },
            |_, _| MARKING,
        );
    }
    for _ in 0..rng.gen_range(1..6) {
        let centre = (rng.gen_range(0.0..1.0), rng.gen_range(0.0..1.0));
        if road.as_ref().is_some_and(|r| r.distance(centre.0, centre.1) < 0.05) {
            continue;
        }
        let radius = rng.gen_range(0.04..0.09);
        canvas.disc(
            (centre.0 + 0.2 * radius, centre.1 + 0.2 * radius),
            radius,
            scale(TREE, 0.5),
        );
        canvas.disc(centre, radius, TREE);
    }
    let mut car_mask = vec![0u8; size * size];
    if rng.gen_bool(car_probability) {
        for _ in 0..rng.gen_range(1..5) {
            draw_car(&mut canvas, &mut car_mask, rng, road.as_ref(), car_scale);
        }
    }
    AerialScene { canvas, car_mask }
}

fn draw_car(canvas: &mut Canvas, mask: &mut [u8], rng: &mut impl Rng, road: Option<&Road>, scale: f32) {
    let half: (f32, f32) = (scale * rng.gen_range(0.05..0.07), scale * rng.gen_range(0.022..0.03));
    let (centre, angle) = match road {
        Some(road) if rng.gen_bool(0.7) => {
            let along = rng.gen_range(-0.4..0.4);
            let lane = road.half_width * 0.5 * if rng.gen_bool(0.5) { 1.0 } else { -1.0 };
            let (c, s) = (road.angle.cos(), road.angle.sin());
            (
                (
                    road.through.0 + along * c - lane * s,
                    road.through.1 + along * s + lane * c,
                ),
                road.angle + if rng.gen_bool(0.5) { 0.0 } else { PI },
            )
        }
        _ => (
            (rng.gen_range(0.08..0.92), rng.gen_range(0.08..0.92)),
            rng.gen_range(0.0..TAU),
        ),
    };
    let body = CAR_COLOURS[rng.gen_range(0..CAR_COLOURS.len())];
    let shape = |x: f32, y: f32| box_distance(x, y, centre, half, angle);
    // the mask is the car's shape at pixel centres, exactly what the renderer covers by half or more
    let size = canvas.size;
    for (i, m) in mask.iter_mut().enumerate() {
        let (x, y) = crate::draw::unit_position(i, size);
        if shape(x, y) <= 0.0 {
            *m = 1;
        }
    }
    canvas.paint(shape, |_, _| body);
    // windscreen: a dark band across the front third
    let (c, s) = (angle.cos(), angle.sin());
    let front = (centre.0 + 0.35 * half.0 * c, centre.1 + 0.35 * half.0 * s);
    canvas.paint(
        |x, y| box_distance(x, y, front, (0.15 * half.0, 0.8 * half.1), angle).max(shape(x, y)),
        |_, _| [0.08, 0.09, 0.11],
    );
}
