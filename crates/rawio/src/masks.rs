//! Segmentation masks (PNG) and 16-bit single-channel TIFF mosaics: the other files of the
//! Raw-Drone and Raw-Microscopy layouts.

use crate::files::{write_atomically, FileError, FileResult};
use std::io::Cursor;
use std::path::Path;

/// A binary mask: 1 where the class is present.
#[derive(Debug, Clone, PartialEq)]
pub struct Mask {
    /// Row-major H×W, 0 or 1.
    pub values: Vec<u8>,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

/// Reads a PNG mask (grey, grey+alpha, RGB or RGBA, any bit depth): a pixel is 1 where any colour
/// channel is non-zero, as the Raw-Drone masks mark cars.
pub fn read_mask(path: &Path) -> FileResult<Mask> {
    crate::decode::guarded_decode(path, || decode_mask(path))
}

fn decode_mask(path: &Path) -> FileResult<Mask> {
    let bad = |e: png::DecodingError| FileError::new(path, format!("not a readable PNG mask: {e}"));
    let file = std::fs::File::open(path).map_err(|e| FileError::new(path, format!("opening: {e}")))?;
    let file_len = file
        .metadata()
        .map_err(|e| FileError::new(path, format!("reading: {e}")))?
        .len();
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().map_err(bad)?;
    let mut buffer = crate::files::png_frame_buffer(&reader, file_len, path)?;
    let frame = reader.next_frame(&mut buffer).map_err(bad)?;
    let channels = frame.color_type.samples();
    let colour_channels = match frame.color_type {
        png::ColorType::GrayscaleAlpha => 1,
        png::ColorType::Rgba => 3,
        _ => channels,
    };
    let pixels = buffer[..frame.buffer_size()].chunks_exact(channels);
    // a colour PNG is a mask only when it is grey stored as colour: a real colour image (a photo, a
    // label map in colours) would otherwise become "set wherever any channel is non-zero" unnoticed
    if let Some(index) = pixels
        .clone()
        .position(|pixel| pixel[..colour_channels].iter().any(|&v| v != pixel[0]))
    {
        let width = frame.width as usize;
        return Err(FileError::new(
            path,
            format!("a colour image, not a mask: its channels differ at pixel ({}, {}); expected a grey or black-and-white PNG", index % width, index / width),
        ));
    }
    let values = pixels.map(|pixel| u8::from(pixel[0] != 0)).collect();
    Ok(Mask {
        values,
        height: frame.height as usize,
        width: frame.width as usize,
    })
}

/// Writes a mask as an 8-bit grey PNG, 255 where set.
pub fn write_mask_png(path: &Path, mask: &Mask) -> FileResult<()> {
    let bytes: Vec<u8> = mask.values.iter().map(|&v| if v != 0 { 255 } else { 0 }).collect();
    write_atomically(path, |out| {
        let mut encoder = png::Encoder::new(out, mask.width as u32, mask.height as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&bytes)?;
        writer.finish()?;
        Ok(())
    })
}

/// Writes a 16-bit single-channel TIFF (as the Raw-Microscopy mosaics are stored).
pub fn write_tiff16(path: &Path, samples: &[u16], height: usize, width: usize) -> FileResult<()> {
    if samples.len() != height * width {
        return Err(FileError::new(
            path,
            format!("expected {height}×{width} samples to write, found {}", samples.len()),
        ));
    }
    // The TIFF encoder seeks, so the file is assembled in memory first.
    let mut buffer = Cursor::new(Vec::new());
    tiff::encoder::TiffEncoder::new(&mut buffer)
        .and_then(|mut e| e.write_image::<tiff::encoder::colortype::Gray16>(width as u32, height as u32, samples))
        .map_err(|e| FileError::new(path, format!("encoding TIFF: {e}")))?;
    write_atomically(path, |out| Ok(out.write_all(buffer.get_ref())?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read_mosaic;

    fn write_rgb(path: &Path, pixels: &[[u8; 3]], width: u32) {
        let file = std::fs::File::create(path).unwrap();
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width, pixels.len() as u32 / width);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder
            .write_header()
            .unwrap()
            .write_image_data(&pixels.concat())
            .unwrap();
    }

    #[test]
    fn grey_stored_as_colour_is_a_mask_and_a_colour_image_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let grey = dir.path().join("grey.png");
        write_rgb(&grey, &[[0, 0, 0], [255, 255, 255], [0, 0, 0], [255, 255, 255]], 2);
        assert_eq!(read_mask(&grey).unwrap().values, [0, 1, 0, 1]);
        let colour = dir.path().join("colour.png");
        write_rgb(&colour, &[[0, 0, 0], [255, 255, 255], [0, 0, 200], [255, 255, 255]], 2);
        let err = read_mask(&colour).unwrap_err().to_string();
        assert!(
            err.contains("colour.png") && err.contains("channels differ at pixel (0, 1)"),
            "{err}"
        );
    }

    #[test]
    fn masks_and_tiffs_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let mask = Mask {
            values: (0..12).map(|i| u8::from(i % 5 == 0)).collect(),
            height: 3,
            width: 4,
        };
        let path = dir.path().join("m.png");
        write_mask_png(&path, &mask).unwrap();
        assert_eq!(read_mask(&path).unwrap(), mask);

        let samples: Vec<u16> = (0..12).map(|i| i * 5000).collect();
        let path = dir.path().join("r.tiff");
        write_tiff16(&path, &samples, 3, 4).unwrap();
        let mosaic = read_mosaic(&path, None).unwrap();
        assert_eq!((mosaic.height, mosaic.width), (3, 4));
        assert!(mosaic.camera.is_none());
        for (a, b) in mosaic.values.iter().zip(&samples) {
            assert!((a * 65535.0 - f32::from(*b)).abs() < 1e-2);
        }
    }

    #[test]
    fn corrupt_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let samples = vec![7u16; 64 * 64];
        let tiff = dir.path().join("cut.tiff");
        write_tiff16(&tiff, &samples, 64, 64).unwrap();
        let bytes = std::fs::read(&tiff).unwrap();
        std::fs::write(&tiff, &bytes[..bytes.len() / 3]).unwrap();
        let err = read_mosaic(&tiff, None).unwrap_err().to_string();
        assert!(err.starts_with(&tiff.display().to_string()), "{err}");

        let png = dir.path().join("cut.png");
        let mask = Mask {
            values: (0..64 * 64).map(|i| u8::from(i % 3 == 0)).collect(),
            height: 64,
            width: 64,
        };
        write_mask_png(&png, &mask).unwrap();
        let bytes = std::fs::read(&png).unwrap();
        std::fs::write(&png, &bytes[..bytes.len() / 2]).unwrap();
        let err = read_mask(&png).unwrap_err().to_string();
        assert!(err.contains("cut.png") && err.contains("PNG"), "{err}");
    }
}
