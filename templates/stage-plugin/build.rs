// Lets the plugin's own test binaries find libtorch without LD_LIBRARY_PATH; the host, which loads
// the plugin, has libtorch loaded already.
fn main() {
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}
