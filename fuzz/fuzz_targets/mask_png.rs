//! Fuzz target `mask_png`: see `l2l_fuzz_harness::mask_png` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| l2l_fuzz_harness::mask_png(data));
