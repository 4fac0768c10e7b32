//! Demosaicing quality on a folder of ground-truth RGB PNGs (e.g. `../shared/data/kodak24`): each image
//! is mosaiced (RGGB), demosaiced by each demosaicer plugin, and compared with the original — PSNR in
//! dB on [0, 1], all three channels, 8-pixel border excluded, mean over images (the protocol of the
//! Kodak reference numbers).
//!
//! `scripts/cargo.sh run --release -p l2l-system-tests --example kodak_psnr -- DIR [STAGE...]`

use anyhow::{bail, Context, Result};
use l2l_host::plugins::Registry;
use l2l_host::run::chart::psnr;
use l2l_system_tests::profile_dir;
use tch::{Device, Kind, Tensor};

fn read_png(path: &std::path::Path) -> Result<Tensor> {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path)?));
    let mut reader = decoder.read_info()?;
    let mut buffer = vec![0; reader.output_buffer_size().context("PNG too large")?];
    let info = reader.next_frame(&mut buffer)?;
    if info.color_type != png::ColorType::Rgb || info.bit_depth != png::BitDepth::Eight {
        bail!(
            "{}: expected 8-bit RGB, found {:?} {:?}",
            path.display(),
            info.color_type,
            info.bit_depth
        );
    }
    let (h, w) = (info.height as i64, info.width as i64);
    let pixels = Tensor::from_slice(&buffer[..info.buffer_size()]).f_view([h, w, 3])?;
    Ok(pixels
        .f_permute([2, 0, 1])?
        .f_to_kind(Kind::Double)?
        .f_div_scalar(255.0)?)
}

/// RGGB sampling of `[3, H, W]`, by direct indexing: `[1, 1, H, W]`.
fn mosaic(rgb: &Tensor) -> Result<Tensor> {
    let size = rgb.size();
    let (h, w) = (size[1], size[2]);
    let mut out = Tensor::zeros([h, w], (Kind::Double, Device::Cpu));
    for (dy, dx, c) in [(0, 0, 0), (0, 1, 1), (1, 0, 1), (1, 1, 2)] {
        let rows = Tensor::f_arange_start_step(dy, h, 2, (Kind::Int64, Device::Cpu))?;
        let cols = Tensor::f_arange_start_step(dx, w, 2, (Kind::Int64, Device::Cpu))?;
        let plane = rgb.f_get(c)?.f_index_select(0, &rows)?.f_index_select(1, &cols)?;
        let _ = out.f_index_put_(
            &[Some(rows.f_view([-1, 1])?), Some(cols.f_view([1, -1])?)],
            &plane,
            false,
        )?;
    }
    Ok(out.f_view([1, 1, h, w])?)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args.first().context("usage: kodak_psnr DIR [STAGE...]")?;
    let stages: Vec<&str> = if args.len() > 1 {
        args[1..].iter().map(String::as_str).collect()
    } else {
        vec!["demosaic_bilinear", "demosaic_malvar2004", "demosaic_menon2007"]
    };
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    files.sort();
    let registry = Registry::discover(&[profile_dir()]);
    let images = files.iter().map(|f| read_png(f)).collect::<Result<Vec<_>>>()?;
    println!("{} images from {dir}", images.len());
    for stage_name in stages {
        let mut stage = registry.build_stage(
            stage_name,
            None,
            &l2l_system_tests::table("cfa_pattern = \"RGGB\""),
            stage_name,
        )?;
        stage.to(Device::Cpu, Kind::Double)?;
        let mut total = 0.0;
        for image in &images {
            let out = tch::no_grad(|| stage.forward(&mosaic(image)?))?;
            total += psnr(&out.f_get(0)?.f_clamp(0.0, 1.0)?, image, 8)?;
        }
        println!("{stage_name:<22} {:.2} dB", total / images.len() as f64);
    }
    Ok(())
}
