//! Reading raw mosaics and writing processed images, every write atomic (temp file, then rename).

use anyhow::{bail, Result};
use l2l_plugin_api::RawMetadata;
use npyz::WriterBuilder;
use std::io::Write;
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// A raw mosaic and, where the file carries them, its camera parameters.
pub struct RawInput {
    /// H×W float32, scaled to [0, 1] by the white level, black level kept.
    pub mosaic: Tensor,
    /// CFA pattern, black level, white balance and colour matrix from the file (rawloader formats).
    pub metadata: Option<RawMetadata>,
}

/// Reads a raw mosaic as an H×W float32 tensor scaled to [0, 1] by the white level (black level kept),
/// with the file's camera metadata when the format has any; the formats are those of
/// [`l2l_rawio::read_mosaic`].
pub fn read_raw_input(path: &Path, white_level: Option<f64>) -> Result<RawInput> {
    let mosaic = l2l_rawio::read_mosaic(path, white_level)?;
    let tensor = Tensor::from_slice(&mosaic.values).f_view([mosaic.height as i64, mosaic.width as i64])?;
    Ok(RawInput {
        mosaic: tensor,
        metadata: mosaic.camera,
    })
}

/// Writes `contents` to `path` through a temporary file in the same directory and a rename, so a
/// reader never sees a half-written file and an existing file is only replaced by a complete one.
pub fn write_atomically(path: &Path, contents: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    Ok(l2l_rawio::write_atomically(path, |out| contents(out).map_err(Into::into))?)
}

/// An image `[C, H, W]` (C = 1 or 3; a leading batch of 1 is dropped) as a contiguous H×W×C float32
/// CPU tensor, with H, W and C.
fn interleaved(image: &Tensor) -> Result<(Tensor, usize, usize, usize)> {
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
    Ok((hwc, size[1] as usize, size[2] as usize, size[0] as usize))
}

/// Writes an image `[C, H, W]` by extension: `.png` (8 or 16 bits, values clamped to [0, 1]),
/// `.tif`/`.tiff` (float32), `.npy` (float32 H×W×C).
pub fn write_image(path: &Path, image: &Tensor, png_bits: u8) -> Result<()> {
    let (hwc, h, w, c) = interleaved(image)?;
    // SAFETY: `hwc` is a contiguous float32 CPU tensor of h·w·c values, owned here and only read
    // while the slice lives (copying a 12-MP image's 144 MB into a Vec would cost as much as writing).
    let values = unsafe { std::slice::from_raw_parts(hwc.data_ptr() as *const f32, h * w * c) };
    match l2l_rawio::extension(path).as_str() {
        "png" => write_png(path, values, h, w, c, png_bits),
        "tif" | "tiff" => {
            // The TIFF encoder seeks, so the file is assembled in memory first.
            let mut buffer = std::io::Cursor::new(Vec::new());
            let mut encoder = tiff::encoder::TiffEncoder::new(&mut buffer)?;
            if c == 3 {
                encoder.write_image::<tiff::encoder::colortype::RGB32Float>(w as u32, h as u32, values)?;
            } else {
                encoder.write_image::<tiff::encoder::colortype::Gray32Float>(w as u32, h as u32, values)?;
            }
            write_atomically(path, |out| Ok(out.write_all(buffer.get_ref())?))
        }
        "npy" => write_atomically(path, |out| {
            out.write_all(&npy_header(&[h as u64, w as u64, c as u64])?)?;
            write_f32_le(out, values)
        }),
        other => bail!(
            "{}: unknown output format `.{other}`; expected .png, .tiff or .npy",
            path.display()
        ),
    }
}

/// The `.npy` header (npyz's) of a float32 array of `shape`. npyz's writer takes the values one
/// call each — 36 M calls for a 12-MP RGB image, once most of an export's time — so
/// [`write_image`] writes the values itself, in blocks.
fn npy_header(shape: &[u64]) -> Result<Vec<u8>> {
    let mut header = Vec::new();
    let little_endian_f32: npyz::TypeStr = "<f4".parse()?;
    let writer = npyz::WriteOptions::<f32>::new()
        .dtype(npyz::DType::Plain(little_endian_f32))
        .shape(shape)
        .writer(&mut header)
        .begin_nd()?;
    // dropped before any value is written: the header stays as written (npyz's complaint about the
    // missing values is discarded on drop; the caller writes them)
    drop(writer);
    Ok(header)
}

/// Writes `values` as little-endian float32 (`<f4`, as [`npy_header`] says), a block at a time.
fn write_f32_le(out: &mut dyn Write, values: &[f32]) -> Result<()> {
    const BLOCK: usize = 1 << 16;
    let mut bytes = Vec::with_capacity(BLOCK * 4);
    for block in values.chunks(BLOCK) {
        bytes.clear();
        bytes.extend(block.iter().flat_map(|v| v.to_le_bytes()));
        out.write_all(&bytes)?;
    }
    Ok(())
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
