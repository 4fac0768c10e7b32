//! Builds the stage template out of tree, as a third party would (the system tests' own helper), and
//! prints the plugin file: how the Python package's tests get a plugin the package was not built with.
//!
//! `scripts/cargo.sh run -q -p l2l-system-tests --example build_template -- WORK_DIR`

use l2l_system_tests::{build_template, ApiVariant};
use std::path::PathBuf;

fn main() {
    let Some(work) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: build_template WORK_DIR");
        std::process::exit(2);
    };
    println!(
        "{}",
        build_template(&work, ApiVariant::Unchanged, &[], "exposure").display()
    );
}
