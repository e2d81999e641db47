//! tensorbridge: zero-copy tensor exchange between C, C++ and Python programs, and layout
//! conversion on the GPU, behind a C ABI (`include/tensorbridge.h`).
//!
//! The safe core (`error`, `dtype`, `layout`, `device`, `tensor`) knows nothing of C; `ffi` is
//! the `extern "C"` layer that validates, converts and forwards; `cuda` is the only module that
//! talks to the CUDA driver.
#![allow(non_camel_case_types)]

pub(crate) mod alloc;
pub(crate) mod cuda;
pub(crate) mod device;
pub(crate) mod dtype;
pub(crate) mod error;
pub(crate) mod ffi;
pub(crate) mod interop;
pub(crate) mod layout;
pub(crate) mod ops;
pub(crate) mod storage;
pub(crate) mod stream;
pub(crate) mod tensor;
