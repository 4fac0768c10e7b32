//! Reading a raw mosaic from any of the formats l2l takes.

use crate::camera::camera_to_srgb_from_xyz;
use crate::files::{extension, FileError, FileResult};
use l2l_plugin_sdk::{CfaPattern, RawMetadata};
use std::io::{BufReader, Cursor};
use std::path::Path;

/// A raw mosaic as l2l works with it.
#[derive(Debug, Clone, PartialEq)]
pub struct Mosaic {
    /// Row-major H×W samples divided by the white level (black level kept, not subtracted).
    pub values: Vec<f32>,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
    /// The camera parameters the file carries (rawloader formats, DNG); `None` for plain images.
    pub camera: Option<RawMetadata>,
}

/// Reads a raw mosaic, scaled to [0, 1] by `white_level` when given, else by the file's white level
/// (raw formats) or its sample type's maximum (integer TIFF/PNG/npy; float data is taken as scaled).
///
/// `.npy` (2-D float32/64, uint8/16), `.tif`/`.tiff` (single-channel 8/16-bit or float32), `.png`
/// (8/16-bit grey), anything else: whatever rawloader decodes — cropped to the active area, with the
/// file's CFA pattern, black level, white balance and colour matrix. A DNG whose image data runs past
/// the end of the file is refused as truncated (rawloader would fill the rest with zeros).
pub fn read_mosaic(path: &Path, white_level: Option<f64>) -> FileResult<Mosaic> {
    let bytes = std::fs::read(path).map_err(|e| FileError::new(path, format!("reading: {e}")))?;
    decode_mosaic(&bytes, path, white_level, MAX_MOSAIC_PIXELS)
}

/// The most pixels a mosaic file may declare: three times the largest camera sensors (~150 MP), so a
/// corrupt or hostile size field is refused before gigabytes are allocated for it.
pub const MAX_MOSAIC_PIXELS: usize = 500_000_000;

/// [`read_mosaic`] of a file's bytes already in memory (an upload): `path` is only a name — its
/// extension picks the format and errors name it; nothing is read from or written to disk. A file
/// that declares more than `max_pixels` is refused before its samples are decoded (rawloader's
/// formats: before they are converted).
pub fn decode_mosaic(bytes: &[u8], path: &Path, white_level: Option<f64>, max_pixels: usize) -> FileResult<Mosaic> {
    let check_size = |height: usize, width: usize| -> FileResult<()> {
        let pixels = height.saturating_mul(width);
        if pixels > max_pixels {
            return Err(FileError::new(
                path,
                format!("declares {height}×{width} = {pixels} pixels, more than the {max_pixels} taken here"),
            ));
        }
        Ok(())
    };
    let (values, height, width, type_white, camera) = guarded_decode(path, || match extension(path).as_str() {
        "npy" => read_npy(bytes, path, &check_size),
        "tif" | "tiff" => Ok(with_no_camera(read_tiff(bytes, path, &check_size)?)),
        "png" => Ok(with_no_camera(read_png(bytes, path, &check_size)?)),
        _ => read_rawloader(bytes, path, white_level, &check_size),
    })?;
    if values.len() != height * width || height == 0 || width == 0 {
        return Err(FileError::new(
            path,
            format!("expected {height}×{width} samples, found {}", values.len()),
        ));
    }
    let not_finite = values.not_finite();
    if not_finite > 0 {
        return Err(FileError::new(
            path,
            format!("{not_finite} samples are NaN or infinite (expected finite raw values)"),
        ));
    }
    let scale = white_level.or(type_white).unwrap_or(1.0);
    if !(scale.is_finite() && scale > 0.0) {
        return Err(FileError::new(
            path,
            format!("white level must be positive, found {scale}"),
        ));
    }
    Ok(Mosaic {
        values: values.scaled(scale),
        height,
        width,
        camera,
    })
}

/// Samples, height, width, the type's white level, the file's camera.
type Decoded = (Samples, usize, usize, Option<f64>, Option<RawMetadata>);

fn with_no_camera((values, height, width, white): (Vec<f64>, usize, usize, Option<f64>)) -> Decoded {
    (Samples::Double(values), height, width, white, None)
}

/// A file's samples before scaling: float32 files stay float32 (a 12-MP mosaic is then neither
/// widened to a 96 MB float64 copy nor narrowed back).
enum Samples {
    Single(Vec<f32>),
    Double(Vec<f64>),
}

impl Samples {
    fn len(&self) -> usize {
        match self {
            Samples::Single(v) => v.len(),
            Samples::Double(v) => v.len(),
        }
    }

    fn not_finite(&self) -> usize {
        match self {
            Samples::Single(v) => v.iter().filter(|v| !v.is_finite()).count(),
            Samples::Double(v) => v.iter().filter(|v| !v.is_finite()).count(),
        }
    }

    /// Every sample divided by `scale` in float64, rounded to float32 (float32 samples divided by 1
    /// are themselves, so they are kept as they are).
    fn scaled(self, scale: f64) -> Vec<f32> {
        match self {
            Samples::Single(v) if scale == 1.0 => v,
            Samples::Single(v) => v.into_iter().map(|v| (f64::from(v) / scale) as f32).collect(),
            Samples::Double(v) => v.into_iter().map(|v| (v / scale) as f32).collect(),
        }
    }
}

/// npyz allocates the header length a file states before reading it (4 GiB for a corrupt length
/// field, found by fuzzing); the stated header must fit in the file, and must not nest deeper than a
/// real one. Layout: the magic `\x93NUMPY`,
/// major and minor version, then the header length as u16 (version 1) or u32 (versions 2 and 3).
/// Returns where the data start, when the preamble is readable (npyz reports what is not).
fn check_npy_header(bytes: &[u8]) -> Result<Option<usize>, String> {
    let (length, start) = match bytes.get(6) {
        Some(1) if bytes.len() >= 10 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        Some(2 | 3) if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        // too short or an unknown version: npyz reports it
        _ => return Ok(None),
    };
    if start + length > bytes.len() {
        return Err(format!(
            "the header claims {length} bytes, the file has {} after the preamble",
            bytes.len() - start
        ));
    }
    // the header is a Python dict literal, `{'descr': '<u2', 'fortran_order': False, 'shape': (H, W), }`;
    // npyz's literal parser backtracks exponentially on deeply nested brackets (a fuzzed header of 40
    // `[` took minutes), so more nesting than a real header has is refused first
    let mut depth = 0usize;
    for &byte in &bytes[start..start + length] {
        match byte {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > 4 {
            return Err("the header nests brackets deeper than a header's `{'shape': (..)}` (corrupt header?)".into());
        }
    }
    Ok(Some(start + length))
}

/// Refuses a declared height × width before anything of that size is allocated.
type SizeCheck<'a> = dyn Fn(usize, usize) -> FileResult<()> + 'a;

fn read_npy(bytes: &[u8], path: &Path, check_size: &SizeCheck) -> FileResult<Decoded> {
    let bad = |e: std::io::Error| FileError::new(path, format!("not a valid .npy file: {e}"));
    let data_start =
        check_npy_header(bytes).map_err(|reason| FileError::new(path, format!("not a valid .npy file: {reason}")))?;
    let npy = npyz::NpyFile::new(bytes).map_err(bad)?;
    let shape = npy.shape().to_vec();
    if shape.len() != 2 {
        return Err(FileError::new(
            path,
            format!("expected a 2-D raw mosaic (H×W), found shape {shape:?}"),
        ));
    }
    let (height, width) = (shape[0] as usize, shape[1] as usize);
    check_size(height, width)?;
    // the values as stored: row by row (C order) or column by column (Fortran order)
    let fortran = npy.order() == npyz::Order::Fortran;
    let descr = npy.dtype().descr();
    let code = descr
        .trim_matches('\'')
        .trim_start_matches(['<', '>', '|', '='])
        .to_string();
    let (values, white) = match code.as_str() {
        // little-endian float32 (how numpy writes it here): straight from the bytes, one pass
        "f4" if descr.contains('<') => {
            let data = data_start.map_or(&[][..], |start| &bytes[start..]);
            if data.len() != height * width * 4 {
                return Err(FileError::new(
                    path,
                    format!(
                        "expected {} bytes of float32 samples for {height}×{width}, found {}",
                        height * width * 4,
                        data.len()
                    ),
                ));
            }
            let values: Vec<f32> = data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (Samples::Single(row_major(values, height, fortran)), None)
        }
        "f4" => (
            Samples::Single(row_major(npy.into_vec::<f32>().map_err(bad)?, height, fortran)),
            None,
        ),
        "f8" => (
            Samples::Double(row_major(npy.into_vec::<f64>().map_err(bad)?, height, fortran)),
            None,
        ),
        "u2" => {
            let values = npy.into_vec::<u16>().map_err(bad)?.into_iter().map(f64::from).collect();
            (Samples::Double(row_major(values, height, fortran)), Some(65535.0))
        }
        "u1" => {
            let values = npy.into_vec::<u8>().map_err(bad)?.into_iter().map(f64::from).collect();
            (Samples::Double(row_major(values, height, fortran)), Some(255.0))
        }
        _ => {
            return Err(FileError::new(
                path,
                format!("expected float32, float64, uint16 or uint8 samples, found dtype `{descr}`"),
            ))
        }
    };
    // a count that does not match the shape is refused by `read_mosaic`
    Ok((values, height, width, white, None))
}

/// An image of `height` rows, row-major: `values` as they are, or transposed when the file stores
/// the image column by column (`fortran`: value `c · height + r` is row r, column c).
fn row_major<T: Copy>(values: Vec<T>, height: usize, fortran: bool) -> Vec<T> {
    if !fortran || height == 0 || !values.len().is_multiple_of(height) {
        return values;
    }
    (0..height)
        .flat_map(|r| values.iter().skip(r).step_by(height).copied())
        .collect()
}

fn read_tiff(bytes: &[u8], path: &Path, check_size: &SizeCheck) -> FileResult<(Vec<f64>, usize, usize, Option<f64>)> {
    use tiff::decoder::{Decoder, DecodingResult};
    let bad = |e: tiff::TiffError| FileError::new(path, format!("not a readable TIFF: {e}"));
    let mut decoder = Decoder::new(Cursor::new(bytes)).map_err(bad)?;
    let (width, height) = decoder.dimensions().map_err(bad)?;
    check_size(height as usize, width as usize)?;
    let colour = decoder.colortype().map_err(bad)?;
    if !matches!(colour, tiff::ColorType::Gray(_)) {
        return Err(FileError::new(
            path,
            format!("expected a single-channel raw mosaic, found colour type {colour:?}"),
        ));
    }
    let (values, white): (Vec<f64>, Option<f64>) = match decoder.read_image().map_err(bad)? {
        DecodingResult::U16(v) => (v.into_iter().map(f64::from).collect(), Some(65535.0)),
        DecodingResult::U8(v) => (v.into_iter().map(f64::from).collect(), Some(255.0)),
        DecodingResult::F32(v) => (v.into_iter().map(f64::from).collect(), None),
        _ => return Err(FileError::new(path, "expected 8/16-bit unsigned or float32 samples")),
    };
    Ok((values, height as usize, width as usize, white))
}

fn read_png(bytes: &[u8], path: &Path, check_size: &SizeCheck) -> FileResult<(Vec<f64>, usize, usize, Option<f64>)> {
    let bad = |e: png::DecodingError| FileError::new(path, format!("not a readable PNG: {e}"));
    let mut reader = png::Decoder::new(Cursor::new(bytes)).read_info().map_err(bad)?;
    let info = reader.info();
    let (width, height, colour, depth) = (
        info.width as usize,
        info.height as usize,
        info.color_type,
        info.bit_depth,
    );
    check_size(height, width)?;
    if colour != png::ColorType::Grayscale || !matches!(depth, png::BitDepth::Eight | png::BitDepth::Sixteen) {
        return Err(FileError::new(
            path,
            format!("expected an 8- or 16-bit greyscale raw mosaic, found {colour:?} at {depth:?}"),
        ));
    }
    let mut buffer = crate::files::png_frame_buffer(&reader, bytes.len() as u64, path)?;
    let frame = reader.next_frame(&mut buffer).map_err(bad)?;
    let data = &buffer[..frame.buffer_size()];
    Ok(if depth == png::BitDepth::Sixteen {
        let values = data
            .chunks_exact(2)
            .map(|b| f64::from(u16::from_be_bytes([b[0], b[1]])))
            .collect();
        (values, height, width, Some(65535.0))
    } else {
        (data.iter().map(|&b| f64::from(b)).collect(), height, width, Some(255.0))
    })
}

fn read_rawloader(bytes: &[u8], path: &Path, white_level: Option<f64>, check_size: &SizeCheck) -> FileResult<Decoded> {
    let is_dng = extension(path) == "dng";
    if is_dng {
        check_tiff_extents(bytes).map_err(|reason| FileError::new(path, reason))?;
    }
    // building a RawLoader parses rawloader's whole camera database (tens of milliseconds): once
    static LOADER: std::sync::OnceLock<rawloader::RawLoader> = std::sync::OnceLock::new();
    let image = LOADER
        .get_or_init(rawloader::RawLoader::new)
        .decode(&mut BufReader::new(bytes), false)
        .map_err(|e| FileError::new(path, format!("not a raw file rawloader can decode: {e}")))?;
    if image.cpp != 1 {
        return Err(FileError::new(
            path,
            format!("expected a Bayer mosaic (1 component per pixel), found {}", image.cpp),
        ));
    }
    check_size(image.height, image.width)?;
    let [top, right, bottom, left] = image.crops;
    // what LibRaw knows of a model's masked margin and rawloader's camera table lacks
    let right = if is_dng {
        right
    } else {
        right.max(sony_masked_right_columns(&image.clean_model, image.width))
    };
    let (height, width) = (
        image.height.saturating_sub(top + bottom),
        image.width.saturating_sub(left + right),
    );
    let values: Vec<f64> = match &image.data {
        rawloader::RawImageData::Integer(v) => crop(v, image.width, top, left, height, width, f64::from),
        rawloader::RawImageData::Float(v) => crop(v, image.width, top, left, height, width, f64::from),
    };
    let white = white_level.unwrap_or(f64::from(image.whitelevels[0]));
    let camera = rawloader_camera(&image, (top, left), is_dng, white, path)?;
    Ok((Samples::Double(values), height, width, Some(white), Some(camera)))
}

/// The masked columns on the right of a Sony ARW's sensor data that rawloader's camera table does
/// not crop: LibRaw (`open_datastream`, non-DNG Sony files) narrows these models' images by 32
/// columns at these raw widths — the A7R II/III/IV and A99 II in APS-C mode (5216, 6304), the A7R in
/// crop mode (4580 to 5019), the A7 in crop mode (3968), the A7 II/III, A9 and A99 (3751 to 4119),
/// the A7S models (2816). A real ILCE-7RM3 ARW of 5216 × 3464 decodes to 5184 columns in LibRaw and
/// to all 5216 in rawloader, whose table gives that model no crop.
fn sony_masked_right_columns(model: &str, raw_width: usize) -> usize {
    let model = model.to_ascii_uppercase();
    let masked = ((model.starts_with("ILCE-7RM") || model == "ILCA-99M2") && matches!(raw_width, 5216 | 6304))
        || (model == "ILCE-7R" && (4580..5020).contains(&raw_width))
        || (model == "ILCE-7" && raw_width == 3968)
        || ((model.starts_with("ILCE-7M") || model == "ILCE-9" || model == "SLT-A99V")
            && (3751..4120).contains(&raw_width))
        || (model.starts_with("ILCE-7S") && raw_width == 2816);
    if masked {
        32
    } else {
        0
    }
}

/// Crates whose code decodes file bytes. Some of them panic on malformed input (rawloader, and the
/// `tiff` crate, found by fuzzing: an empty SampleFormat tag); l2l catches those panics and reports the
/// file instead.
const DECODER_CRATES: &[&str] = &[
    "/rawloader-",
    "/tiff-",
    "/png-",
    "/npyz-",
    "/fdeflate-",
    "/weezl-",
    "/miniz_oxide-",
    "/flate2-",
];

/// Runs a decoder on `path`'s bytes with its panics turned into an error naming the file. The panic
/// hook prints nothing for panics inside the decoder crates (the error says it all); a panic in l2l's
/// own code still goes to the hook installed before, so a bug stays visible (and fuzzing sees it).
pub(crate) fn guarded_decode<T>(path: &Path, decode: impl FnOnce() -> FileResult<T>) -> FileResult<T> {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_decoder = info
                .location()
                .is_some_and(|l| DECODER_CRATES.iter().any(|name| l.file().contains(name)));
            if !in_decoder {
                previous(info);
            }
        }));
    });
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|m| m.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        Err(FileError::new(
            path,
            format!("malformed file: the decoder failed ({message})"),
        ))
    })
}

fn crop<T: Copy>(
    data: &[T],
    full_width: usize,
    top: usize,
    left: usize,
    height: usize,
    width: usize,
    convert: impl Fn(T) -> f64,
) -> Vec<f64> {
    (0..height)
        .flat_map(|r| {
            data[(r + top) * full_width + left..][..width]
                .iter()
                .map(|&v| convert(v))
        })
        .collect()
}

/// The camera parameters of a decoded file, for the image cropped at `offset` (top, left): the CFA
/// pattern, the black level per CFA position (a DNG gives it per position, rawloader's other decoders
/// per colour), white balance normalised to green, and camera → sRGB from the file's XYZ → camera.
fn rawloader_camera(
    image: &rawloader::RawImage,
    (top, left): (usize, usize),
    is_dng: bool,
    white: f64,
    path: &Path,
) -> FileResult<RawMetadata> {
    let positions = [(0, 0), (0, 1), (1, 0), (1, 1)].map(|(r, c)| (r + top, c + left));
    let colours = positions.map(|(r, c)| image.cfa.color_at(r, c));
    let cfa_pattern = [CfaPattern::Rggb, CfaPattern::Bggr, CfaPattern::Grbg, CfaPattern::Gbrg]
        .into_iter()
        .find(|p| p.colours() == colours)
        .ok_or_else(|| {
            FileError::new(
                path,
                format!(
                    "CFA `{}` is not a Bayer pattern (expected RGGB, BGGR, GRBG or GBRG)",
                    image.cfa.name
                ),
            )
        })?;
    let black_level = [0, 1, 2, 3].map(|i| {
        let index = if is_dng {
            let (r, c) = positions[i];
            2 * (r % 2) + c % 2
        } else {
            colours[i]
        };
        (f64::from(image.blacklevels[index]) / white) as f32
    });
    let gains = &image.wb_coeffs[..3];
    let white_balance = if gains.iter().all(|g| g.is_finite() && *g > 0.0) {
        [gains[0] / gains[1], 1.0, gains[2] / gains[1]]
    } else {
        [1.0; 3]
    };
    let xyz_to_camera = [0, 1, 2].map(|r| [0, 1, 2].map(|c| f64::from(image.xyz_to_cam[r][c])));
    let colour_matrix = camera_to_srgb_from_xyz(xyz_to_camera).unwrap_or([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
    Ok(RawMetadata {
        cfa_pattern,
        black_level,
        white_balance,
        colour_matrix,
        intensity: 100.0,
    })
}

/// Checks that every strip and tile of every image directory of a TIFF-based file (the IFD chain and
/// SubIFDs, as DNGs keep the raw image) lies inside the file.
fn check_tiff_extents(bytes: &[u8]) -> Result<(), String> {
    let little = match bytes.get(..2) {
        Some(b"II") => true,
        Some(b"MM") => false,
        _ => return Err("not a TIFF-based raw file (no II/MM byte-order mark)".into()),
    };
    let read = |offset: usize, size: usize| -> Result<u64, String> {
        let field = bytes
            .get(offset..offset + size)
            .ok_or_else(|| format!("truncated: needs byte {}, the file has {}", offset + size, bytes.len()))?;
        let mut value = 0u64;
        for i in 0..size {
            let byte = if little { field[size - 1 - i] } else { field[i] };
            value = (value << 8) | u64::from(byte);
        }
        Ok(value)
    };
    let mut pending = vec![read(4, 4)? as usize];
    let mut visited = Vec::new();
    while let Some(ifd) = pending.pop() {
        if ifd == 0 || visited.contains(&ifd) || visited.len() > 64 {
            continue;
        }
        visited.push(ifd);
        let count = read(ifd, 2)? as usize;
        let mut tags: Vec<(u16, Vec<u64>)> = Vec::new();
        for entry in (0..count).map(|i| ifd + 2 + 12 * i) {
            let (tag, kind, n) = (
                read(entry, 2)? as u16,
                read(entry + 2, 2)?,
                read(entry + 4, 4)? as usize,
            );
            let size = match kind {
                3 => 2,
                4 | 13 => 4,
                _ => continue,
            };
            if !matches!(tag, 273 | 279 | 324 | 325 | 330) {
                continue;
            }
            let start = if n * size <= 4 {
                entry + 8
            } else {
                read(entry + 8, 4)? as usize
            };
            tags.push((
                tag,
                (0..n).map(|i| read(start + i * size, size)).collect::<Result<_, _>>()?,
            ));
        }
        let find = |wanted: u16| tags.iter().find(|(t, _)| *t == wanted).map(|(_, v)| v.as_slice());
        for (offsets, counts) in [(273, 279), (324, 325)] {
            if let (Some(offsets), Some(counts)) = (find(offsets), find(counts)) {
                for (offset, count) in offsets.iter().zip(counts) {
                    if offset + count > bytes.len() as u64 {
                        return Err(format!(
                            "truncated: image data ends at byte {}, the file has {} bytes",
                            offset + count,
                            bytes.len()
                        ));
                    }
                }
            }
        }
        pending.extend(find(330).unwrap_or_default().iter().map(|&o| o as usize));
        pending.push(read(ifd + 2 + 12 * count, 4)? as usize);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(file_name: &str, bytes: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name);
        std::fs::write(&path, bytes).unwrap();
        read_mosaic(&path, None).unwrap_err().to_string()
    }

    /// An `.npy` file as numpy's format description lays it out: magic, version 1.0, the header
    /// length, the header dict padded with spaces to a multiple of 64 bytes and ended by a newline.
    fn npy_file(descr: &str, fortran: bool, shape: (usize, usize), data: &[u8]) -> Vec<u8> {
        let order = if fortran { "True" } else { "False" };
        let mut header = format!(
            "{{'descr': '{descr}', 'fortran_order': {order}, 'shape': ({}, {}), }}",
            shape.0, shape.1
        );
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut file = b"\x93NUMPY\x01\x00".to_vec();
        file.extend((header.len() as u16).to_le_bytes());
        file.extend(header.as_bytes());
        file.extend(data);
        file
    }

    #[test]
    fn npy_mosaics_are_read_row_major_in_every_layout_and_float_type() {
        // the image [[0.5, 0.25, 1], [0.125, 0, 0.75]]: stored row by row, or column by column
        let image = [0.5f32, 0.25, 1.0, 0.125, 0.0, 0.75];
        let by_columns = [0.5f32, 0.125, 0.25, 0.0, 1.0, 0.75];
        let files = [
            (
                "<f4",
                false,
                image.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>(),
            ),
            ("<f4", true, by_columns.iter().flat_map(|v| v.to_le_bytes()).collect()),
            (">f4", false, image.iter().flat_map(|v| v.to_be_bytes()).collect()),
            (
                "<f8",
                true,
                by_columns.iter().flat_map(|&v| f64::from(v).to_le_bytes()).collect(),
            ),
        ];
        let dir = tempfile::tempdir().unwrap();
        for (descr, fortran, data) in files {
            let path = dir.path().join("m.npy");
            std::fs::write(&path, npy_file(descr, fortran, (2, 3), &data)).unwrap();
            let mosaic = read_mosaic(&path, None).unwrap();
            assert_eq!((mosaic.height, mosaic.width), (2, 3), "{descr} fortran={fortran}");
            assert_eq!(mosaic.values, image, "{descr} fortran={fortran}");
            // a white level divides in float64, then rounds to float32
            assert_eq!(read_mosaic(&path, Some(3.0)).unwrap().values[1], (0.25f64 / 3.0) as f32);
        }
        // float32 samples one value short of the shape
        let data: Vec<u8> = image[..5].iter().flat_map(|v| v.to_le_bytes()).collect();
        let err = refused("short.npy", &npy_file("<f4", false, (2, 3), &data));
        assert!(
            err.contains("short.npy") && err.contains("expected 24 bytes of float32 samples for 2×3, found 20"),
            "{err}"
        );
    }

    /// LibRaw's visible area for the Sony models whose masked margin rawloader's table lacks, at the
    /// raw widths LibRaw names; full-frame widths and other makers keep rawloader's crop.
    #[test]
    fn sony_aps_c_frames_lose_the_masked_columns_libraw_crops() {
        for (model, width, masked) in [
            ("ILCE-7RM3", 5216, 32),
            ("ILCE-7RM3", 7952, 0),
            ("ILCE-7RM4", 6304, 32),
            ("ILCA-99M2", 5216, 32),
            ("ILCE-7R", 4800, 32),
            ("ILCE-7R", 7392, 0),
            ("ILCE-7", 3968, 32),
            ("ILCE-7M3", 3968, 32),
            ("ILCE-9", 4000, 32),
            ("ILCE-7SM2", 2816, 32),
            ("ILCE-7SM2", 4240, 0),
            ("EOS 30D", 5216, 0),
        ] {
            assert_eq!(
                sony_masked_right_columns(model, width),
                masked,
                "{model} at {width} columns"
            );
        }
    }

    /// A decoded-pixel cap (the workbench's uploads): each format's declared size is refused before
    /// its samples are decoded.
    #[test]
    fn a_declared_size_beyond_the_pixel_cap_is_refused_in_every_format() {
        let npy = npy_file("<f4", false, (40, 50), &[0u8; 40 * 50 * 4]);
        let mut png = Vec::new();
        {
            let mut writer = png::Encoder::new(&mut png, 50, 40).write_header().unwrap();
            writer.write_image_data(&[0u8; 40 * 50]).unwrap();
        }
        let mut tiff = std::io::Cursor::new(Vec::new());
        tiff::encoder::TiffEncoder::new(&mut tiff)
            .unwrap()
            .write_image::<tiff::encoder::colortype::Gray8>(50, 40, &[0u8; 40 * 50])
            .unwrap();
        for (name, bytes) in [("m.npy", npy), ("m.png", png), ("m.tif", tiff.into_inner())] {
            let err = decode_mosaic(&bytes, Path::new(name), None, 1999)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(name) && err.contains("declares 40×50 = 2000 pixels, more than the 1999 taken here"),
                "{err}"
            );
            assert_eq!(
                decode_mosaic(&bytes, Path::new(name), None, 2000).unwrap().values.len(),
                2000
            );
        }
    }

    /// Inputs the fuzzer found (`fuzz/regressions/raw_mosaic`), as their outcomes: errors before any
    /// allocation the file cannot justify, and no panic.
    #[test]
    fn headers_claiming_more_than_the_file_holds_are_refused_before_allocating() {
        // npy version 2 stating a 4 GiB header in a 24-byte file
        let mut npy = b"\x93NUMPY\x02\x00".to_vec();
        npy.extend(0xffff_fffeu32.to_le_bytes());
        npy.extend(b"ascr{'descr'");
        let err = refused("huge.npy", &npy);
        assert!(
            err.contains("huge.npy") && err.contains("header claims 4294967294 bytes"),
            "{err}"
        );

        // an npy header nesting 40 brackets (npyz's parser takes minutes on it)
        let mut npy = b"\x93NUMPY\x01\x00".to_vec();
        let header = format!(
            "{{'descr': '<u2', 'fortran_order': False, 'shape': (20, {}12]]), }}",
            "[".repeat(40)
        );
        npy.extend((header.len() as u16).to_le_bytes());
        npy.extend(header.as_bytes());
        let err = refused("nested.npy", &npy);
        assert!(err.contains("nests brackets deeper"), "{err}");

        // a 200-byte PNG whose header claims 60 000 × 60 000 16-bit pixels (7.2 GB decoded)
        let mut png = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut png, 60_000, 60_000);
            encoder.set_depth(png::BitDepth::Sixteen);
            let mut writer = encoder.write_header().unwrap();
            writer
                .write_chunk(png::chunk::IDAT, &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])
                .unwrap();
        }
        let err = refused("huge.png", &png);
        assert!(
            err.contains("declares 60000×60000 = 3600000000 pixels, more than the 500000000"),
            "{err}"
        );

        // a TIFF with an empty SampleFormat tag: the tiff crate panics inside, l2l reports the file
        let tiff = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fuzz/regressions/raw_mosaic/tiff-empty-sample-format"
        ))
        .unwrap();
        let err = refused("odd.tiff", &tiff[1..]);
        assert!(err.contains("odd.tiff") && err.contains("the decoder failed"), "{err}");
    }
}
