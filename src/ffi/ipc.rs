//! Zero-copy tensors across processes in the C ABI: `tb_tensor_export_ipc` describes a CUDA
//! tensor as a `TbIpcTensor` (plain bytes for any channel), `tb_tensor_import_ipc` maps it in
//! another process.

use super::handle::{self, TbTensor};
use super::{boundary, read_array, write_out};
use crate::ffi::status::TbStatus;
use crate::interop::ipc::{self, DESCRIPTOR_BYTES};
use crate::interop::{ipc_socket, lease};
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
/// **Lifetime (a lease).** The export holds its own reference to the tensor until the import of
/// this descriptor is released (after the importer's work on it is done) or its importer dies:
/// the caller may release `tensor` as soon as the descriptor is sent. A descriptor is imported
/// once; export again for each consumer. One that is never imported holds the memory until
/// `tb_ipc_revoke` (or this process exits). Released leases are dropped by the next export and
/// by `tb_ipc_collect`.
///
/// Exportable: memory from `cudaMalloc` / `cuMemAlloc` (legacy CUDA IPC: PyTorch's and CuPy's
/// default allocators), and tensors from `tb_tensor_alloc` (tensorbridge's own pool, shareable
/// through a POSIX file descriptor: the importer needs `tb_ipc_pool_fd`'s descriptor once;
/// `tb_ipc_send` / `tb_ipc_receive` carry it). Memory from other stream-ordered pools
/// (`cudaMallocAsync`, `tb_tensor_alloc_async`) is refused with `TB_ERROR_NOT_SUPPORTED`.
///
/// \param[in] tensor  a live tensor handle in CUDA device memory, not empty.
/// \param[in] stream  a `cudaStream_t` of the tensor's device (NULL = legacy default stream).
/// \param[out] out    receives the descriptor; not NULL.
/// \retval TB_SUCCESS                 `*out` holds the descriptor.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `out`; a NULL or released `tensor`; an empty tensor.
/// \retval TB_ERROR_NOT_SUPPORTED     host, pinned or managed memory; memory the driver cannot share.
/// \retval TB_ERROR_OUT_OF_MEMORY     65,536 exports are held by importers (or never imported).
/// \retval TB_ERROR_CUDA_UNAVAILABLE  no CUDA driver.
/// \retval TB_ERROR_CUDA              a driver call failed; the message names it.
/// \retval TB_ERROR_INTERNAL          the lease table could not be created (the message says why),
///                                    or a bug (caught panic); please report it.
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
/// `stream` ordered after the exporter's event. The import is released with the last reference
/// to the tensor and its views, after the work queued on them: then the exporter's lease ends.
/// A process cannot import its own export (use the tensor itself); a descriptor is imported once.
///
/// \param[in] descriptor  the bytes the exporter produced; not NULL.
/// \param[in] pool_fd     for memory from the exporter's pool: the file descriptor from its
///                        `tb_ipc_pool_fd`, the first time this process imports from that pool
///                        (later imports reuse the pool); -1 otherwise. Not taken over: the
///                        caller closes it.
/// \param[in] stream      a `cudaStream_t` of the importing device (NULL = legacy default
///                        stream): it waits for the exporter's work before anything queued later.
/// \param[out] out        receives the new tensor (one reference); NULL on failure; not NULL.
/// \retval TB_SUCCESS                 `*out` holds the imported tensor.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL arguments; bytes that are not a descriptor, of another
///                                    format version, or changed on the way (checksum); this
///                                    process's own export; a descriptor imported or revoked
///                                    before; pool memory without the pool's `pool_fd`; a GPU that
///                                    is not a device of this process (another machine, hidden by
///                                    `CUDA_VISIBLE_DEVICES`); a tensor outside its allocation.
/// \retval TB_ERROR_NOT_SUPPORTED     a handle kind this version does not import.
/// \retval TB_ERROR_CUDA_UNAVAILABLE  no CUDA driver.
/// \retval TB_ERROR_CUDA              the exporting process has exited, or the driver could not
///                                    map the memory or open the event.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_import_ipc(
    descriptor: *const TbIpcTensor,
    pool_fd: i32,
    stream: *mut c_void,
    out: *mut *mut TbTensor,
) -> TbStatus {
    boundary("tb_tensor_import_ipc", || {
        write_out(out, std::ptr::null_mut(), "out")?;
        let descriptor = read_array(descriptor, 1, "descriptor")?[0];
        let pool_fd = (pool_fd >= 0).then_some(pool_fd);
        let stream = Stream::from_handle(stream as u64);
        let tensor = ipc::import(&descriptor.bytes, pool_fd, stream)?;
        write_out(out, handle::create(tensor)?, "out")
    })
}

/// A new file descriptor for the memory pool that a descriptor this process exported lives in,
/// for the importer (send it with `SCM_RIGHTS`; the importer passes it to
/// `tb_tensor_import_ipc`); -1 when the descriptor needs none (`cudaMalloc` memory). The caller
/// owns the new descriptor and closes it once sent.
///
/// \param[in] descriptor  a descriptor from this process's `tb_tensor_export_ipc`; not NULL.
/// \param[out] fd         receives the new file descriptor, or -1; not NULL.
/// \retval TB_SUCCESS                 `*fd` is set.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL arguments; not a descriptor; another process's export.
/// \retval TB_ERROR_CUDA              the driver could not export the pool.
#[unsafe(no_mangle)]
pub extern "C" fn tb_ipc_pool_fd(descriptor: *const TbIpcTensor, fd: *mut i32) -> TbStatus {
    boundary("tb_ipc_pool_fd", || {
        let descriptor = read_array(descriptor, 1, "descriptor")?[0];
        write_out(fd, ipc::pool_fd(&descriptor.bytes)?.unwrap_or(-1), "fd")
    })
}

/// Sends a descriptor over a connected Unix domain socket, with the pool's file descriptor
/// attached (`SCM_RIGHTS`) when the receiver may need it — the usual channel between a producer
/// and a consumer process, with no fd passing to write. Blocks until every byte is sent.
///
/// \param[in] socket      a connected `AF_UNIX` socket (stream or sequenced packets).
/// \param[in] descriptor  a descriptor from this process's `tb_tensor_export_ipc`; not NULL.
/// \retval TB_SUCCESS                 sent.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `descriptor`, another process's export, or the socket
///                                    refused (the message has the system's reason).
/// \retval TB_ERROR_CUDA              the driver could not export the pool.
#[unsafe(no_mangle)]
pub extern "C" fn tb_ipc_send(socket: i32, descriptor: *const TbIpcTensor) -> TbStatus {
    boundary("tb_ipc_send", || {
        let descriptor = read_array(descriptor, 1, "descriptor")?[0];
        let fd = ipc::pool_fd(&descriptor.bytes)?;
        let sent = ipc_socket::send(socket, &descriptor.bytes, fd);
        if let Some(fd) = fd {
            // SAFETY: a descriptor made for this send and owned here.
            unsafe { libc::close(fd) };
        }
        sent
    })
}

/// Receives a descriptor that `tb_ipc_send` sent on a Unix domain socket and imports it
/// (`tb_tensor_import_ipc`, with the pool's file descriptor when one came along, which is
/// closed here). Blocks until the descriptor has arrived.
///
/// \param[in] socket  a connected `AF_UNIX` socket.
/// \param[in] stream  as for `tb_tensor_import_ipc`.
/// \param[out] out    receives the imported tensor (one reference); NULL on failure; not NULL.
/// \retval TB_SUCCESS  `*out` holds the tensor. Otherwise, as `tb_tensor_import_ipc`, and
///                     `TB_ERROR_INVALID_ARGUMENT` when the socket fails or closes early.
#[unsafe(no_mangle)]
pub extern "C" fn tb_ipc_receive(
    socket: i32,
    stream: *mut c_void,
    out: *mut *mut TbTensor,
) -> TbStatus {
    boundary("tb_ipc_receive", || {
        write_out(out, std::ptr::null_mut(), "out")?;
        let (bytes, fd) = ipc_socket::receive(socket)?;
        let imported = ipc::import(&bytes, fd, Stream::from_handle(stream as u64));
        if let Some(fd) = fd {
            // SAFETY: received with the descriptor and owned here.
            unsafe { libc::close(fd) };
        }
        write_out(out, handle::create(imported?)?, "out")
    })
}

/// Ends the lease of a descriptor this process exported that will not be imported (lost on the
/// way, or its consumer gave up): the export's reference to the tensor is dropped now, and an
/// import of the descriptor is refused.
///
/// \param[in] descriptor  a descriptor from this process's `tb_tensor_export_ipc`; not NULL.
/// \retval TB_SUCCESS                 the lease ended.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL; not a descriptor; another process's export; already
///                                    imported (its release ends the lease), revoked or released.
#[unsafe(no_mangle)]
pub extern "C" fn tb_ipc_revoke(descriptor: *const TbIpcTensor) -> TbStatus {
    boundary("tb_ipc_revoke", || {
        let descriptor = read_array(descriptor, 1, "descriptor")?[0];
        ipc::revoke(&descriptor.bytes)
    })
}

/// Drops the references that this process's exports hold for imports that were released, or
/// whose importing process died; gives how many exports are still held. Exports do this too;
/// call it to free memory sooner, or to wait (by polling) until consumers are done.
///
/// \param[out] held  receives the number of exports still held; may be NULL.
/// \retval TB_SUCCESS         done.
/// \retval TB_ERROR_INTERNAL  the lease table could not be created (the message says why).
#[unsafe(no_mangle)]
pub extern "C" fn tb_ipc_collect(held: *mut i64) -> TbStatus {
    boundary("tb_ipc_collect", || {
        let count = lease::collect()? as i64;
        if !held.is_null() {
            write_out(held, count, "held")?;
        }
        Ok(())
    })
}
