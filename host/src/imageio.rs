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

/// [`read_raw_input`] of a file's bytes in memory (an upload); `name` only picks the format and names
/// it in errors; a file that declares more than `max_pixels` is refused before it is decoded.
pub fn decode_raw_input(bytes: &[u8], name: &Path, max_pixels: usize) -> Result<RawInput> {
    let mosaic = l2l_rawio::decode_mosaic(bytes, name, None, max_pixels)?;
    let tensor = Tensor::from_slice(&mosaic.values).f_view([mosaic.height as i64, mosaic.width as i64])?;
    Ok(RawInput {
        mosaic: tensor,
        metadata: mosaic.camera,
    })
}

/// Writes `contents` to `path` through a temporary file in the same directory and a rename, so a
/// reader never sees a half-written file and an existing file is only replaced by a complete one.
pub fn write_atomically(path: &Path, contents: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    Ok(l2l_rawio::write_atomically(path, |out| {
        contents(out).map_err(Into::into)
    })?)
}

/// Writes `value` as pretty JSON, atomically, with every object's keys sorted (through a
/// `serde_json::Value`), so that results files diff cleanly whatever the struct's field order.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let value = serde_json::to_value(value)?;
    write_atomically(path, |out| Ok(serde_json::to_writer_pretty(out, &value)?))
}

/// An image `[C, H, W]` (C = 1 or 3; a leading batch of 1 is dropped) as contiguous float32 planes on
/// the CPU. Files store the channels interleaved (H×W×C); the rows are interleaved one at a time as
/// they are written, so writing a 12-MP image costs no second 144 MB copy.
struct PlanarImage {
    chw: Tensor,
    height: usize,
    width: usize,
    channels: usize,
}

impl PlanarImage {
    fn new(image: &Tensor) -> Result<Self> {
        let image = if image.dim() == 4 {
            image.f_squeeze_dim(0)?
        } else {
            image.shallow_clone()
        };
        let size = image.size();
        if size.len() != 3 || !(size[0] == 1 || size[0] == 3) {
            bail!("expected an image [C, H, W] with 1 or 3 channels, found {size:?}");
        }
        let chw = image
            .f_detach()?
            .f_to_device(Device::Cpu)?
            .f_to_kind(Kind::Float)?
            .f_contiguous()?;
        Ok(Self {
            chw,
            channels: size[0] as usize,
            height: size[1] as usize,
            width: size[2] as usize,
        })
    }

    /// Calls `row` with each row of the image, channels interleaved (W×C values), top to bottom.
    fn for_each_interleaved_row(&self, mut row: impl FnMut(&[f32]) -> Result<()>) -> Result<()> {
        let (h, w, c) = (self.height, self.width, self.channels);
        // SAFETY: `chw` is a contiguous float32 CPU tensor of c·h·w values, owned by `self` and only
        // read while the slice lives.
        let planes = unsafe { std::slice::from_raw_parts(self.chw.data_ptr() as *const f32, c * h * w) };
        let mut interleaved = vec![0.0f32; w * c];
        let plane_row = |channel: usize, y: usize| &planes[(channel * h + y) * w..][..w];
        for y in 0..h {
            if c == 3 {
                // one pass over the three rows (the common case, worth its own loop)
                let (red, green, blue) = (plane_row(0, y), plane_row(1, y), plane_row(2, y));
                for (pixel, ((&r, &g), &b)) in interleaved.chunks_exact_mut(3).zip(red.iter().zip(green).zip(blue)) {
                    pixel.copy_from_slice(&[r, g, b]);
                }
            } else {
                for channel in 0..c {
                    for (pixel, &value) in interleaved.chunks_exact_mut(c).zip(plane_row(channel, y)) {
                        pixel[channel] = value;
                    }
                }
            }
            row(&interleaved)?;
        }
        Ok(())
    }
}

/// Writes an image `[C, H, W]` by extension: `.png` (8 or 16 bits, values clamped to [0, 1]),
/// `.tif`/`.tiff` (float32), `.npy` (float32 H×W×C).
pub fn write_image(path: &Path, image: &Tensor, png_bits: u8) -> Result<()> {
    let image = PlanarImage::new(image)?;
    let (h, w, c) = (image.height, image.width, image.channels);
    match l2l_rawio::extension(path).as_str() {
        "png" => write_atomically(path, |out| {
            encode_png(&image, png_bits, png::Compression::Balanced, out)
        }),
        "tif" | "tiff" => {
            let mut values = Vec::with_capacity(h * w * c);
            image.for_each_interleaved_row(|row| {
                values.extend_from_slice(row);
                Ok(())
            })?;
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
            out.write_all(&npy_header(&[h as u64, w as u64, c as u64])?)?;
            // little-endian float32 (`<f4`, as the header says), a row at a time
            let mut bytes = Vec::with_capacity(w * c * 4);
            image.for_each_interleaved_row(|row| {
                bytes.clear();
                bytes.extend(row.iter().flat_map(|v| v.to_le_bytes()));
                Ok(out.write_all(&bytes)?)
            })
        }),
        other => bail!(
            "{}: unknown output format `.{other}`; expected .png, .tiff or .npy",
            path.display()
        ),
    }
}

/// The `.npy` header (npyz's) of a little-endian float32 array of `shape`. npyz's writer takes the
/// values one call each — 36 M calls for a 12-MP RGB image, once most of an export's time — so
/// [`write_image`] writes the values itself, a row at a time.
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

/// An image `[C, H, W]` as PNG bytes with the pixel values `write_image` writes to a `.png` file (8 or
/// 16 bits, clamped to [0, 1]), compressed for speed rather than size: the workbench's pages.
pub fn png_bytes(image: &Tensor, bits: u8) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    encode_png(&PlanarImage::new(image)?, bits, png::Compression::Fastest, &mut bytes)?;
    Ok(bytes)
}

fn encode_png(image: &PlanarImage, bits: u8, compression: png::Compression, out: &mut dyn Write) -> Result<()> {
    let depth = match bits {
        8 => png::BitDepth::Eight,
        16 => png::BitDepth::Sixteen,
        other => bail!("PNG bit depth must be 8 or 16, found {other}"),
    };
    let mut bytes = Vec::with_capacity(image.height * image.width * image.channels * (bits as usize / 8));
    image.for_each_interleaved_row(|row| {
        if bits == 8 {
            bytes.extend(row.iter().map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8));
        } else {
            bytes.extend(
                row.iter()
                    .flat_map(|v| ((v.clamp(0.0, 1.0) * 65535.0).round() as u16).to_be_bytes()),
            );
        }
        Ok(())
    })?;
    let mut encoder = png::Encoder::new(out, image.width as u32, image.height as u32);
    encoder.set_color(if image.channels == 3 {
        png::ColorType::Rgb
    } else {
        png::ColorType::Grayscale
    });
    encoder.set_depth(depth);
    encoder.set_compression(compression);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&bytes)?;
    writer.finish()?;
    Ok(())
}
