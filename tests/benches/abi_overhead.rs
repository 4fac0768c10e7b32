//! The cost of the plugin boundary: the same `gamma` stage called directly (isp-core linked as a Rust
//! library) and through the loaded plugin (handles, vtable, catch_unwind, error conversion), on a tiny
//! tensor where per-call overhead dominates and on a 512×512 image where the work does.
//!
//! Run with `make bench` (release; builds the plugins first). Prints median time per call.

use l2l_host::plugins::Registry;
use l2l_isp_core::Gamma;
use l2l_plugin_sdk::{BuildStage, Module};
use l2l_system_tests::plugin_library;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

/// Median over 7 rounds of the mean time per call, in microseconds.
fn per_call_micros(calls: usize, mut call: impl FnMut()) -> f64 {
    for _ in 0..calls / 10 + 1 {
        call();
    }
    let mut rounds: Vec<f64> = (0..7)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..calls {
                call();
            }
            start.elapsed().as_secs_f64() * 1e6 / calls as f64
        })
        .collect();
    rounds.sort_by(f64::total_cmp);
    rounds[3]
}

fn main() {
    let registry = Registry::discover(&[plugin_library("l2l_isp_core")]);
    let mut through_plugin = registry
        .build_stage("gamma", None, &toml::Table::new(), "bench")
        .expect("gamma from the plugin");
    let mut direct = Gamma::build(Default::default()).expect("gamma built directly");
    println!(
        "{:<14} {:>12} {:>14} {:>12}",
        "input", "direct µs", "via plugin µs", "overhead µs"
    );
    for (label, shape, calls) in [
        ("1×3×8×8", [1i64, 3, 8, 8], 20_000),
        ("1×3×512×512", [1, 3, 512, 512], 100),
    ] {
        let x = Tensor::rand(shape, (Kind::Float, Device::Cpu));
        let direct_us = tch::no_grad(|| per_call_micros(calls, || drop(direct.forward(&x).expect("direct forward"))));
        let plugin_us =
            tch::no_grad(|| per_call_micros(calls, || drop(through_plugin.forward(&x).expect("plugin forward"))));
        println!(
            "{label:<14} {direct_us:>12.2} {plugin_us:>14.2} {:>12.2}",
            plugin_us - direct_us
        );
    }
}
