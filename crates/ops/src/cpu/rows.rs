//! The loops' plumbing: a new output tensor over an input's values, and rows split across libtorch's
//! threads.

use l2l_plugin_sdk::PluginResult;
use tch::{Device, Kind, Tensor};

/// Runs `row(plane, i, out_row)` for every output row of every H×W plane: each libtorch thread takes a
/// block of rows and runs it across all planes, row by row (so the planes' rows `i` are written one
/// after the other, while the input rows they read are still in cache).
pub fn for_each_row(out: &mut [f32], width: usize, height: usize, row: impl Fn(usize, usize, &mut [f32]) + Sync) {
    if out.is_empty() {
        return;
    }
    let per_thread = height.div_ceil(tch::get_num_threads().max(1) as usize);
    let threads = height.div_ceil(per_thread);
    // blocks[t][plane]: rows t·per_thread.. of that plane
    let mut blocks: Vec<Vec<&mut [f32]>> = (0..threads).map(|_| Vec::new()).collect();
    for plane in out.chunks_mut(height * width) {
        for (t, block) in plane.chunks_mut(per_thread * width).enumerate() {
            blocks[t].push(block);
        }
    }
    let run_block = |t: usize, mut planes: Vec<&mut [f32]>| {
        let rows = planes[0].len() / width;
        for k in 0..rows {
            for (plane, block) in planes.iter_mut().enumerate() {
                row(plane, t * per_thread + k, &mut block[k * width..(k + 1) * width]);
            }
        }
    };
    if threads == 1 {
        return run_block(0, blocks.pop().unwrap_or_default());
    }
    std::thread::scope(|scope| {
        for (t, planes) in blocks.into_iter().enumerate() {
            let run_block = &run_block;
            scope.spawn(move || run_block(t, planes));
        }
    });
}

/// Runs `fill(input, output)` on `x`'s values (contiguous) and a new float32 CPU tensor of
/// `output_shape`; returns that tensor. `fill` is not called when either is empty.
pub fn with_output(x: &Tensor, output_shape: &[i64], fill: impl FnOnce(&[f32], &mut [f32])) -> PluginResult<Tensor> {
    let x = x.f_contiguous()?;
    let out = Tensor::f_empty(output_shape, (Kind::Float, Device::Cpu))?;
    let (n_in, n_out) = (x.numel(), out.numel());
    // SAFETY: `x` is contiguous float32 on the CPU (callers check `eligible`; made contiguous above)
    // with n_in values and is only read; `out` is new and contiguous with n_out values, so nothing
    // else reads or writes it while the slice lives.
    let (input, output) = unsafe {
        (
            std::slice::from_raw_parts(x.data_ptr() as *const f32, n_in),
            std::slice::from_raw_parts_mut(out.data_ptr() as *mut f32, n_out),
        )
    };
    if n_in > 0 && n_out > 0 {
        fill(input, output);
    }
    Ok(out)
}

/// Applies `fill(input, H, W, output)` to a new tensor shaped like `x`.
pub(super) fn map_planes(x: &Tensor, fill: impl FnOnce(&[f32], usize, usize, &mut [f32])) -> PluginResult<Tensor> {
    let size = x.size();
    let (h, w) = (size[size.len() - 2] as usize, size[size.len() - 1] as usize);
    with_output(x, &size, |input, output| fill(input, h, w, output))
}
