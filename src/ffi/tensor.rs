//! Tensor functions of the C ABI: wrap, allocate, reference counting, queries and views.

use super::handle::{self, TbTensor};
use super::{
    SendPtr, boundary, read_array, read_dims, read_layout_arg, read_rank, read_required_str,
    read_shape, require_out, write_out,
};
use crate::device::{Device, TbDevice};
use crate::dtype::{DataType, TbDataType};
use crate::error::{Error, Result};
use crate::ffi::status::TbStatus;
use crate::layout::{Layout, TB_MAX_RANK, TbLayout};
use crate::storage::{ReleaseFn, Use};
use crate::stream::Stream;
use crate::tensor::{Tensor, TensorDesc};
use std::ffi::{c_char, c_void};

/// A cleanup callback: called exactly once, with the context pointer given at wrap time and the
/// wrapped data pointer, when the last reference to the memory (the tensor and every view of it)
/// is released. It may run on any thread that releases the last reference, and may call
/// tensorbridge functions. NULL means tensorbridge never frees or notifies.
pub type TbCleanupFn = Option<unsafe extern "C" fn(context: *mut c_void, data: *mut c_void)>;

/// Makes `stream` wait, on the GPU, for the work pending on `tensor`'s memory (the producer's
/// stream from a CUDA Array Interface import, or tensorbridge's last operation on it) — no host
/// synchronization. Call it before consuming the data yourself on `stream` (a `cudaStream_t`;
/// NULL = the legacy default stream). Afterwards `stream` is the tensor's pending stream, which
/// exports name. Host (`TB_DEVICE_CPU`) tensors have nothing to wait for.
///
/// \param[in] tensor  a live tensor handle (not NULL, not released).
/// \param[in] stream  the consumer's `cudaStream_t` (a stream of the tensor's device); NULL = the
///                    legacy default stream. Ignored for host (`TB_DEVICE_CPU`) tensors.
/// \retval TB_SUCCESS                 `stream` is ordered after the pending work (or nothing was
///                                    pending).
/// \retval TB_ERROR_INVALID_ARGUMENT  a NULL or released `tensor`, or, with work pending on another
///                                    stream, a CUDA ordinal that names no present device.
/// \retval TB_ERROR_CUDA_UNAVAILABLE  work is pending on another stream but the CUDA driver cannot
///                                    be loaded or reports no device.
/// \retval TB_ERROR_CUDA              creating, recording or waiting on the event failed (the
///                                    message names the driver error).
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_sync(tensor: *const TbTensor, stream: *mut c_void) -> TbStatus {
    boundary("tb_tensor_sync", || {
        let held = handle::clone_arc(tensor, "tensor")?;
        crate::ops::ordering::hand_off(&held, Stream::from_handle(stream as u64))
    })
}

/// Everything about a tensor in one struct, filled by `tb_tensor_info`. Entries of `shape` and
/// `strides` past `rank` are 0.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TbTensorInfo {
    /// Address of the element at index (0, …, 0); may be NULL for a tensor with no elements.
    pub data: *mut c_void,
    /// Where the memory lives.
    pub device: TbDevice,
    /// Element type.
    pub dtype: TbDataType,
    /// Number of dimensions, 0 to `TB_MAX_RANK`.
    pub rank: i32,
    /// Extent of each dimension in elements, outermost first.
    pub shape: [i64; TB_MAX_RANK],
    /// Stride of each dimension in **bytes** (may be negative or, for read-only tensors, zero).
    pub strides: [i64; TB_MAX_RANK],
    /// Dimension labels; empty when the tensor has no layout.
    pub layout: TbLayout,
    /// True when writes through this tensor are forbidden.
    pub readonly: bool,
    /// True when the elements are packed in row-major order.
    pub contiguous: bool,
    /// Number of elements (product of `shape`).
    pub element_count: i64,
    /// `element_count` × item size, in bytes.
    pub nbytes: i64,
}

/// Turns a C cleanup callback into the storage's release action.
pub(crate) fn cleanup_release(
    cleanup: TbCleanupFn,
    context: *mut c_void,
    data: *mut c_void,
) -> Option<ReleaseFn> {
    let (context, data) = (SendPtr(context), SendPtr(data));
    cleanup.map(|function| {
        Box::new(move |_: &[Use]| {
            let (context, data) = (context, data);
            // SAFETY: the C caller supplied this function and its arguments for exactly one call.
            unsafe { function(context.0, data.0) }
        }) as ReleaseFn
    })
}

/// Wraps memory the caller owns as a tensor, without copying.
///
/// - `data`: address of element (0, …, 0); may be NULL only when an extent is 0.
/// - `device`: where `data` lives (`TB_DEVICE_CPU`, `TB_DEVICE_CUDA` + ordinal, …).
/// - `dtype`: a supported element type (lanes 1, or 2 for `float4_e2m1fn_x2`).
/// - `rank`, `shape`: 0 ≤ rank ≤ `TB_MAX_RANK`, `rank` extents ≥ 0 (`shape` may be NULL if rank
///   is 0).
/// - `strides`: `rank` byte strides, or NULL for C-contiguous. Strides may be negative; they and
///   `data` must be multiples of the dtype's alignment (its size; half for complex): misaligned
///   data is rejected, never silently handled. Writable tensors must not have overlapping
///   elements (zero strides are accepted only with `readonly`). The byte span must fit int64
///   (`TB_ERROR_OVERFLOW` otherwise).
/// - `layout`: labels such as `"NHWC"` (one per dimension), or NULL / `""` for none.
/// - `cleanup`, `cleanup_context`: called exactly once as `cleanup(cleanup_context, data)` when
///   the last reference to the memory (this tensor and every view of it) is released; may be
///   NULL.
/// - `out`: receives the new tensor, holding one reference.
///
/// Ownership: on success the tensor holds the memory (through `cleanup`) until released. **On
/// failure nothing is retained, `cleanup` is not called, `*out` is set to NULL (when `out` is
/// not NULL) and the memory stays the caller's.**
///
/// \param[in] data             address of element (0, …, 0); NULL only when an extent is 0. Not
///                             copied; the caller keeps it valid until `cleanup` runs.
/// \param[in] device           where `data` lives; trusted as given (the driver is not asked).
/// \param[in] dtype            a supported element type (lanes 1, or 2 for float4_e2m1fn_x2).
/// \param[in] rank             number of dimensions, 0 to `TB_MAX_RANK`.
/// \param[in] shape            `rank` extents ≥ 0, in elements; may be NULL when `rank` is 0.
/// \param[in] strides          `rank` strides in **bytes**, or NULL for C-contiguous.
/// \param[in] layout           NUL-terminated labels, one per dimension, or NULL / `""` for none.
/// \param[in] readonly         true forbids writes through the tensor and its views; required for
///                             overlapping (e.g. zero) strides.
/// \param[in] cleanup          called once as `cleanup(cleanup_context, data)` when the last
///                             reference goes; may be NULL. Never called on failure.
/// \param[in] cleanup_context  passed to `cleanup` unchanged; may be NULL.
/// \param[out] out             receives the new tensor, holding one reference; set to NULL on
///                             failure; not NULL.
/// \retval TB_SUCCESS                 `*out` holds the new tensor, which now owns the memory
///                                    through `cleanup`.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `out`; `rank` out of range; NULL `shape` with a rank
///                                    above 0; a negative extent; NULL `data` with elements; `data`
///                                    or a stride misaligned for the dtype; overlapping elements in
///                                    a writable tensor; a malformed `layout` or one whose label
///                                    count is not `rank`; an unknown device type, a negative
///                                    ordinal or a CPU ordinal other than 0.
/// \retval TB_ERROR_NOT_SUPPORTED     a device type tensorbridge does not handle (OpenCL, ROCm, …),
///                                    or an unsupported dtype (other lanes, unknown code or bits).
/// \retval TB_ERROR_OVERFLOW          the element count or byte span does not fit int64, or the
///                                    elements reach outside the address space.
/// \retval TB_ERROR_OUT_OF_MEMORY     the handle table is full (4 Mi live handles).
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_wrap(
    data: *mut c_void,
    device: TbDevice,
    dtype: TbDataType,
    rank: i32,
    shape: *const i64,
    strides: *const i64,
    layout: *const c_char,
    readonly: bool,
    cleanup: TbCleanupFn,
    cleanup_context: *mut c_void,
    out: *mut *mut TbTensor,
) -> TbStatus {
    boundary("tb_tensor_wrap", || {
        write_out(out, std::ptr::null_mut(), "out")?;
        let shape = read_shape(rank, shape)?;
        let strides = match strides.is_null() {
            true => None,
            false => Some(read_dims(strides, shape.len(), "strides")?),
        };
        let desc = TensorDesc {
            data: data as u64,
            device: Device::from_raw(device)?,
            dtype: DataType::from_raw(dtype)?,
            shape,
            strides,
            layout: read_layout_arg(layout)?,
            readonly,
        };
        let tensor = Tensor::adopt(desc, cleanup_release(cleanup, cleanup_context, data))?;
        write_out(out, handle::create_adopted(tensor)?, "out")
    })
}

/// Allocates a new tensor that owns its memory, usable on every stream when this returns, and
/// given back (stream-ordered, never waiting for other streams) when the last reference goes.
///
/// `device` selects the memory: `TB_DEVICE_CPU` (host memory aligned to 64 bytes, zeroed),
/// `TB_DEVICE_CUDA` (tensorbridge's stream-ordered pool on that ordinal), `TB_DEVICE_CUDA_HOST`
/// (page-locked, portable, cached), `TB_DEVICE_CUDA_MANAGED` — or the allocator installed for
/// that kind with `tb_allocator_set`, whose failure status and message are returned. CUDA kinds
/// fail with `TB_ERROR_CUDA_UNAVAILABLE` where no driver or GPU is present. For an allocation
/// ordered on a stream, use `tb_tensor_alloc_async`. `layout` may be NULL. `row_alignment` (0 = packed, else a power
/// of two, in bytes) pads each row — the `W` dimension and everything inside it, or the last
/// dimension without a `W` label — so that rows start at multiples of it, like
/// `cudaMallocPitch`. On failure `*out` is NULL and nothing is allocated.
///
/// \param[in] device         the memory kind and ordinal (`TB_DEVICE_CPU` has ordinal 0).
/// \param[in] dtype          a supported element type (lanes 1, or 2 for float4_e2m1fn_x2).
/// \param[in] rank           number of dimensions, 0 to `TB_MAX_RANK`.
/// \param[in] shape          `rank` extents ≥ 0, in elements; may be NULL when `rank` is 0.
/// \param[in] layout         NUL-terminated labels, one per dimension, or NULL / `""` for none.
/// \param[in] row_alignment  row pitch alignment in bytes: 0 (packed) or a power of two.
/// \param[out] out           receives the new tensor, holding one reference; set to NULL on
///                           failure; not NULL.
/// \retval TB_SUCCESS                 `*out` holds the new, writable tensor.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `out`; `rank` out of range; NULL `shape` with a rank
///                                    above 0; a negative extent; a malformed `layout` or one whose
///                                    label count is not `rank`; `row_alignment` negative or not a
///                                    power of two; an unknown device type, a negative ordinal, a
///                                    CPU ordinal other than 0 or a CUDA ordinal that names no
///                                    present device.
/// \retval TB_ERROR_NOT_SUPPORTED     a device type tensorbridge does not handle, or an unsupported
///                                    dtype.
/// \retval TB_ERROR_OVERFLOW          the (padded) size in bytes does not fit int64.
/// \retval TB_ERROR_OUT_OF_MEMORY     the host or CUDA allocation failed, or the handle table is
///                                    full (4 Mi live handles).
/// \retval TB_ERROR_CUDA_UNAVAILABLE  a CUDA kind, but the CUDA driver cannot be loaded or reports
///                                    no device.
/// \retval TB_ERROR_CUDA              a driver call (primary context, allocation) failed.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_alloc(
    device: TbDevice,
    dtype: TbDataType,
    rank: i32,
    shape: *const i64,
    layout: *const c_char,
    row_alignment: i64,
    out: *mut *mut TbTensor,
) -> TbStatus {
    boundary("tb_tensor_alloc", || {
        super::alloc::allocate_into(device, dtype, rank, shape, layout, row_alignment, None, out)
    })
}

/// Adds a reference to `tensor`; each reference needs its own `tb_tensor_release`.
///
/// \param[in] tensor  a live tensor handle (not NULL, not released).
/// \retval TB_SUCCESS                 one more reference is held.
/// \retval TB_ERROR_INVALID_ARGUMENT  `tensor` is NULL or not a live handle.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_retain(tensor: *mut TbTensor) -> TbStatus {
    boundary("tb_tensor_retain", || handle::retain(tensor))
}

/// Drops one reference to `tensor`. When the last reference to the memory goes (this handle and
/// every view of it), the wrap's cleanup callback runs, or tensorbridge's own allocation is
/// freed. Releasing NULL is a no-op; releasing a handle that is not alive (a double release)
/// returns `TB_ERROR_INVALID_ARGUMENT` and does nothing.
///
/// \param[in] tensor  a live tensor handle, or NULL (nothing happens). Invalid afterwards if this
///                    was its last reference.
/// \retval TB_SUCCESS                 the reference is dropped, or `tensor` was NULL.
/// \retval TB_ERROR_INVALID_ARGUMENT  `tensor` is not a live handle (a double release); nothing is
///                                    done.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_release(tensor: *mut TbTensor) -> TbStatus {
    boundary("tb_tensor_release", || handle::release(tensor))
}

/// Runs `query` on the tensor behind a handle and stores the answer in `*out`.
fn query<T>(tensor: *const TbTensor, out: *mut T, read: impl FnOnce(&Tensor) -> T) -> Result<()> {
    require_out(out, "out")?;
    let held = handle::clone_arc(tensor, "tensor")?;
    write_out(out, read(&held), "out")
}

/// Describes `tensor` completely in `*out`.
///
/// \param[in] tensor  a live tensor handle (not NULL, not released).
/// \param[out] out    receives the description; not NULL; unchanged on failure.
/// \retval TB_SUCCESS                 `*out` written.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `out`, or a NULL or released `tensor`.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_info(tensor: *const TbTensor, out: *mut TbTensorInfo) -> TbStatus {
    boundary("tb_tensor_info", || query(tensor, out, info_of))
}

fn info_of(t: &Tensor) -> TbTensorInfo {
    let mut info = TbTensorInfo {
        data: t.data() as *mut c_void,
        device: t.device().to_raw(),
        dtype: t.dtype().to_raw(),
        rank: t.rank() as i32,
        shape: [0; TB_MAX_RANK],
        strides: [0; TB_MAX_RANK],
        layout: t.layout().to_raw(),
        readonly: t.is_readonly(),
        contiguous: t.is_contiguous(),
        element_count: t.element_count(),
        nbytes: t.nbytes(),
    };
    info.shape[..t.rank()].copy_from_slice(t.shape());
    info.strides[..t.rank()].copy_from_slice(t.strides());
    info
}

/// Stores the address of element (0, …, 0) in `*out` (NULL is possible for empty tensors).
///
/// \param[in] tensor  a live tensor handle (not NULL, not released).
/// \param[out] out    receives the address (NULL is possible for a tensor with no elements); not
///                    NULL; unchanged on failure.
/// \retval TB_SUCCESS                 `*out` written.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `out`, or a NULL or released `tensor`.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_data(tensor: *const TbTensor, out: *mut *mut c_void) -> TbStatus {
    boundary("tb_tensor_data", || query(tensor, out, |t| t.data() as *mut c_void))
}

/// Stores the number of dimensions in `*out`.
///
/// \param[in] tensor  a live tensor handle (not NULL, not released).
/// \param[out] out    receives the number of dimensions, 0 to `TB_MAX_RANK`; not NULL; unchanged on
///                    failure.
/// \retval TB_SUCCESS                 `*out` written.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `out`, or a NULL or released `tensor`.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_rank(tensor: *const TbTensor, out: *mut i32) -> TbStatus {
    boundary("tb_tensor_rank", || query(tensor, out, |t| t.rank() as i32))
}

/// Copies the extents into `out[0..rank)`; `capacity` is the length of `out` and must be at least
/// the rank (`TB_MAX_RANK` always suffices).
///
/// \param[in] tensor    a live tensor handle (not NULL, not released).
/// \param[in] capacity  number of entries `out` can hold; at least the tensor's rank.
/// \param[out] out      receives the extents, in elements; may be NULL only for a rank-0 tensor.
/// \retval TB_SUCCESS                 `out[0..rank)` written; the entries past the rank are
///                                    untouched.
/// \retval TB_ERROR_INVALID_ARGUMENT  a NULL or released `tensor`, `capacity` below the rank, or
///                                    NULL `out` for a rank above 0.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_shape(
    tensor: *const TbTensor,
    capacity: i32,
    out: *mut i64,
) -> TbStatus {
    boundary("tb_tensor_shape", || copy_dims(tensor, capacity, out, Tensor::shape))
}

/// Copies the byte strides into `out[0..rank)`; `capacity` as for `tb_tensor_shape`.
///
/// \param[in] tensor    a live tensor handle (not NULL, not released).
/// \param[in] capacity  number of entries `out` can hold; at least the tensor's rank.
/// \param[out] out      receives the strides, in **bytes**; may be NULL only for a rank-0 tensor.
/// \retval TB_SUCCESS                 `out[0..rank)` written; the entries past the rank are
///                                    untouched.
/// \retval TB_ERROR_INVALID_ARGUMENT  a NULL or released `tensor`, `capacity` below the rank, or
///                                    NULL `out` for a rank above 0.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_strides(
    tensor: *const TbTensor,
    capacity: i32,
    out: *mut i64,
) -> TbStatus {
    boundary("tb_tensor_strides", || copy_dims(tensor, capacity, out, Tensor::strides))
}

fn copy_dims(
    tensor: *const TbTensor,
    capacity: i32,
    out: *mut i64,
    dims: impl FnOnce(&Tensor) -> &[i64],
) -> Result<()> {
    let held = handle::clone_arc(tensor, "tensor")?;
    let values = dims(&held);
    if (capacity as i64) < values.len() as i64 {
        return Err(Error::invalid_argument(format!(
            "capacity {capacity} is smaller than the tensor's rank {}",
            values.len()
        )));
    }
    if values.is_empty() {
        return Ok(());
    }
    require_out(out, "out")?;
    // SAFETY: out is non-null and, per the contract, holds at least `capacity` ≥ len elements.
    unsafe { std::ptr::copy_nonoverlapping(values.as_ptr(), out, values.len()) };
    Ok(())
}

/// Stores the element type in `*out`.
///
/// \param[in] tensor  a live tensor handle (not NULL, not released).
/// \param[out] out    receives the element type; not NULL; unchanged on failure.
/// \retval TB_SUCCESS                 `*out` written.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `out`, or a NULL or released `tensor`.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_dtype(tensor: *const TbTensor, out: *mut TbDataType) -> TbStatus {
    boundary("tb_tensor_dtype", || query(tensor, out, |t| t.dtype().to_raw()))
}

/// Stores the device in `*out`.
///
/// \param[in] tensor  a live tensor handle (not NULL, not released).
/// \param[out] out    receives the device type and ordinal; not NULL; unchanged on failure.
/// \retval TB_SUCCESS                 `*out` written.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `out`, or a NULL or released `tensor`.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_device(tensor: *const TbTensor, out: *mut TbDevice) -> TbStatus {
    boundary("tb_tensor_device", || query(tensor, out, |t| t.device().to_raw()))
}

/// Stores the layout in `*out` (empty when the tensor has none).
///
/// \param[in] tensor  a live tensor handle (not NULL, not released).
/// \param[out] out    receives the layout (all NUL when the tensor has none); not NULL; unchanged
///                    on failure.
/// \retval TB_SUCCESS                 `*out` written.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `out`, or a NULL or released `tensor`.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_layout(tensor: *const TbTensor, out: *mut TbLayout) -> TbStatus {
    boundary("tb_tensor_layout", || query(tensor, out, |t| t.layout().to_raw()))
}

/// Stores whether the tensor is read-only in `*out`.
///
/// \param[in] tensor  a live tensor handle (not NULL, not released).
/// \param[out] out    receives true when writes are forbidden; not NULL; unchanged on failure.
/// \retval TB_SUCCESS                 `*out` written.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `out`, or a NULL or released `tensor`.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_is_readonly(tensor: *const TbTensor, out: *mut bool) -> TbStatus {
    boundary("tb_tensor_is_readonly", || query(tensor, out, Tensor::is_readonly))
}

/// Stores whether the elements are packed in row-major order in `*out`.
///
/// \param[in] tensor  a live tensor handle (not NULL, not released).
/// \param[out] out    receives true when the elements are packed row-major; not NULL; unchanged on
///                    failure.
/// \retval TB_SUCCESS                 `*out` written.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `out`, or a NULL or released `tensor`.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_is_contiguous(tensor: *const TbTensor, out: *mut bool) -> TbStatus {
    boundary("tb_tensor_is_contiguous", || query(tensor, out, Tensor::is_contiguous))
}

/// Stores the number of elements in `*out`.
///
/// \param[in] tensor  a live tensor handle (not NULL, not released).
/// \param[out] out    receives the product of the extents; not NULL; unchanged on failure.
/// \retval TB_SUCCESS                 `*out` written.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `out`, or a NULL or released `tensor`.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_element_count(tensor: *const TbTensor, out: *mut i64) -> TbStatus {
    boundary("tb_tensor_element_count", || query(tensor, out, Tensor::element_count))
}

/// Stores element count × item size, in bytes, in `*out`.
///
/// \param[in] tensor  a live tensor handle (not NULL, not released).
/// \param[out] out    receives element count × item size, in bytes; not NULL; unchanged on failure.
/// \retval TB_SUCCESS                 `*out` written.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `out`, or a NULL or released `tensor`.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_nbytes(tensor: *const TbTensor, out: *mut i64) -> TbStatus {
    boundary("tb_tensor_nbytes", || query(tensor, out, Tensor::nbytes))
}

/// Makes a view of `tensor` with `make` and hands it out through `out`.
fn make_view(
    tensor: *const TbTensor,
    out: *mut *mut TbTensor,
    make: impl FnOnce(&Tensor) -> Result<Tensor>,
) -> Result<()> {
    write_out(out, std::ptr::null_mut(), "out")?;
    let held = handle::clone_arc(tensor, "tensor")?;
    let view = make(&held)?;
    write_out(out, handle::create(view)?, "out")
}

/// A zero-copy view of `tensor` in `layout`, which must be a permutation of the tensor's labels
/// (an `"NHWC"` tensor viewed as `"NCHW"`). The view shares the memory and keeps it alive; release
/// it separately.
///
/// \param[in] tensor  a live tensor handle that has a layout.
/// \param[in] layout  the view's labels, a permutation of the tensor's; not NULL.
/// \param[out] out    receives the view, holding one reference of its own; set to NULL on failure;
///                    not NULL.
/// \retval TB_SUCCESS                 `*out` holds the view.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `out` or `layout`; a NULL or released `tensor`; a
///                                    malformed `layout`; a tensor without a layout; labels that
///                                    are not a permutation of the tensor's.
/// \retval TB_ERROR_OUT_OF_MEMORY     the handle table is full (4 Mi live handles).
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_permute(
    tensor: *const TbTensor,
    layout: *const c_char,
    out: *mut *mut TbTensor,
) -> TbStatus {
    boundary("tb_tensor_permute", || {
        let target = Layout::parse(read_required_str(layout, "layout")?)?;
        make_view(tensor, out, |t| t.permute_to_layout(&target))
    })
}

/// A zero-copy view with dimensions reordered by `axes` (`rank` entries, a permutation of
/// 0..rank): view dimension `i` is dimension `axes[i]`. Works with or without a layout.
///
/// \param[in] tensor  a live tensor handle (not NULL, not released).
/// \param[in] rank    number of entries of `axes`: the tensor's rank.
/// \param[in] axes    a permutation of 0..rank; may be NULL when `rank` is 0.
/// \param[out] out    receives the view, holding one reference of its own; set to NULL on failure;
///                    not NULL.
/// \retval TB_SUCCESS                 `*out` holds the view.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `out`; a NULL or released `tensor`; `rank` out of range
///                                    or not the tensor's rank; NULL `axes` with a rank above 0;
///                                    `axes` not a permutation.
/// \retval TB_ERROR_OUT_OF_MEMORY     the handle table is full (4 Mi live handles).
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_transpose(
    tensor: *const TbTensor,
    rank: i32,
    axes: *const i32,
    out: *mut *mut TbTensor,
) -> TbStatus {
    boundary("tb_tensor_transpose", || {
        let axes = read_array(axes, read_rank(rank)?, "axes")?;
        let order =
            axes.iter().map(|&a| usize::try_from(a).unwrap_or(usize::MAX)).collect::<Vec<_>>();
        make_view(tensor, out, |t| t.permute(&order))
    })
}

/// A zero-copy view of `start:stop:step` along dimension `dim` (negative `dim` counts from the
/// end), with Python slice semantics: negative indices count from the end, out-of-range bounds
/// clamp, `step` may be negative but not 0. Pass `INT64_MAX` as `stop` for "to the end". The
/// rank and layout are kept (slice `N` of an `"NHWC"` batch to get a smaller batch).
///
/// \param[in] tensor  a live tensor handle (not NULL, not released).
/// \param[in] dim     the dimension to slice, -rank ≤ dim < rank.
/// \param[in] start   first index, in elements; negative counts from the end; clamped.
/// \param[in] stop    index past the last, in elements; negative counts from the end; clamped;
///                    `INT64_MAX` for the end.
/// \param[in] step    index increment, not 0; negative walks backwards (negative stride).
/// \param[out] out    receives the view, holding one reference of its own; set to NULL on failure;
///                    not NULL.
/// \retval TB_SUCCESS                 `*out` holds the view (possibly with extent 0 along `dim`).
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `out`; a NULL or released `tensor`; `dim` out of range;
///                                    `step` = 0.
/// \retval TB_ERROR_OUT_OF_MEMORY     the handle table is full (4 Mi live handles).
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_slice(
    tensor: *const TbTensor,
    dim: i32,
    start: i64,
    stop: i64,
    step: i64,
    out: *mut *mut TbTensor,
) -> TbStatus {
    boundary("tb_tensor_slice", || {
        make_view(tensor, out, |t| t.slice(i64::from(dim), start, stop, step))
    })
}

/// A zero-copy view of element `index` along `dim` (negatives count from the end), one rank
/// lower, whose layout drops that label (image `i` of an `"NHWC"` batch is an `"HWC"` tensor).
///
/// \param[in] tensor  a live tensor handle of rank ≥ 1.
/// \param[in] dim     the dimension to index, -rank ≤ dim < rank.
/// \param[in] index   the element along `dim`, -extent ≤ index < extent.
/// \param[out] out    receives the view, holding one reference of its own; set to NULL on failure;
///                    not NULL.
/// \retval TB_SUCCESS                 `*out` holds the view, one rank lower.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `out`; a NULL or released `tensor`; `dim` or `index` out
///                                    of range.
/// \retval TB_ERROR_OUT_OF_MEMORY     the handle table is full (4 Mi live handles).
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_select(
    tensor: *const TbTensor,
    dim: i32,
    index: i64,
    out: *mut *mut TbTensor,
) -> TbStatus {
    boundary("tb_tensor_select", || make_view(tensor, out, |t| t.select(i64::from(dim), index)))
}

/// A zero-copy view with the layout replaced by `layout` (NULL or `""` removes it); the memory
/// order is unchanged, so this only names the dimensions (e.g. after importing a descriptor
/// that carries no layout).
///
/// \param[in] tensor  a live tensor handle (not NULL, not released).
/// \param[in] layout  the new labels, one per dimension, or NULL / `""` to remove the layout.
/// \param[out] out    receives the view, holding one reference of its own; set to NULL on failure;
///                    not NULL.
/// \retval TB_SUCCESS                 `*out` holds the view.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `out`; a NULL or released `tensor`; a malformed `layout`
///                                    or one whose label count is not the tensor's rank.
/// \retval TB_ERROR_OUT_OF_MEMORY     the handle table is full (4 Mi live handles).
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_with_layout(
    tensor: *const TbTensor,
    layout: *const c_char,
    out: *mut *mut TbTensor,
) -> TbStatus {
    boundary("tb_tensor_with_layout", || {
        let layout = read_layout_arg(layout)?;
        make_view(tensor, out, |t| t.with_layout(layout))
    })
}
