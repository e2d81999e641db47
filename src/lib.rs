//! tensorbridge: zero-copy tensor exchange between C, C++ and Python programs, and layout
//! conversion on the GPU, behind a C ABI (`include/tensorbridge.h`).
//!
//! Layers, top to bottom (each uses only the ones below it; see DESIGN.md):
//! - `ffi`: the `extern "C"` edge — panic boundary, argument readers, C structs ⇄ core types,
//!   error kind → `TbStatus`. No policy.
//! - `ops` (copy, reformat, convert: plan, then run on the CPU or GPU) and `interop` (the
//!   descriptor standards).
//! - `tensor` (validation, views, allocate, adopt), then `alloc` (where memory comes from).
//! - `storage`, and the value types `error`, `dtype`, `layout`, `device`, `stream`.
//! - `cuda`: the only module that talks to the CUDA driver and NVRTC.
#![allow(non_camel_case_types)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub(crate) mod alloc;
pub(crate) mod cuda;
pub(crate) mod device;
pub(crate) mod dims;
pub(crate) mod dtype;
pub(crate) mod error;
pub(crate) mod fault;
pub(crate) mod ffi;
pub(crate) mod float8;
pub(crate) mod fnv;
pub(crate) mod interop;
pub(crate) mod layout;
pub(crate) mod ops;
pub(crate) mod storage;
pub(crate) mod stream;
pub(crate) mod tensor;
