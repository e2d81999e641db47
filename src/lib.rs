//! tensorbridge: zero-copy tensor exchange between C, C++ and Python programs, and layout
//! conversion on the GPU, behind a C ABI (`include/tensorbridge.h`).
//!
//! The safe core (`error`, `dtype`, `layout`, `device`, `tensor`) knows nothing of C; `ffi` is
//! the `extern "C"` layer that validates, converts and forwards; `cuda` is the only module that
//! talks to the CUDA driver.
#![allow(non_camel_case_types)]

pub mod cuda;
pub mod device;
pub mod dtype;
pub mod error;
pub mod ffi;
pub mod interop;
pub mod layout;
pub mod ops;
pub mod tensor;
