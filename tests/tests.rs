//! Every end-to-end test of l2l in one binary, a module per feature (as ripgrep's `tests/tests.rs`):
//! the built host binary and plugins through the command line, the ABI, out-of-tree plugins, the
//! workbench, sweeps, faults. One test binary links libtorch once instead of once per feature.
//! `cargo test -p l2l-system-tests MODULE::` runs one feature's tests.

mod abi;
mod bands;
mod cli;
mod datasets;
mod download;
mod experiments;
mod faults;
mod fuzz_regressions;
mod out_of_tree;
mod predict;
mod run_store;
mod serve;
mod sweep;
mod training;
mod trust;
