//! Raw files for l2l: what the dataset plugins and the host read and write on disk, with no tensors.
//!
//! - [`read_mosaic`]: a raw mosaic from any format l2l takes (rawloader's raw formats and DNG, 8/16-bit
//!   or float TIFF, 16-bit PNG, `.npy`), scaled to [0, 1], with the file's camera parameters;
//! - [`write_dng`], [`write_tiff16`], [`write_mask_png`], [`read_mask`]: the files of the Raw-Drone and
//!   Raw-Microscopy layouts, so generated data can be laid out as the published sets are;
//! - [`labels`]: the label files of those layouts;
//! - [`InvalidFiles`]: the `skip_invalid` policy every loader shares;
//! - [`write_atomically`]: every write goes through a temporary file and a rename.
//!
//! Every error names the file (and the line, for text files): [`FileError`].
//! Not here: tiling, caching and splitting, which belong to the loaders and the host.

mod camera;
mod decode;
mod dng;
mod files;
pub mod labels;
mod masks;
mod validation;

pub use camera::{invert3, CameraOverride, NEUTRAL_CAMERA, SRGB_TO_XYZ};
pub use decode::{decode_mosaic, read_mosaic, Mosaic, MAX_MOSAIC_PIXELS};
pub use dng::{write_dng, DngImage};
pub use files::{
    extension, files_with_extensions, intensity_folder, published_intensity, remove_stale_temporaries,
    write_atomically, FileError, FileResult, PUBLISHED_INTENSITIES,
};
pub use masks::{read_mask, write_mask_png, write_tiff16, Mask};
pub use validation::{decode_in_parallel, InvalidFiles};
