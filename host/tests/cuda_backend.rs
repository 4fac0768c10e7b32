//! Loading `libtorch_cuda` at run time registers libtorch's CUDA backend as linking it did. A test
//! binary of its own: libtorch remembers its first answer about CUDA, so nothing else in the process
//! may ask before the library is loaded.

use l2l_host::cuda::{load_libtorch_cuda, CudaBackend};
use tch::{Device, Kind, Tensor};

#[test]
fn loading_libtorch_cuda_registers_the_cuda_backend() {
    if load_libtorch_cuda() == CudaBackend::NotBuilt {
        eprintln!("libtorch without CUDA: nothing to register");
        return;
    }
    // Registered, the CUDA backend answers for itself: a tensor where a GPU is present, and the
    // driver's absence otherwise. Unregistered, libtorch says that no kernel exists for the 'CUDA'
    // backend, or that the CUDA library has not been loaded.
    match Tensor::f_zeros([2], (Kind::Float, Device::Cuda(0))) {
        Ok(t) => assert_eq!(t.device(), Device::Cuda(0)),
        Err(e) => {
            let message = e.to_string();
            assert!(message.contains("Found no NVIDIA driver"), "{message}");
        }
    }
}
