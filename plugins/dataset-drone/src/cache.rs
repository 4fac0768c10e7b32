//! The tile cache: every DNG and its mask decoded once and cut into tiles, kept on disk (one file of
//! tiles per image) with a manifest that records what the tiles were made from. The cache is reused
//! while the sources (names, sizes, modification times) and the tiling are unchanged, and rebuilt
//! otherwise; every file is written atomically and the manifest last.

use l2l_plugin_sdk::{CfaPattern, RawMetadata};
use l2l_rawio::{decode_in_parallel, read_mask, read_mosaic, write_atomically, FileError, FileResult, InvalidFiles};
use serde::{Deserialize, Serialize};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// Bumped when the cache's file format changes, so old caches are rebuilt.
const FORMAT: u32 = 1;

/// Where one image's data comes from, and when it was last changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceStamp {
    /// The DNG's file name.
    pub dng: String,
    /// Its size and modification time (ns since the epoch).
    pub dng_stamp: (u64, u128),
    /// The mask's size and modification time; `None` when it is missing.
    pub mask_stamp: Option<(u64, u128)>,
}

/// The camera of an image, as the manifest stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CameraRecord {
    /// "RGGB", …
    pub cfa_pattern: String,
    /// Per CFA position, in [0, 1] units.
    pub black_level: [f32; 4],
    /// R, G, B gains.
    pub white_balance: [f32; 3],
    /// Camera → sRGB.
    pub colour_matrix: [f32; 9],
}

impl CameraRecord {
    fn from_metadata(camera: &RawMetadata) -> Self {
        Self {
            cfa_pattern: format!("{:?}", camera.cfa_pattern).to_uppercase(),
            black_level: camera.black_level,
            white_balance: camera.white_balance,
            colour_matrix: camera.colour_matrix,
        }
    }

    /// The record as metadata at `intensity`.
    pub fn metadata(&self, intensity: f32) -> RawMetadata {
        RawMetadata {
            cfa_pattern: CfaPattern::parse(&self.cfa_pattern).unwrap_or(CfaPattern::Rggb),
            black_level: self.black_level,
            white_balance: self.white_balance,
            colour_matrix: self.colour_matrix,
            intensity,
        }
    }
}

/// One cached image: its tiles, in the order of its tile file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedImage {
    /// The DNG's stem.
    pub stem: String,
    /// Its camera.
    pub camera: CameraRecord,
    /// Car pixels of each tile (row-major over the tile grid).
    pub car_pixels: Vec<u32>,
}

/// What the cache holds and what it was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`] of the writer.
    pub format: u32,
    /// Tile side.
    pub tile_size: usize,
    /// The white level the mosaics were scaled by (`None`: each file's own).
    pub white_level: Option<f64>,
    /// The sources, sorted by DNG name.
    pub sources: Vec<SourceStamp>,
    /// The images that made it in.
    pub images: Vec<CachedImage>,
    /// The files skipped (with `skip_invalid`), as warnings.
    pub skipped: Vec<String>,
}

/// The tile cache of one intensity folder at one tile size.
pub struct TileCache {
    /// The folder of the tile files and manifest.
    pub dir: PathBuf,
    /// What it holds.
    pub manifest: Manifest,
}

fn stamp(path: &Path) -> Option<(u64, u128)> {
    let meta = std::fs::metadata(path).ok()?;
    let modified = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?.as_nanos();
    Some((meta.len(), modified))
}

/// Every tile of a mosaic and its mask, row-major over the tile grid; each tile is t² little-endian u16
/// (the [0, 1] value × 65535) followed by t² mask bytes.
fn cut_tiles(values: &[f32], mask: &[u8], width: usize, rows: usize, cols: usize, t: usize) -> (Vec<u8>, Vec<u32>) {
    let mut bytes = Vec::with_capacity(rows * cols * 3 * t * t);
    let mut car_pixels = Vec::with_capacity(rows * cols);
    for tile_row in 0..rows {
        for tile_col in 0..cols {
            let pixel = |y: usize, x: usize| (tile_row * t + y) * width + tile_col * t + x;
            for y in 0..t {
                for x in 0..t {
                    let v = (values[pixel(y, x)].clamp(0.0, 1.0) * 65535.0).round() as u16;
                    bytes.extend_from_slice(&v.to_le_bytes());
                }
            }
            let mut cars = 0;
            for y in 0..t {
                for x in 0..t {
                    let m = mask[pixel(y, x)];
                    cars += u32::from(m);
                    bytes.push(m);
                }
            }
            car_pixels.push(cars);
        }
    }
    (bytes, car_pixels)
}

impl TileCache {
    /// Opens the cache in `dir` for the DNGs of `image_dir` and masks of `mask_dir`, rebuilding it when
    /// it is missing or stale.
    pub fn open(
        dir: &Path,
        image_dir: &Path,
        mask_dir: &Path,
        tile_size: usize,
        white_level: Option<f64>,
        skip_invalid: bool,
    ) -> FileResult<Self> {
        let dngs = l2l_rawio::files_with_extensions(image_dir, &["dng"])?;
        let mask_of =
            |dng: &Path| mask_dir.join(format!("{}.png", dng.file_stem().unwrap_or_default().to_string_lossy()));
        let sources: Vec<SourceStamp> = dngs
            .iter()
            .map(|dng| SourceStamp {
                dng: dng.file_name().unwrap_or_default().to_string_lossy().into_owned(),
                dng_stamp: stamp(dng).unwrap_or_default(),
                mask_stamp: stamp(&mask_of(dng)),
            })
            .collect();
        let manifest_path = dir.join("manifest.json");
        let existing: Option<Manifest> = std::fs::read(&manifest_path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        if let Some(manifest) = existing {
            let fresh = manifest.format == FORMAT
                && manifest.tile_size == tile_size
                && manifest.white_level == white_level
                && manifest.sources == sources
                && manifest
                    .images
                    .iter()
                    .all(|i| dir.join(format!("{}.tiles", i.stem)).is_file());
            if fresh {
                return Ok(Self {
                    dir: dir.to_path_buf(),
                    manifest,
                });
            }
        }
        std::fs::create_dir_all(dir).map_err(|e| FileError::new(dir, format!("creating the tile cache: {e}")))?;
        let built = decode_in_parallel(&dngs, |dng| -> FileResult<CachedImage> {
            let mosaic = read_mosaic(dng, white_level)?;
            let mask_path = mask_of(dng);
            if !mask_path.is_file() {
                return Err(FileError::new(
                    dng,
                    format!("no mask: expected {}", mask_path.display()),
                ));
            }
            let mask = read_mask(&mask_path)?;
            if (mask.height, mask.width) != (mosaic.height, mosaic.width) {
                return Err(FileError::new(
                    &mask_path,
                    format!(
                        "mask is {}×{} but its image {} is {}×{}",
                        mask.height,
                        mask.width,
                        dng.display(),
                        mosaic.height,
                        mosaic.width
                    ),
                ));
            }
            let camera = mosaic
                .camera
                .ok_or_else(|| FileError::new(dng, "the DNG carries no camera parameters"))?;
            let (rows, cols) = (mosaic.height / tile_size, mosaic.width / tile_size);
            let (bytes, car_pixels) = cut_tiles(&mosaic.values, &mask.values, mosaic.width, rows, cols, tile_size);
            let stem = dng.file_stem().unwrap_or_default().to_string_lossy().into_owned();
            write_atomically(&dir.join(format!("{stem}.tiles")), |out| Ok(out.write_all(&bytes)?))?;
            Ok(CachedImage {
                stem,
                camera: CameraRecord::from_metadata(&camera),
                car_pixels,
            })
        });
        let mut invalid = InvalidFiles::new(skip_invalid);
        let mut images = Vec::new();
        for result in built {
            if let Some(image) = invalid.check(result)? {
                images.push(image);
            }
        }
        let manifest = Manifest {
            format: FORMAT,
            tile_size,
            white_level,
            sources,
            images,
            skipped: invalid.warnings(),
        };
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| FileError::new(&manifest_path, e.to_string()))?;
        write_atomically(&manifest_path, |out| Ok(out.write_all(&json)?))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            manifest,
        })
    }

    /// Tile `tile` of image `image`: the mosaic values in [0, 1] and the mask, t² each.
    pub fn read_tile(&self, image: usize, tile: usize) -> FileResult<(Vec<f32>, Vec<u8>)> {
        let t = self.manifest.tile_size;
        let path = self.dir.join(format!("{}.tiles", self.manifest.images[image].stem));
        let mut file = std::fs::File::open(&path).map_err(|e| FileError::new(&path, format!("opening: {e}")))?;
        let mut bytes = vec![0u8; 3 * t * t];
        file.seek(SeekFrom::Start((tile * 3 * t * t) as u64))
            .and_then(|_| file.read_exact(&mut bytes))
            .map_err(|e| {
                FileError::new(
                    &path,
                    format!("reading tile {tile}: {e} (delete the cache folder to rebuild it)"),
                )
            })?;
        let values = bytes[..2 * t * t]
            .chunks_exact(2)
            .map(|b| f32::from(u16::from_le_bytes([b[0], b[1]])) / 65535.0)
            .collect();
        Ok((values, bytes[2 * t * t..].to_vec()))
    }
}
