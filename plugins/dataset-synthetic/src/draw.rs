//! A tiny rasteriser for the scenes: a square canvas in linear sRGB, shapes in unit coordinates
//! ([0, 1]², x right, y down) with one-pixel anti-aliased edges, and smooth value noise for texture.

use rand::Rng;

/// Linear sRGB.
pub type Rgb = [f32; 3];

/// A square linear-sRGB image under construction.
pub struct Canvas {
    /// Side length in pixels.
    pub size: usize,
    /// Row-major pixels.
    pub pixels: Vec<Rgb>,
}

impl Canvas {
    /// A canvas whose pixel at unit position (x, y) is `background(x, y)`.
    pub fn new(size: usize, background: impl Fn(f32, f32) -> Rgb) -> Self {
        let pixels = (0..size * size)
            .map(|i| {
                let (x, y) = unit_position(i, size);
                background(x, y)
            })
            .collect();
        Self { size, pixels }
    }

    /// Blends `colour` over every pixel by the coverage that `signed_distance` (in unit lengths,
    /// negative inside) gives at its centre, with a one-pixel soft edge.
    pub fn paint(&mut self, signed_distance: impl Fn(f32, f32) -> f32, colour: impl Fn(f32, f32) -> Rgb) {
        let pixel = 1.0 / self.size as f32;
        for (i, value) in self.pixels.iter_mut().enumerate() {
            let (x, y) = unit_position(i, self.size);
            let coverage = (0.5 - signed_distance(x, y) / pixel).clamp(0.0, 1.0);
            if coverage > 0.0 {
                let c = colour(x, y);
                for k in 0..3 {
                    value[k] += coverage * (c[k] - value[k]);
                }
            }
        }
    }

    /// Paints a disc.
    pub fn disc(&mut self, centre: (f32, f32), radius: f32, colour: Rgb) {
        self.paint(|x, y| circle_distance(x, y, centre, radius), |_, _| colour);
    }
}

/// The unit-coordinate centre of pixel `index` of a `size`×`size` image.
pub fn unit_position(index: usize, size: usize) -> (f32, f32) {
    let s = size as f32;
    (((index % size) as f32 + 0.5) / s, ((index / size) as f32 + 0.5) / s)
}

/// Signed distance to a circle (negative inside).
pub fn circle_distance(x: f32, y: f32, centre: (f32, f32), radius: f32) -> f32 {
    ((x - centre.0).powi(2) + (y - centre.1).powi(2)).sqrt() - radius
}

/// Signed distance to a rectangle centred at `centre`, `half` extents along its own axes, turned by
/// `angle` (radians).
pub fn box_distance(x: f32, y: f32, centre: (f32, f32), half: (f32, f32), angle: f32) -> f32 {
    let (dx, dy) = (x - centre.0, y - centre.1);
    let (s, c) = angle.sin_cos();
    let (u, v) = ((dx * c + dy * s).abs() - half.0, (-dx * s + dy * c).abs() - half.1);
    let outside = (u.max(0.0).powi(2) + v.max(0.0).powi(2)).sqrt();
    outside + u.max(v).min(0.0)
}

/// Smooth random texture in [0, 1]: random values on a `cells`×`cells` lattice over the unit square,
/// interpolated with a smoothstep.
pub struct ValueNoise {
    cells: usize,
    lattice: Vec<f32>,
}

impl ValueNoise {
    /// Draws the lattice from `rng`.
    pub fn new(rng: &mut impl Rng, cells: usize) -> Self {
        let lattice = (0..(cells + 1) * (cells + 1)).map(|_| rng.gen::<f32>()).collect();
        Self { cells, lattice }
    }

    /// The texture at unit position (x, y).
    pub fn at(&self, x: f32, y: f32) -> f32 {
        let n = self.cells;
        let (gx, gy) = (
            (x.clamp(0.0, 1.0) * n as f32).min(n as f32 - 1e-4),
            (y.clamp(0.0, 1.0) * n as f32).min(n as f32 - 1e-4),
        );
        let (ix, iy) = (gx as usize, gy as usize);
        let smooth = |t: f32| t * t * (3.0 - 2.0 * t);
        let (tx, ty) = (smooth(gx - ix as f32), smooth(gy - iy as f32));
        let v = |i: usize, j: usize| self.lattice[j * (n + 1) + i];
        let top = v(ix, iy) + tx * (v(ix + 1, iy) - v(ix, iy));
        let bottom = v(ix, iy + 1) + tx * (v(ix + 1, iy + 1) - v(ix, iy + 1));
        top + ty * (bottom - top)
    }
}

/// `a + t (b − a)` per channel.
pub fn mix(a: Rgb, b: Rgb, t: f32) -> Rgb {
    [
        a[0] + t * (b[0] - a[0]),
        a[1] + t * (b[1] - a[1]),
        a[2] + t * (b[2] - a[2]),
    ]
}

/// Every channel times `factor`.
pub fn scale(c: Rgb, factor: f32) -> Rgb {
    c.map(|v| v * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disc_area_matches_pi_r_squared() {
        let mut canvas = Canvas::new(200, |_, _| [0.0; 3]);
        canvas.disc((0.5, 0.5), 0.3, [1.0; 3]);
        let area: f32 = canvas.pixels.iter().map(|p| p[0]).sum::<f32>() / (200.0 * 200.0);
        assert!((area - std::f32::consts::PI * 0.09).abs() < 1e-3, "{area}");
    }

    #[test]
    fn box_distance_is_exact_on_axes_and_turns() {
        assert!((box_distance(0.7, 0.5, (0.5, 0.5), (0.1, 0.05), 0.0) - 0.1).abs() < 1e-6);
        assert!(box_distance(0.5, 0.5, (0.5, 0.5), (0.1, 0.05), 1.0) < 0.0);
        // turned by 90°: the long side now lies along y
        assert!(box_distance(0.5, 0.59, (0.5, 0.5), (0.1, 0.05), std::f32::consts::FRAC_PI_2) < 0.0);
        assert!(box_distance(0.59, 0.5, (0.5, 0.5), (0.1, 0.05), std::f32::consts::FRAC_PI_2) > 0.0);
    }
}
