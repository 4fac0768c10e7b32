//! libtorch's CUDA half, loaded at start-up only where a CUDA driver is installed.
//!
//! Linking `libtorch_cuda` made every start of the host load the CUDA libraries (about 1 GB of
//! shared objects, half a second on the 2-core machine) even where there is no GPU. Nothing names a
//! symbol of it: its static initialisers register libtorch's CUDA backend. So the host links only
//! libtorch's CPU half and loads `libtorch_cuda` here, before anything asks libtorch about devices,
//! when the driver library (`libcuda.so.1`) can be loaded; the registration is then the same as at
//! link time, and CUDA is still used automatically where a GPU is present.

use anyhow::{bail, Result};
use std::path::Path;
use std::sync::OnceLock;
use tch::Device;

/// The libtorch library folder the host was built against (from the shared build script).
pub(crate) const LIBTORCH_LIB: &str = env!("L2L_LIBTORCH_LIB");

/// What start-up found out about CUDA; decides whether a CUDA device can be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CudaBackend {
    /// The driver and `libtorch_cuda` are loaded: CUDA devices work when the driver sees any.
    Loaded,
    /// No CUDA driver library (`libcuda.so.1`) on this machine.
    NoDriver,
    /// This libtorch was built without CUDA (no `libtorch_cuda.so` beside `libtorch_cpu.so`).
    NotBuilt,
    /// The driver is there but `libtorch_cuda` did not load: the loader's message.
    Failed(String),
}

static BACKEND: OnceLock<CudaBackend> = OnceLock::new();

/// Loads the CUDA backend once per process where a driver is present (the host's `main` calls it
/// first; [`crate::device::parse_device`] too, for library users); later calls return the outcome.
pub fn ensure_loaded() -> &'static CudaBackend {
    BACKEND.get_or_init(|| {
        // SAFETY: the CUDA driver's and libtorch's initialisers only register themselves; both
        // libraries stay loaded for the life of the process (never unloaded, as the plugins).
        match unsafe { libloading::Library::new("libcuda.so.1") } {
            Ok(driver) => std::mem::forget(driver),
            Err(_) => return CudaBackend::NoDriver,
        }
        load_libtorch_cuda()
    })
}

/// Loads `libtorch_cuda.so` beside the libtorch the host links, with its symbols global (as a
/// link-time dependency's are), and keeps it loaded, whether or not a driver is present. Must come
/// before anything asks libtorch about CUDA: libtorch remembers the first answer.
pub fn load_libtorch_cuda() -> CudaBackend {
    let path = Path::new(LIBTORCH_LIB).join("libtorch_cuda.so");
    if !path.is_file() {
        return CudaBackend::NotBuilt;
    }
    let flags = libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_GLOBAL;
    // SAFETY: as in `ensure_loaded`; libtorch_cuda belongs to the libtorch this process links.
    match unsafe { libloading::os::unix::Library::open(Some(&path), flags) } {
        Ok(library) => {
            std::mem::forget(library);
            CudaBackend::Loaded
        }
        Err(e) => CudaBackend::Failed(format!("{}: {e}", path.display())),
    }
}

/// `device` if this process can compute on it; a CUDA device without a loaded CUDA backend is
/// refused with the reason, instead of libtorch's list of backends at the first tensor.
pub fn usable(device: Device) -> Result<Device> {
    let Device::Cuda(index) = device else { return Ok(device) };
    match ensure_loaded() {
        CudaBackend::Loaded => Ok(device),
        CudaBackend::NoDriver => {
            bail!("cuda:{index}: CUDA is not available here: no CUDA driver (libcuda.so.1) was found")
        }
        CudaBackend::NotBuilt => {
            bail!("cuda:{index}: CUDA is not available here: libtorch in {LIBTORCH_LIB} was built without CUDA")
        }
        CudaBackend::Failed(why) => {
            bail!("cuda:{index}: CUDA is not available here: loading libtorch's CUDA backend failed: {why}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cuda_device_is_usable_only_with_the_backend_loaded() {
        assert_eq!(usable(Device::Cpu).unwrap(), Device::Cpu);
        match ensure_loaded() {
            CudaBackend::Loaded => assert_eq!(usable(Device::Cuda(1)).unwrap(), Device::Cuda(1)),
            other => {
                let message = usable(Device::Cuda(1)).unwrap_err().to_string();
                assert!(
                    message.starts_with("cuda:1: CUDA is not available here"),
                    "{other:?}: {message}"
                );
            }
        }
    }
}
