//! Tensors across the plugin boundary: an owned libtorch tensor reference, tagged with the libtorch
//! version it was made by.
//!
//! # Ownership
//! A [`TensorHandle`] owns exactly one reference to a libtorch tensor (one `at::Tensor` allocated by
//! torch-sys's shim; the tensor's storage and autograd graph are shared and reference-counted inside
//! libtorch). Passing a handle by value passes that reference:
//! - arguments (`forward`'s input, `load_state`'s tensors) belong to the callee, which frees them;
//! - results (`forward`'s output, `parameters`, `state`, samples) belong to the caller.
//!
//! A handle is freed by turning it into a [`tch::Tensor`] ([`TensorHandle::into_tensor`]), whose drop
//! releases the reference, or by dropping the handle. Host and plugins link the same libtorch, so
//! either side may free a reference the other made. A handle whose tag names another libtorch is never
//! dereferenced: converting it fails and dropping it leaks it, which is the only safe thing to do with
//! memory laid out by a foreign libtorch.

use abi_stable::StableAbi;
use std::ffi::c_void;
use tch::Tensor;

/// The libtorch version this crate was built against (`torch.__version__` of the PyTorch it links).
pub const LIBTORCH_VERSION: &str = env!("L2L_LIBTORCH_VERSION");

/// A 64-bit FNV-1a hash of [`LIBTORCH_VERSION`]: what every handle carries, cheap to compare per call.
pub const LIBTORCH_TAG: u64 = fnv1a(LIBTORCH_VERSION.as_bytes());

const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

/// One owned reference to a libtorch tensor, as it crosses the plugin boundary (see the module docs).
#[repr(C)]
#[derive(StableAbi)]
pub struct TensorHandle {
    /// A `torch_sys::C_tensor` (an `at::Tensor*`), or null once moved out.
    raw: *mut c_void,
    /// [`LIBTORCH_TAG`] of the side that made the handle.
    libtorch_tag: u64,
}

// A tensor reference may move between threads; libtorch's reference counts are atomic.
unsafe impl Send for TensorHandle {}
unsafe impl Sync for TensorHandle {}

/// Why a handle could not be turned back into a tensor.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// The other side was built against another libtorch.
    #[error("tensor made by another libtorch (tag {found:#018x}; this side is libtorch {LIBTORCH_VERSION}, tag {LIBTORCH_TAG:#018x})")]
    ForeignLibtorch {
        /// The tag the handle carried.
        found: u64,
    },
    /// The handle held no tensor.
    #[error("empty tensor handle")]
    Empty,
}

impl TensorHandle {
    /// Takes ownership of `tensor` (no copy of data: the same libtorch tensor crosses).
    pub fn new(mut tensor: Tensor) -> Self {
        let raw = tensor.as_mut_ptr() as *mut c_void;
        std::mem::forget(tensor);
        TensorHandle {
            raw,
            libtorch_tag: LIBTORCH_TAG,
        }
    }

    /// A new reference to the same tensor (same storage, same autograd node), for sharing.
    pub fn share(tensor: &Tensor) -> Self {
        Self::new(tensor.shallow_clone())
    }

    /// The tag this handle carries (for diagnostics).
    pub fn libtorch_tag(&self) -> u64 {
        self.libtorch_tag
    }

    /// Turns the handle back into a tensor, refusing one made by another libtorch.
    pub fn into_tensor(mut self) -> Result<Tensor, HandleError> {
        if self.libtorch_tag != LIBTORCH_TAG {
            return Err(HandleError::ForeignLibtorch {
                found: self.libtorch_tag,
            });
        }
        let raw = std::mem::replace(&mut self.raw, std::ptr::null_mut());
        if raw.is_null() {
            return Err(HandleError::Empty);
        }
        // SAFETY: `raw` came from `TensorHandle::new` on a side that links this same libtorch (the tag
        // says so) and is owned by this handle, which gives it up here.
        Ok(unsafe { Tensor::from_ptr(raw as *mut torch_sys::C_tensor) })
    }
}

impl Drop for TensorHandle {
    fn drop(&mut self) {
        if !self.raw.is_null() && self.libtorch_tag == LIBTORCH_TAG {
            // SAFETY: as in `into_tensor`: an owned reference made by this libtorch.
            drop(unsafe { Tensor::from_ptr(self.raw as *mut torch_sys::C_tensor) });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_round_trips_the_same_storage() {
        let tensor = Tensor::from_slice(&[1.0f32, 2.0, 3.0]);
        let back = TensorHandle::share(&tensor).into_tensor().unwrap();
        assert_eq!(back.data_ptr(), tensor.data_ptr());
    }

    #[test]
    fn a_foreign_handle_is_refused() {
        let mut handle = TensorHandle::new(Tensor::from_slice(&[1.0f32]));
        handle.libtorch_tag ^= 1;
        let err = handle.into_tensor().unwrap_err();
        assert!(matches!(err, HandleError::ForeignLibtorch { .. }), "{err}");
    }
}
