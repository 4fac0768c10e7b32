//! Writes the fuzz targets' seed corpus, `fuzz/corpus/NAME/`: small valid inputs of every format each
//! target reads, so libFuzzer starts from files that reach deep into the decoders. The seeds are kept
//! in git; run this again only to change them:
//!   cargo run -p l2l-fuzz-harness --example make_seed_corpus

use l2l_plugin_api::{CfaPattern, RawMetadata};
use l2l_rawio::{write_dng, write_mask_png, write_tiff16, DngImage, Mask};
use npyz::WriterBuilder;
use std::path::{Path, PathBuf};

fn corpus_dir(target: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    std::fs::create_dir_all(&dir).expect("creating the corpus folder");
    dir
}

/// A raw_mosaic seed: the selector byte for `extension` (see the harness) and the file.
fn raw_seed(name: &str, extension_index: u8, file: &Path) {
    let mut bytes = vec![extension_index];
    bytes.extend(std::fs::read(file).expect("reading a written seed"));
    std::fs::write(corpus_dir("raw_mosaic").join(name), bytes).expect("writing a seed");
}

fn ramp(height: usize, width: usize, max: u16) -> Vec<u16> {
    (0..height * width).map(|i| (i * 997 % max as usize) as u16).collect()
}

fn main() {
    let scratch = tempfile::tempdir().expect("scratch directory");
    let (height, width) = (10, 12);
    for (index, cfa_pattern) in [CfaPattern::Rggb, CfaPattern::Bggr, CfaPattern::Grbg, CfaPattern::Gbrg]
        .into_iter()
        .enumerate()
    {
        let path = scratch.path().join("seed.dng");
        let camera = RawMetadata {
            cfa_pattern,
            black_level: [0.0625; 4],
            white_balance: [2.0, 1.0, 1.6],
            colour_matrix: [1.6, -0.4, -0.2, -0.2, 1.5, -0.3, 0.0, -0.5, 1.5],
            intensity: 100.0,
        };
        let samples = ramp(height, width, 4095);
        write_dng(
            &path,
            &DngImage {
                samples: &samples,
                height,
                width,
                white_level: 4095,
                camera,
                make_model: ("l2l", "seed"),
            },
        )
        .expect("writing a DNG seed");
        raw_seed(&format!("dng_{index}"), 0, &path);
    }
    let tiff = scratch.path().join("seed.tiff");
    write_tiff16(&tiff, &ramp(height, width, 65535), height, width).expect("writing a TIFF seed");
    raw_seed("tiff16", 1, &tiff);

    let mask = Mask {
        values: (0..height * width).map(|i| u8::from(i % 3 == 0)).collect(),
        height,
        width,
    };
    let mask_path = scratch.path().join("mask.png");
    write_mask_png(&mask_path, &mask).expect("writing a PNG seed");
    raw_seed("png8", 2, &mask_path);
    std::fs::copy(&mask_path, corpus_dir("mask_png").join("grey8")).expect("copying a mask seed");
    let mut rgb16 = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut rgb16, 3, 2);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Sixteen);
        let mut writer = encoder.write_header().expect("PNG header");
        writer.write_image_data(&[0x12; 3 * 2 * 8]).expect("PNG data");
    }
    std::fs::write(corpus_dir("mask_png").join("rgba16"), &rgb16).expect("writing a mask seed");

    let mut npy = Vec::new();
    {
        let mut writer = npyz::WriteOptions::<u16>::new()
            .default_dtype()
            .shape(&[height as u64, width as u64])
            .writer(&mut npy)
            .begin_nd()
            .expect("npy header");
        writer.extend(ramp(height, width, 65535)).expect("npy data");
        writer.finish().expect("npy end");
    }
    let mut npy_seed = vec![3];
    npy_seed.extend(npy);
    std::fs::write(corpus_dir("raw_mosaic").join("npy_u16"), npy_seed).expect("writing a seed");

    let labels = corpus_dir("label_files");
    std::fs::write(
        labels.join("stems"),
        "# stem class\nimg_0001 EOS\nimg_0002 LYT\n\nimg_0003 MON NGS\n",
    )
    .expect("writing a label seed");
    std::fs::write(
        labels.join("csv"),
        "file,label\nimages/a.dng,car\n b.tiff , none\n,empty\n",
    )
    .expect("writing a label seed");

    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    for name in [
        "quickstart.toml",
        "forensics.toml",
        "train/cells-parametrized.toml",
        "pipelines/parametrized.toml",
    ] {
        let seed = name.replace('/', "_");
        std::fs::copy(configs.join(name), corpus_dir("config").join(seed)).expect("copying a config seed");
    }
}
