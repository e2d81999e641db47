//! The only code that touches cudarc: driver presence, primary contexts and memory.
//!
//! Every CUDA driver status is turned into `crate::error::Error` here, at the lowest level;
//! nothing above this module sees a raw `CUresult`. cudarc panics when libcuda cannot be loaded,
//! so every entry point first calls `driver::available`.

pub mod context;
pub mod driver;
pub mod exec;
pub mod kernel;
pub mod memory;
pub mod peer;
pub mod pointer;
pub mod stream;
