//! CUDA Array Interface and NumPy array interface functions of the C ABI.

use super::handle::{self, TbTensor};
use super::tensor::{TbCleanupFn, cleanup_release};
use super::{boundary, read_layout_arg, read_rank, read_struct, require_out, write_out};
use crate::error::{Error, Result};
use crate::ffi::status::TbStatus;
use crate::interop::array_interface::{ArrayInterface, Interface};
use crate::layout::TB_MAX_RANK;
use std::ffi::{c_char, c_void};

/// Capacity of `TbArrayInterface::typestr`, including the terminating NUL.
pub const TB_TYPESTR_CAPACITY: usize = 16;

/// The contents of a `__cuda_array_interface__` (v2/v3) or `__array_interface__` (v3) dictionary.
/// One struct serves both; the NumPy interface has no stream.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TbArrayInterface {
    /// `version`: at least 2 on import; tensorbridge exports 3.
    pub version: i32,
    /// `data[0]`: address of the first element; may be NULL (0) only for zero-size arrays.
    pub data: *mut c_void,
    /// `data[1]`: true when the consumer must not write.
    pub readonly: bool,
    /// `typestr`, NUL-terminated: `"<f4"`, `"|u1"`, `"|b1"`, `"<c8"`, `"<f2"`, `"<V2"` (bfloat16).
    pub typestr: [c_char; TB_TYPESTR_CAPACITY],
    /// Number of entries of `shape` (and `strides`) in use, 0 to `TB_MAX_RANK`.
    pub rank: i32,
    /// `shape`: `rank` extents, in elements; entries past `rank` are ignored on import and 0
    /// on export.
    pub shape: [i64; TB_MAX_RANK],
    /// `strides` in **bytes**; meaningful only when `has_strides`.
    pub strides: [i64; TB_MAX_RANK],
    /// false when `strides` is absent/None, which means C-contiguous.
    pub has_strides: bool,
    /// `stream` (CUDA Array Interface v3): 1 = legacy default stream, 2 = per-thread default
    /// stream, any other value a `cudaStream_t`; 0 is forbidden by the specification. Meaningful
    /// only when `has_stream`.
    pub stream: u64,
    /// false when `stream` is absent/None (no synchronization needed).
    pub has_stream: bool,
    /// true when the dictionary had a `mask` entry (masked arrays are refused).
    pub has_mask: bool,
}

fn read_descriptor(desc: *const TbArrayInterface) -> Result<ArrayInterface> {
    let raw = read_struct(desc, "desc")?;
    let rank = read_rank(raw.rank)?;
    let typestr_len = raw.typestr.iter().position(|&c| c == 0).ok_or_else(|| {
        Error::invalid_argument("desc->typestr is not NUL-terminated within 16 bytes")
    })?;
    let typestr_bytes: [u8; TB_TYPESTR_CAPACITY] = raw.typestr.map(|c| c as u8);
    let typestr = std::str::from_utf8(&typestr_bytes[..typestr_len])
        .map_err(|_| Error::invalid_argument("desc->typestr is not valid UTF-8"))?
        .to_string();
    Ok(ArrayInterface {
        version: raw.version,
        data: raw.data as u64,
        readonly: raw.readonly,
        typestr,
        shape: raw.shape[..rank].to_vec(),
        strides: raw.has_strides.then(|| raw.strides[..rank].to_vec()),
        stream: raw.has_stream.then_some(raw.stream),
        has_mask: raw.has_mask,
    })
}

fn write_descriptor(contents: &ArrayInterface, out: *mut TbArrayInterface) -> Result<()> {
    let mut raw = TbArrayInterface {
        version: contents.version,
        data: contents.data as *mut c_void,
        readonly: contents.readonly,
        typestr: [0; TB_TYPESTR_CAPACITY],
        rank: contents.shape.len() as i32,
        shape: [0; TB_MAX_RANK],
        strides: [0; TB_MAX_RANK],
        has_strides: contents.strides.is_some(),
        stream: contents.stream.unwrap_or(0),
        has_stream: contents.stream.is_some(),
        has_mask: false,
    };
    for (slot, byte) in raw.typestr.iter_mut().zip(contents.typestr.bytes()) {
        *slot = byte as c_char;
    }
    raw.shape[..contents.shape.len()].copy_from_slice(&contents.shape);
    if let Some(strides) = &contents.strides {
        raw.strides[..strides.len()].copy_from_slice(strides);
    }
    write_out(out, raw, "out")
}

fn import(
    interface: Interface,
    desc: *const TbArrayInterface,
    layout: *const c_char,
    keep_alive: TbCleanupFn,
    keep_alive_context: *mut c_void,
    out: *mut *mut TbTensor,
) -> Result<()> {
    write_out(out, std::ptr::null_mut(), "out")?;
    let contents = read_descriptor(desc)?;
    let release = cleanup_release(keep_alive, keep_alive_context, contents.data as *mut c_void);
    let tensor = contents.import(interface, read_layout_arg(layout)?, release)?;
    write_out(out, handle::create_adopted(tensor)?, "out")
}

/// Imports a CUDA Array Interface (v2 or v3) descriptor as a tensor, without copying.
///
/// The device ordinal and memory kind (device, pinned host or managed memory) come from the
/// driver's pointer attributes, never from an assumption; a pointer the driver does not know
/// (ordinary host memory) is refused. Requires a CUDA driver (`TB_ERROR_CUDA_UNAVAILABLE`
/// otherwise), except for a zero-size array with NULL data. Absent strides mean C-contiguous; a
/// mask is refused (`TB_ERROR_NOT_SUPPORTED`); stream 0 is refused. When `desc->has_stream`,
/// the producer's stream is remembered: the first tensorbridge operation on another stream, or
/// `tb_tensor_sync`, makes that stream wait for it (no host synchronization).
///
/// `layout` (NULL for none) names the dimensions. `keep_alive(keep_alive_context, data)` runs
/// exactly once when the last reference goes — how a binding keeps the producer object alive;
/// may be NULL. On failure nothing is retained, `keep_alive` is not called and `*out` is NULL.
///
/// \param[in] desc                the descriptor; not NULL; read during the call only.
/// \param[in] layout              NUL-terminated labels, one per dimension, or NULL / `""` for
///                                none.
/// \param[in] keep_alive          called once as `keep_alive(keep_alive_context, desc->data)` when
///                                the last reference goes; may be NULL. Never called on failure.
/// \param[in] keep_alive_context  passed to `keep_alive` unchanged; may be NULL.
/// \param[out] out                receives the new tensor, holding one reference; set to NULL on
///                                failure; not NULL.
/// \retval TB_SUCCESS                 `*out` holds the new tensor, on the device the driver
///                                    reports.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `desc` or `out`; `desc->rank` out of range;
///                                    `desc->typestr` not NUL-terminated, not UTF-8 or malformed;
///                                    `desc->version` below 2; `desc->stream` 0; a pointer the
///                                    driver does not know as CUDA memory; NULL data with elements;
///                                    a negative extent; data or strides misaligned for the dtype;
///                                    overlapping elements in a writable array; a malformed
///                                    `layout` or one whose label count is not the rank.
/// \retval TB_ERROR_NOT_SUPPORTED     a `mask` (`desc->has_mask`), or a typestr tensorbridge cannot
///                                    hold (big-endian, objects, strings, datetimes, an unsupported
///                                    kind or size).
/// \retval TB_ERROR_OVERFLOW          the element count or byte span does not fit int64, or the
///                                    elements reach outside the address space.
/// \retval TB_ERROR_OUT_OF_MEMORY     the handle table is full (4 Mi live handles).
/// \retval TB_ERROR_CUDA_UNAVAILABLE  the CUDA driver cannot be loaded or reports no device (not
///                                    for a zero-size array with NULL data).
/// \retval TB_ERROR_CUDA              `cuPointerGetAttributes` failed.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_from_cuda_array_interface(
    desc: *const TbArrayInterface,
    layout: *const c_char,
    keep_alive: TbCleanupFn,
    keep_alive_context: *mut c_void,
    out: *mut *mut TbTensor,
) -> TbStatus {
    boundary("tb_tensor_from_cuda_array_interface", || {
        import(Interface::Cuda, desc, layout, keep_alive, keep_alive_context, out)
    })
}

/// Imports a NumPy `__array_interface__` (v2 or v3) descriptor of host memory as a
/// `TB_DEVICE_CPU` tensor, without copying. Same rules and ownership as
/// `tb_tensor_from_cuda_array_interface`, except that there is no stream (`has_stream` must be
/// false) and no driver is needed.
///
/// \param[in] desc                the descriptor; not NULL; read during the call only.
/// \param[in] layout              NUL-terminated labels, one per dimension, or NULL / `""` for
///                                none.
/// \param[in] keep_alive          called once as `keep_alive(keep_alive_context, desc->data)` when
///                                the last reference goes; may be NULL. Never called on failure.
/// \param[in] keep_alive_context  passed to `keep_alive` unchanged; may be NULL.
/// \param[out] out                receives the new tensor, holding one reference; set to NULL on
///                                failure; not NULL.
/// \retval TB_SUCCESS                 `*out` holds the new tensor.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `desc` or `out`; `desc->rank` out of range;
///                                    `desc->typestr` not NUL-terminated, not UTF-8 or malformed;
///                                    `desc->version` below 2; `desc->has_stream` set; NULL data
///                                    with elements; a negative extent; data or strides misaligned
///                                    for the dtype; overlapping elements in a writable array; a
///                                    malformed `layout` or one whose label count is not the rank.
/// \retval TB_ERROR_NOT_SUPPORTED     a `mask` (`desc->has_mask`), or a typestr tensorbridge cannot
///                                    hold (big-endian, objects, strings, datetimes, an unsupported
///                                    kind or size).
/// \retval TB_ERROR_OVERFLOW          the element count or byte span does not fit int64, or the
///                                    elements reach outside the address space.
/// \retval TB_ERROR_OUT_OF_MEMORY     the handle table is full (4 Mi live handles).
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_from_array_interface(
    desc: *const TbArrayInterface,
    layout: *const c_char,
    keep_alive: TbCleanupFn,
    keep_alive_context: *mut c_void,
    out: *mut *mut TbTensor,
) -> TbStatus {
    boundary("tb_tensor_from_array_interface", || {
        import(Interface::NumPy, desc, layout, keep_alive, keep_alive_context, out)
    })
}

fn export(interface: Interface, tensor: *const TbTensor, out: *mut TbArrayInterface) -> Result<()> {
    require_out(out, "out")?;
    let held = handle::clone_arc(tensor, "tensor")?;
    write_descriptor(&ArrayInterface::describe(&held, interface)?, out)
}

/// Describes a GPU-accessible tensor (CUDA, pinned or managed memory) as a CUDA Array Interface
/// v3 descriptor: `has_strides` is false exactly when the tensor is C-contiguous, and
/// `has_stream`/`stream` name the stream on which its pending work was last enqueued (absent
/// when none). The descriptor borrows the tensor's memory: keep a reference while it is used.
/// Host tensors fail with `TB_ERROR_DEVICE_MISMATCH`.
///
/// \param[in] tensor  a live tensor handle in CUDA, pinned or managed memory.
/// \param[out] out    receives the descriptor (borrowing the tensor's memory); not NULL; unchanged
///                    on failure.
/// \retval TB_SUCCESS                 `*out` written.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `out`, or a NULL or released `tensor`.
/// \retval TB_ERROR_DEVICE_MISMATCH   the tensor is in pageable host memory (`TB_DEVICE_CPU`).
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_to_cuda_array_interface(
    tensor: *const TbTensor,
    out: *mut TbArrayInterface,
) -> TbStatus {
    boundary("tb_tensor_to_cuda_array_interface", || export(Interface::Cuda, tensor, out))
}

/// Describes a host-accessible tensor (CPU, pinned or managed memory) as a NumPy array
/// interface v3 descriptor (no stream). GPU-only memory fails with `TB_ERROR_DEVICE_MISMATCH`.
///
/// \param[in] tensor  a live tensor handle in CPU, pinned or managed memory.
/// \param[out] out    receives the descriptor (borrowing the tensor's memory); not NULL; unchanged
///                    on failure.
/// \retval TB_SUCCESS                 `*out` written.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `out`, or a NULL or released `tensor`.
/// \retval TB_ERROR_DEVICE_MISMATCH   the tensor is in CUDA device memory (`TB_DEVICE_CUDA`).
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_to_array_interface(
    tensor: *const TbTensor,
    out: *mut TbArrayInterface,
) -> TbStatus {
    boundary("tb_tensor_to_array_interface", || export(Interface::NumPy, tensor, out))
}
