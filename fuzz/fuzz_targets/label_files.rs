//! Fuzz target `label_files`: see `l2l_fuzz_harness::label_files` for what it feeds and checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| l2l_fuzz_harness::label_files(data));
