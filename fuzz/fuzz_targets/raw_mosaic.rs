//! Fuzz target `raw_mosaic`: see `l2l_fuzz_harness::raw_mosaic` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| l2l_fuzz_harness::raw_mosaic(data));
