//! Zero-copy tensors across processes in the C ABI: `tb_tensor_export_ipc` describes a CUDA
//! tensor as a `TbIpcTensor` (plain bytes for any channel), `tb_tensor_import_ipc` maps it in
//! another process.

use super::handle::{self, TbTensor};
use super::{boundary, read_array, write_out};
use crate::ffi::status::TbStatus;
use crate::interop::ipc::{self, DESCRIPTOR_BYTES};
use crate::stream::Stream;
use std::ffi::c_void;

/// Bytes of a `TbIpcTensor`.
pub const TB_IPC_TENSOR_BYTES: usize = 512;

/// A CUDA tensor described for another process: `TB_IPC_TENSOR_BYTES` plain bytes (versioned,
/// checksummed; the memory's CUDA IPC handle and offset, dtype, shape, strides in bytes, layout,
/// read-only flag, the GPU's UUID and an interprocess event the importer waits on). Send the
/// bytes through any channel — a pipe, a socket, a shared-memory file, a message queue — and
/// import them with `tb_tensor_import_ipc` in the other process.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct TbIpcTensor {
    /// The descriptor's bytes; their format is private to tensorbridge and versioned.
    pub bytes: [u8; TB_IPC_TENSOR_BYTES],
}

const _: () = assert!(TB_IPC_TENSOR_BYTES == DESCRIPTOR_BYTES);

/// Describes `tensor` (CUDA device memory) for another process: fills `*out` with the memory's
/// CUDA IPC handle and the tensor's geometry, and records an interprocess event on `stream`
/// after the work queued there so far — the importer's stream waits on it, so writes the
/// exporter enqueued before the export are visible to the importer's work.
///
/// **Lifetime.** The memory must stay allocated while any importer uses it: keep `tensor` (or
/// the memory under it) until the importers tell you, through your own channel, that they have
/// released their tensors. An importer whose exporter freed the memory or exited gets an error
/// from the import, or undefined contents if it already imported (as with any CUDA IPC).
///
/// This version exports memory from `cudaMalloc` / `cuMemAlloc` (legacy CUDA IPC: PyTorch's and
/// CuPy's default allocators); memory from stream-ordered pools (tensorbridge's own allocations,
/// `cudaMallocAsync`) is refused with `TB_ERROR_NOT_SUPPORTED`.
///
/// \param[in] tensor  a live tensor handle in CUDA device memory, not empty.
/// \param[in] stream  a `cudaStream_t` of the tensor's device (NULL = legacy default stream).
/// \param[out] out    receives the descriptor; not NULL.
/// \retval TB_SUCCESS                 `*out` holds the descriptor.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `out`; a NULL or released `tensor`; an empty tensor.
/// \retval TB_ERROR_NOT_SUPPORTED     host, pinned or managed memory; pool memory (see above).
/// \retval TB_ERROR_CUDA_UNAVAILABLE  no CUDA driver.
/// \retval TB_ERROR_CUDA              a driver call failed; the message names it.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_export_ipc(
    tensor: *const TbTensor,
    stream: *mut c_void,
    out: *mut TbIpcTensor,
) -> TbStatus {
    boundary("tb_tensor_export_ipc", || {
        let tensor = handle::clone_arc(tensor, "tensor")?;
        let bytes = ipc::export(&tensor, Stream::from_handle(stream as u64))?;
        write_out(out, TbIpcTensor { bytes }, "out")
    })
}

/// Maps a tensor another process exported with `tb_tensor_export_ipc`: a new tensor over the
/// same device memory (zero-copy), on the local device with the exporter's GPU UUID, with
/// `stream` ordered after the exporter's event. The mapping is released with the last reference
/// to the tensor and its views. A process cannot import its own export (use the tensor itself).
///
/// \param[in] descriptor  the bytes the exporter produced; not NULL.
/// \param[in] stream      a `cudaStream_t` of the importing device (NULL = legacy default
///                        stream): it waits for the exporter's work before anything queued later.
/// \param[out] out        receives the new tensor (one reference); NULL on failure; not NULL.
/// \retval TB_SUCCESS                 `*out` holds the imported tensor.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL arguments; bytes that are not a descriptor, of another
///                                    format version, or changed on the way (checksum); a GPU that
///                                    is not a device of this process (another machine, hidden by
///                                    `CUDA_VISIBLE_DEVICES`); a tensor outside its allocation.
/// \retval TB_ERROR_NOT_SUPPORTED     a handle kind this version does not import.
/// \retval TB_ERROR_CUDA_UNAVAILABLE  no CUDA driver.
/// \retval TB_ERROR_CUDA              the driver could not open the memory (the exporter exited or
///                                    freed it; the descriptor came from this process) or the event.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_import_ipc(
    descriptor: *const TbIpcTensor,
    stream: *mut c_void,
    out: *mut *mut TbTensor,
) -> TbStatus {
    boundary("tb_tensor_import_ipc", || {
        write_out(out, std::ptr::null_mut(), "out")?;
        let descriptor = read_array(descriptor, 1, "descriptor")?[0];
        let tensor = ipc::import(&descriptor.bytes, Stream::from_handle(stream as u64))?;
        write_out(out, handle::create(tensor)?, "out")
    })
}
