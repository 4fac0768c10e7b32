//! Build script shared by every l2l crate that links libtorch (the host, each plugin, the tests).
//!
//! torch-sys links libtorch dynamically but leaves finding it at run time to the caller; an rpath to
//! the libtorch it was built against lets `l2l-host` and the test binaries run with no environment
//! variables. `libtorch_cuda` is not linked (no symbol of it is named, and loading it costs half a
//! second at every start): the host loads it at start-up where a CUDA driver is present (its `cuda`
//! module, which reads the folder from `L2L_LIBTORCH_LIB`).

/// Emits the linker arguments; needs `torch-sys` as a direct dependency (for `DEP_TCH_LIBTORCH_LIB`).
pub fn main() {
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        panic!("DEP_TCH_LIBTORCH_LIB is unset: add `torch-sys` as a direct dependency of this crate");
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    println!("cargo:rustc-env=L2L_LIBTORCH_LIB={lib}");
}
