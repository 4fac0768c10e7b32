//! Camera parameters: the sRGB/XYZ conversion both the DNG reader and writer go through, and the
//! per-key override that lets a config correct what a file (or a preset) says.

use l2l_plugin_sdk::{CfaPattern, RawMetadata};
use serde::{Deserialize, Serialize};

/// Linear sRGB (D65) → XYZ, as in IEC 61966-2-1.
pub const SRGB_TO_XYZ: [[f64; 3]; 3] = [
    [0.4124564, 0.3575761, 0.1804375],
    [0.2126729, 0.7151522, 0.0721750],
    [0.0193339, 0.1191920, 0.9503041],
];

/// A camera that changes nothing: RGGB, no black level, unit white balance, identity colour matrix, full
/// intensity — for files that carry no camera parameters.
pub const NEUTRAL_CAMERA: RawMetadata = RawMetadata {
    cfa_pattern: CfaPattern::Rggb,
    black_level: [0.0; 4],
    white_balance: [1.0; 3],
    colour_matrix: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
    intensity: 100.0,
};

/// Camera parameters a config may set over those of the files or of a preset; each key left out keeps
/// the file's (or preset's) value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]

pub struct CameraOverride {
    /// CFA layout of the top-left 2×2 block.
    pub cfa_pattern: Option<CfaPattern>,
    /// Black level per 2×2 CFA position, in [0, 1] units of the white level.
    pub black_level: Option<[f32; 4]>,
    /// White-balance gains R, G, B.
    pub white_balance: Option<[f32; 3]>,
    /// Camera RGB → linear sRGB, row-major 3×3.
    pub colour_matrix: Option<[f32; 9]>,
}

impl CameraOverride {
    /// `base` with every key this override sets replaced.
    pub fn apply(&self, base: RawMetadata) -> RawMetadata {
        RawMetadata {
            cfa_pattern: self.cfa_pattern.unwrap_or(base.cfa_pattern),
            black_level: self.black_level.unwrap_or(base.black_level),
            white_balance: self.white_balance.unwrap_or(base.white_balance),
            colour_matrix: self.colour_matrix.unwrap_or(base.colour_matrix),
            intensity: base.intensity,
        }
    }

    /// The key docs, for datasets that embed this table as `camera`.
    pub const KEY_DOC: (&'static str, &'static str) = (
        "camera",
        "overrides of the camera parameters: cfa_pattern, black_level [4, per CFA position, 0..1], \
         white_balance [3], colour_matrix [9, camera RGB → sRGB]; keys left out keep the data's values",
    );
}

/// The inverse of a 3×3 matrix (cofactors over the determinant); `None` when it is singular.
pub fn invert3(m: [[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let cofactor = |r: usize, c: usize| {
        let (r1, r2) = ((r + 1) % 3, (r + 2) % 3);
        let (c1, c2) = ((c + 1) % 3, (c + 2) % 3);
        m[r1][c1] * m[r2][c2] - m[r1][c2] * m[r2][c1]
    };
    let det: f64 = (0..3).map(|c| m[0][c] * cofactor(0, c)).sum();
    if det.abs() < 1e-12 {
        return None;
    }
    let mut inverse = [[0.0; 3]; 3];
    for (r, row) in inverse.iter_mut().enumerate() {
        for (c, value) in row.iter_mut().enumerate() {
            *value = cofactor(c, r) / det;
        }
    }
    Some(inverse)
}

/// `a · b` for 3×3 matrices.
pub fn multiply3(a: [[f64; 3]; 3], b: [[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut product = [[0.0; 3]; 3];
    for (r, row) in product.iter_mut().enumerate() {
        for (c, value) in row.iter_mut().enumerate() {
            *value = (0..3).map(|k| a[r][k] * b[k][c]).sum();
        }
    }
    product
}

/// Camera → sRGB from a file's XYZ → camera matrix, as dcraw derives it: camera ← sRGB is
/// XYZ→camera · sRGB→XYZ with each row normalised to sum 1 (so that white stays white), then inverted.
/// `None` when the matrix is missing (all zero) or singular.
pub fn camera_to_srgb_from_xyz(xyz_to_camera: [[f64; 3]; 3]) -> Option<[f32; 9]> {
    let mut camera_from_srgb = multiply3(xyz_to_camera, SRGB_TO_XYZ);
    for row in camera_from_srgb.iter_mut() {
        let sum: f64 = row.iter().sum();
        if sum.abs() > 1e-9 {
            row.iter_mut().for_each(|v| *v /= sum);
        }
    }
    let inverse = invert3(camera_from_srgb)?;
    let mut flat = [0f32; 9];
    for (i, v) in inverse.iter().flatten().enumerate() {
        flat[i] = *v as f32;
    }
    Some(flat)
}

/// The XYZ → camera matrix a DNG carries (ColorMatrix1, D65) for a camera → sRGB matrix; its inverse
/// is [`camera_to_srgb_from_xyz`] when the camera → sRGB rows sum to 1.
pub fn xyz_to_camera_from_srgb(camera_to_srgb: [f32; 9]) -> Option<[[f64; 3]; 3]> {
    let m = [0, 1, 2].map(|r| [0, 1, 2].map(|c| f64::from(camera_to_srgb[3 * r + c])));
    let xyz_to_srgb = invert3(SRGB_TO_XYZ)?;
    Some(multiply3(invert3(m)?, xyz_to_srgb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_times_matrix_is_identity() {
        let m = [[2.0, 1.0, 0.5], [0.0, 3.0, 1.0], [1.0, 0.0, 1.0]];
        let product = multiply3(m, invert3(m).unwrap());
        for (r, row) in product.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                assert!((v - f64::from(u8::from(r == c))).abs() < 1e-12, "{product:?}");
            }
        }
        assert!(invert3([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [0.0, 0.0, 1.0]]).is_none());
    }

    #[test]
    #[allow(clippy::excessive_precision)] // the Raw-Drone colour matrix as published, digit for digit
    fn xyz_matrix_round_trips_to_the_camera_matrix() {
        // the Raw-Drone camera's matrix (rows sum to 1)
        let ccm = [
            1.50768983,
            -0.33571374,
            -0.17197604,
            -0.23048614,
            1.70698738,
            -0.47650126,
            -0.03119153,
            -0.32803956,
            1.35923111,
        ];
        let back = camera_to_srgb_from_xyz(xyz_to_camera_from_srgb(ccm).unwrap()).unwrap();
        for (a, b) in ccm.iter().zip(back) {
            assert!((a - b).abs() < 1e-5, "{ccm:?} vs {back:?}");
        }
    }

    #[test]
    fn override_replaces_only_the_keys_it_sets() {
        let base = RawMetadata {
            cfa_pattern: CfaPattern::Rggb,
            black_level: [0.1; 4],
            white_balance: [2.0, 1.0, 1.5],
            colour_matrix: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
            intensity: 50.0,
        };
        let changed = CameraOverride {
            white_balance: Some([1.0, 1.0, 1.0]),
            ..Default::default()
        }
        .apply(base);
        assert_eq!(changed.white_balance, [1.0; 3]);
        assert_eq!(changed.black_level, base.black_level);
        assert_eq!(changed.intensity, 50.0);
    }
}
