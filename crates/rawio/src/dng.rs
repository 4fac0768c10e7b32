//! A minimal DNG writer: one uncompressed 16-bit CFA image with the tags a raw reader needs to
//! develop it (DNG 1.4 specification, chapter 4). Enough for rawloader and other DNG readers to
//! recover the mosaic, CFA layout, black and white level, white balance and colour matrix.

use crate::camera::xyz_to_camera_from_srgb;
use crate::files::{write_atomically, FileError, FileResult};
use l2l_plugin_sdk::RawMetadata;
use std::io::Cursor;
use std::path::Path;
use tiff::encoder::{Rational, SRational, TiffEncoder};
use tiff::tags::Tag;

/// What a DNG file holds.
pub struct DngImage<'a> {
    /// Row-major H×W digital numbers.
    pub samples: &'a [u16],
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// The digital number of a saturated pixel.
    pub white_level: u16,
    /// CFA pattern, black level (in units of the white level, per CFA position), white-balance gains,
    /// and camera → sRGB (rows summing to 1, so white stays white).
    pub camera: RawMetadata,
    /// Make and model tags (a reader shows them; rawloader needs them present).
    pub make_model: (&'a str, &'a str),
}

/// Writes `image` as a DNG at `path` (atomically).
pub fn write_dng(path: &Path, image: &DngImage<'_>) -> FileResult<()> {
    let (h, w) = (image.height, image.width);
    if image.samples.len() != h * w || h == 0 || w == 0 {
        return Err(FileError::new(
            path,
            format!("expected {h}×{w} samples to write, found {}", image.samples.len()),
        ));
    }
    let xyz_to_camera = xyz_to_camera_from_srgb(image.camera.colour_matrix)
        .ok_or_else(|| FileError::new(path, "the colour matrix is singular; a DNG needs an invertible one"))?;
    let gains = image.camera.white_balance;
    if gains.iter().any(|g| !(g.is_finite() && *g > 0.0)) {
        return Err(FileError::new(
            path,
            format!("white-balance gains must be positive, found {gains:?}"),
        ));
    }
    let encode = || -> Result<Vec<u8>, tiff::TiffError> {
        let mut buffer = Cursor::new(Vec::new());
        let mut encoder = TiffEncoder::new(&mut buffer)?;
        let mut dir = encoder.image_directory()?;
        let strip = dir.write_data(image.samples)?;
        let (make, model) = image.make_model;
        dir.write_tag(Tag::NewSubfileType, 0u32)?;
        dir.write_tag(Tag::ImageWidth, w as u32)?;
        dir.write_tag(Tag::ImageLength, h as u32)?;
        dir.write_tag(Tag::BitsPerSample, 16u16)?;
        dir.write_tag(Tag::Compression, 1u16)?;
        dir.write_tag(Tag::PhotometricInterpretation, 32803u16)?; // CFA
        dir.write_tag(Tag::Make, make)?;
        dir.write_tag(Tag::Model, model)?;
        dir.write_tag(Tag::StripOffsets, strip as u32)?;
        dir.write_tag(Tag::Orientation, 1u16)?;
        dir.write_tag(Tag::SamplesPerPixel, 1u16)?;
        dir.write_tag(Tag::RowsPerStrip, h as u32)?;
        dir.write_tag(Tag::StripByteCounts, (2 * h * w) as u32)?;
        dir.write_tag(Tag::PlanarConfiguration, 1u16)?;
        dir.write_tag(Tag::Unknown(33421), &[2u16, 2][..])?; // CFARepeatPatternDim
        let colours = image.camera.cfa_pattern.colours().map(|c| c as u8);
        dir.write_tag(Tag::Unknown(33422), &colours[..])?; // CFAPattern: 0 = R, 1 = G, 2 = B
        dir.write_tag(Tag::Unknown(50706), &[1u8, 4, 0, 0][..])?; // DNGVersion
        dir.write_tag(Tag::Unknown(50707), &[1u8, 1, 0, 0][..])?; // DNGBackwardVersion
        dir.write_tag(Tag::Unknown(50708), format!("{make} {model}").as_str())?; // UniqueCameraModel
        dir.write_tag(Tag::Unknown(50713), &[2u16, 2][..])?; // BlackLevelRepeatDim
        let black = image
            .camera
            .black_level
            .map(|b| (f64::from(b) * f64::from(image.white_level)).round().max(0.0) as u32);
        dir.write_tag(Tag::Unknown(50714), &black[..])?; // BlackLevel, per CFA position
        dir.write_tag(Tag::Unknown(50717), u32::from(image.white_level))?; // WhiteLevel
        let matrix: Vec<SRational> = xyz_to_camera
            .iter()
            .flatten()
            .map(|v| SRational {
                n: (v * 1e6).round() as i32,
                d: 1_000_000,
            })
            .collect();
        dir.write_tag(Tag::Unknown(50721), &matrix[..])?; // ColorMatrix1: XYZ → camera
        let neutral: Vec<Rational> = gains
            .iter()
            .map(|g| Rational {
                n: (f64::from(gains[1]) / f64::from(*g) * 1e6).round() as u32,
                d: 1_000_000,
            })
            .collect();
        dir.write_tag(Tag::Unknown(50728), &neutral[..])?; // AsShotNeutral = 1 / gains
        dir.write_tag(Tag::Unknown(50778), 21u16)?; // CalibrationIlluminant1: D65
        dir.finish()?;
        Ok(buffer.into_inner())
    };
    let bytes = encode().map_err(|e| FileError::new(path, format!("encoding DNG: {e}")))?;
    write_atomically(path, |out| Ok(out.write_all(&bytes)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read_mosaic;
    use l2l_plugin_sdk::CfaPattern;

    #[allow(clippy::excessive_precision)] // the Raw-Drone colour matrix as published, digit for digit
    fn camera(cfa_pattern: CfaPattern) -> RawMetadata {
        RawMetadata {
            cfa_pattern,
            black_level: [0.0625, 0.0625, 0.0625, 0.0625],
            white_balance: [2.0, 1.0, 1.6],
            colour_matrix: [
                1.50768983,
                -0.33571374,
                -0.17197604,
                -0.23048614,
                1.70698738,
                -0.47650126,
                -0.03119153,
                -0.32803956,
                1.35923111,
            ],
            intensity: 100.0,
        }
    }

    #[test]
    fn rawloader_reads_back_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        for pattern in [CfaPattern::Rggb, CfaPattern::Bggr, CfaPattern::Grbg, CfaPattern::Gbrg] {
            let (h, w) = (6, 10);
            let samples: Vec<u16> = (0..h * w).map(|i| (i * 61) as u16).collect();
            let path = dir.path().join(format!("{pattern:?}.dng"));
            let image = DngImage {
                samples: &samples,
                height: h,
                width: w,
                white_level: 4095,
                camera: camera(pattern),
                make_model: ("l2l", "synthetic"),
            };
            write_dng(&path, &image).unwrap();
            let mosaic = read_mosaic(&path, None).unwrap();
            assert_eq!((mosaic.height, mosaic.width), (h, w));
            for (read, written) in mosaic.values.iter().zip(&samples) {
                assert!((read * 4095.0 - f32::from(*written)).abs() < 1e-3);
            }
            let read = mosaic.camera.unwrap();
            assert_eq!(read.cfa_pattern, pattern);
            // black level 256 DN of 4095
            assert!(
                read.black_level.iter().all(|b| (b - 256.0 / 4095.0).abs() < 1e-6),
                "{read:?}"
            );
            for (a, b) in read.white_balance.iter().zip([2.0, 1.0, 1.6]) {
                assert!((a - b).abs() < 1e-5, "{read:?}");
            }
            for (a, b) in read.colour_matrix.iter().zip(camera(pattern).colour_matrix) {
                assert!((a - b).abs() < 1e-4, "{read:?}");
            }
        }
    }

    #[test]
    fn truncated_dng_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cut.dng");
        let samples = vec![1000u16; 64 * 64];
        let image = DngImage {
            samples: &samples,
            height: 64,
            width: 64,
            white_level: 65535,
            camera: camera(CfaPattern::Rggb),
            make_model: ("l2l", "synthetic"),
        };
        write_dng(&path, &image).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        // the strip is written first, right after the 8-byte header: cut into it
        std::fs::write(&path, &bytes[..4000]).unwrap();
        let err = read_mosaic(&path, None).unwrap_err().to_string();
        assert!(err.contains("cut.dng") && err.contains("truncated"), "{err}");
        std::fs::write(&path, b"II*\0garbage").unwrap();
        let err = read_mosaic(&path, None).unwrap_err().to_string();
        assert!(err.contains("cut.dng"), "{err}");
    }
}
