//! Build script shared by every l2l crate that links libtorch (the host, each plugin, the tests).
//!
//! torch-sys links libtorch dynamically but leaves finding it at run time to the caller; an rpath to
//! the libtorch it was built against lets `l2l-host` and the test binaries run with no environment
//! variables. Where libtorch has CUDA, `libtorch_cuda` is kept as a dependency even though no symbol
//! of it is named, so CUDA devices are visible without extra set-up.

/// Emits the linker arguments; needs `torch-sys` as a direct dependency (for `DEP_TCH_LIBTORCH_LIB`).
pub fn main() {
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        panic!("DEP_TCH_LIBTORCH_LIB is unset: add `torch-sys` as a direct dependency of this crate");
    };
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    if std::path::Path::new(&lib).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
