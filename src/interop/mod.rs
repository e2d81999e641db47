//! Descriptor standards, in safe Rust terms: the CUDA Array Interface and NumPy array interface
//! (`cai`), DLPack (`dlpack`), and tensorbridge's own descriptor for other processes (`ipc`). Each converts a descriptor's contents to a `TensorDesc` and a
//! `Tensor` back to a descriptor; the C structs and their ownership live in `crate::ffi`.

pub(crate) mod array_interface;
pub(crate) mod dlpack;
pub(crate) mod exchange;
pub(crate) mod ipc;
pub(crate) mod ipc_socket;
pub(crate) mod lease;
