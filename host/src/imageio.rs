//! Reading raw mosaics and writing processed images, every write atomic (temp file, then rename).

use anyhow::{anyhow, bail, Context, Result};
use l2l_plugin_api::{CfaPattern, RawMetadata};
use npyz::WriterBuilder;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

/// A raw mosaic and, where the file carries them, its camera parameters.
pub struct RawInput {
    /// H×W float32, scaled to [0, 1] by the white level, black level kept.
    pub mosaic: Tensor,
    /// CFA pattern, black level, white balance and colour matrix from the file (rawloader formats).
    pub metadata: Option<RawMetadata>,
}

/// Reads a raw mosaic as an H×W float32 tensor scaled to [0, 1] by the white level (black level kept),
/// with the file's camera metadata when the format has any.
///
/// `.npy`: 2-D float (taken as already scaled unless `white_level` is given) or unsigned integers;
/// `.tif`/`.tiff`: single-channel 8/16-bit or float; anything else: whatever rawloader decodes (read
/// once, for the samples and the metadata). Integer data is divided by `white_level`, else by the
/// file's own white level (rawloader) or the type's maximum.
pub fn read_raw_input(path: &Path, white_level: Option<f64>) -> Result<RawInput> {
    let ((values, height, width, type_white), metadata) = match extension(path).as_str() {
        "npy" => (read_npy(path)?, None),
        "tif" | "tiff" => (read_tiff(path)?, None),
        _ => {
            let image = rawloader::decode_file(path)
                .map_err(|e| anyhow!("{}: not a raw file rawloader can decode: {e}", path.display()))?;
            let metadata = rawloader_metadata(&image, path, white_level)?;
            (rawloader_plane(image, path)?, Some(metadata))
        }
    };
    let not_finite = values.iter().filter(|v| !v.is_finite()).count();
    if not_finite > 0 {
        bail!(
            "{}: {not_finite} samples are NaN or infinite (expected finite raw values)",
            path.display()
        );
    }
    let scale = white_level.or(type_white).unwrap_or(1.0);
    if !(scale.is_finite() && scale > 0.0) {
        bail!("{}: white level must be positive, found {scale}", path.display());
    }
    let mosaic = Tensor::from_slice(&values)
        .f_view([height, width])?
        .f_div_scalar(scale)?
        .f_to_kind(Kind::Float)?;
    Ok(RawInput { mosaic, metadata })
}

/// sRGB (linear, D65) → XYZ.
const SRGB_TO_XYZ: [[f64; 3]; 3] = [
    [0.4124564, 0.3575761, 0.1804375],
    [0.2126729, 0.7151522, 0.0721750],
    [0.0193339, 0.1191920, 0.9503041],
];

/// The camera parameters rawloader reads from a raw file, in the mosaic's [0, 1] units: the CFA
/// pattern, black level per CFA position, white balance normalised to green, and camera → sRGB from
/// the file's XYZ → camera matrix (rows of camera ← sRGB normalised to 1, then inverted, as dcraw does).
fn rawloader_metadata(image: &rawloader::RawImage, path: &Path, white_level: Option<f64>) -> Result<RawMetadata> {
    let colours = [(0, 0), (0, 1), (1, 0), (1, 1)].map(|(r, c)| image.cfa.color_at(r, c));
    let cfa_pattern = [CfaPattern::Rggb, CfaPattern::Bggr, CfaPattern::Grbg, CfaPattern::Gbrg]
        .into_iter()
        .find(|p| p.colours() == colours)
        .ok_or_else(|| {
            anyhow!(
                "{}: CFA `{}` is not a Bayer pattern (expected RGGB, BGGR, GRBG or GBRG)",
                path.display(),
                image.cfa.name
            )
        })?;
    let white = white_level.unwrap_or(f64::from(image.whitelevels[0]));
    let black_level = colours.map(|c| (f64::from(image.blacklevels[c]) / white) as f32);
    let green = image.wb_coeffs[1];
    let white_balance =
        if green.is_finite() && green > 0.0 && image.wb_coeffs[..3].iter().all(|g| g.is_finite() && *g > 0.0) {
            [image.wb_coeffs[0] / green, 1.0, image.wb_coeffs[2] / green]
        } else {
            [1.0; 3]
        };
    let mut camera_from_srgb = [[0f64; 3]; 3];
    for (row, out) in camera_from_srgb.iter_mut().enumerate() {
        for (col, value) in out.iter_mut().enumerate() {
            *value = (0..3)
                .map(|k| f64::from(image.xyz_to_cam[row][k]) * SRGB_TO_XYZ[k][col])
                .sum();
        }
        let sum: f64 = out.iter().sum();
        if sum.abs() > 1e-9 {
            out.iter_mut().for_each(|v| *v /= sum);
        }
    }
    let flat: Vec<f64> = camera_from_srgb.iter().flatten().copied().collect();
    let colour_matrix = if flat.iter().all(|v| *v == 0.0) {
        [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    } else {
        let inverse = Tensor::f_linalg_inv(&Tensor::from_slice(&flat).f_view([3, 3])?)?.f_to_kind(Kind::Float)?;
        let values = Vec::<f32>::try_from(inverse.f_flatten(0, -1)?)?;
        [
            values[0], values[1], values[2], values[3], values[4], values[5], values[6], values[7], values[8],
        ]
    };
    Ok(RawMetadata {
        cfa_pattern,
        black_level,
        white_balance,
        colour_matrix,
        intensity: 100.0,
    })
}

fn extension(path: &Path) -> String {
    path.extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase()
}

type RawPlane = (Vec<f64>, i64, i64, Option<f64>);

fn read_npy(path: &Path) -> Result<RawPlane> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let npy = npyz::NpyFile::new(BufReader::new(file))
        .with_context(|| format!("{}: not a valid .npy file", path.display()))?;
    let shape = npy.shape().to_vec();
    if shape.len() != 2 {
        bail!(
            "{}: expected a 2-D raw mosaic (H×W), found shape {shape:?}",
            path.display()
        );
    }
    let (h, w) = (shape[0] as i64, shape[1] as i64);
    let type_str = npy.dtype().descr();
    let code = type_str
        .trim_matches('\'')
        .trim_start_matches(['<', '>', '|', '='])
        .to_string();
    let (values, white): (Vec<f64>, Option<f64>) = match code.as_str() {
        "f4" => (npy.into_vec::<f32>()?.into_iter().map(f64::from).collect(), None),
        "f8" => (npy.into_vec::<f64>()?, None),
        "u2" => (
            npy.into_vec::<u16>()?.into_iter().map(f64::from).collect(),
            Some(65535.0),
        ),
        "u1" => (npy.into_vec::<u8>()?.into_iter().map(f64::from).collect(), Some(255.0)),
        _ => bail!(
            "{}: expected float32, float64, uint16 or uint8 samples, found dtype `{type_str}`",
            path.display()
        ),
    };
    Ok((values, h, w, white))
}

fn read_tiff(path: &Path) -> Result<RawPlane> {
    use tiff::decoder::{Decoder, DecodingResult};
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut decoder =
        Decoder::new(BufReader::new(file)).with_context(|| format!("{}: not a valid TIFF", path.display()))?;
    let (w, h) = decoder.dimensions()?;
    let colour = decoder.colortype()?;
    if !matches!(colour, tiff::ColorType::Gray(_)) {
        bail!(
            "{}: expected a single-channel raw mosaic, found colour type {colour:?}",
            path.display()
        );
    }
    let (values, white): (Vec<f64>, Option<f64>) = match decoder
        .read_image()
        .with_context(|| format!("{}: decoding", path.display()))?
    {
        DecodingResult::U16(v) => (v.into_iter().map(f64::from).collect(), Some(65535.0)),
        DecodingResult::U8(v) => (v.into_iter().map(f64::from).collect(), Some(255.0)),
        DecodingResult::F32(v) => (v.into_iter().map(f64::from).collect(), None),
        _ => bail!("{}: expected 8/16-bit integer or float32 samples", path.display()),
    };
    Ok((values, h as i64, w as i64, white))
}

fn rawloader_plane(image: rawloader::RawImage, path: &Path) -> Result<RawPlane> {
    if image.cpp != 1 {
        bail!(
            "{}: expected a Bayer mosaic (1 component per pixel), found {}",
            path.display(),
            image.cpp
        );
    }
    let values: Vec<f64> = match image.data {
        rawloader::RawImageData::Integer(v) => v.into_iter().map(f64::from).collect(),
        rawloader::RawImageData::Float(v) => v.into_iter().map(f64::from).collect(),
    };
    Ok((
        values,
        image.height as i64,
        image.width as i64,
        Some(f64::from(image.whitelevels[0])),
    ))
}

/// Writes `contents` to `path` through a temporary file in the same directory and a rename, so a
/// reader never sees a half-written file and an existing file is only replaced by a complete one.
pub fn write_atomically(path: &Path, contents: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| anyhow!("{}: not a file path", path.display()))?;
    let temp: PathBuf = dir.join(format!(".{}.{}.tmp", name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let file = std::fs::File::create(&temp).with_context(|| format!("creating {}", temp.display()))?;
        let mut writer = BufWriter::new(file);
        contents(&mut writer)?;
        let file = writer
            .into_inner()
            .map_err(|e| anyhow!("writing {}: {}", temp.display(), e.error()))?;
        file.sync_all()?;
        std::fs::rename(&temp, path).with_context(|| format!("renaming into {}", path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

/// An image `[C, H, W]` (C = 1 or 3; a leading batch of 1 is dropped) as row-major H×W×C float32.
fn interleaved(image: &Tensor) -> Result<(Vec<f32>, usize, usize, usize)> {
    let image = if image.dim() == 4 {
        image.f_squeeze_dim(0)?
    } else {
        image.shallow_clone()
    };
    let size = image.size();
    if size.len() != 3 || !(size[0] == 1 || size[0] == 3) {
        bail!("expected an image [C, H, W] with 1 or 3 channels, found {size:?}");
    }
    let hwc = image
        .f_detach()?
        .f_to_device(Device::Cpu)?
        .f_to_kind(Kind::Float)?
        .f_permute([1, 2, 0])?
        .f_contiguous()?;
    let values = Vec::<f32>::try_from(hwc.f_flatten(0, -1)?)?;
    Ok((values, size[1] as usize, size[2] as usize, size[0] as usize))
}

/// Writes an image `[C, H, W]` by extension: `.png` (8 or 16 bits, values clamped to [0, 1]),
/// `.tif`/`.tiff` (float32), `.npy` (float32 H×W×C).
pub fn write_image(path: &Path, image: &Tensor, png_bits: u8) -> Result<()> {
    let (values, h, w, c) = interleaved(image)?;
    match extension(path).as_str() {
        "png" => write_png(path, &values, h, w, c, png_bits),
        "tif" | "tiff" => {
            // The TIFF encoder seeks, so the file is assembled in memory first.
            let mut buffer = std::io::Cursor::new(Vec::new());
            let mut encoder = tiff::encoder::TiffEncoder::new(&mut buffer)?;
            if c == 3 {
                encoder.write_image::<tiff::encoder::colortype::RGB32Float>(w as u32, h as u32, &values)?;
            } else {
                encoder.write_image::<tiff::encoder::colortype::Gray32Float>(w as u32, h as u32, &values)?;
            }
            write_atomically(path, |out| Ok(out.write_all(buffer.get_ref())?))
        }
        "npy" => write_atomically(path, |out| {
            let mut writer = npyz::WriteOptions::<f32>::new()
                .default_dtype()
                .shape(&[h as u64, w as u64, c as u64])
                .writer(out)
                .begin_nd()?;
            writer.extend(values.iter().copied())?;
            writer.finish()?;
            Ok(())
        }),
        other => bail!(
            "{}: unknown output format `.{other}`; expected .png, .tiff or .npy",
            path.display()
        ),
    }
}

fn write_png(path: &Path, values: &[f32], h: usize, w: usize, c: usize, bits: u8) -> Result<()> {
    let depth = match bits {
        8 => png::BitDepth::Eight,
        16 => png::BitDepth::Sixteen,
        other => bail!("PNG bit depth must be 8 or 16, found {other}"),
    };
    let bytes: Vec<u8> = if bits == 8 {
        values
            .iter()
            .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
            .collect()
    } else {
        values
            .iter()
            .flat_map(|v| ((v.clamp(0.0, 1.0) * 65535.0).round() as u16).to_be_bytes())
            .collect()
    };
    write_atomically(path, |out| {
        let mut encoder = png::Encoder::new(out, w as u32, h as u32);
        encoder.set_color(if c == 3 {
            png::ColorType::Rgb
        } else {
            png::ColorType::Grayscale
        });
        encoder.set_depth(depth);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&bytes)?;
        writer.finish()?;
        Ok(())
    })
}
