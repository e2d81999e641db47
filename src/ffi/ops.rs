//! Operations of the C ABI: reformat, copy, convert, clone.

use super::handle::{self, TbTensor};
use super::{boundary, read_array, read_layout_arg, write_out};
use crate::dtype::{DataType, TbDataType};
use crate::error::Error;
use crate::ffi::status::TbStatus;
use crate::stream::Stream;
use std::ffi::{c_char, c_void};

/// Writes `src` into `dst` in `dst`'s layout — any permutation of `src`'s labels (NHWC ↔ NCHW,
/// HWC ↔ CHW, NCDHW ↔ NDHWC, arbitrary letters) — or, when the layouts are equal (or both
/// absent), as a strided copy. Same dtype (any of them); any strides on either side; shapes must
/// agree once permuted. `src` and `dst` must not overlap. `dst` must be writable.
///
/// Runs on the GPU, enqueued on `stream` (a `cudaStream_t`; NULL = legacy default stream) of the
/// device holding the device memory, without blocking the host; pinned and managed operands are
/// read or written in place. Both tensors in host memory run on the CPU, synchronously.
/// Operands on two different GPUs need peer access (`TB_ERROR_NOT_SUPPORTED` otherwise); between
/// pageable host memory and a GPU the pageable side is staged, which blocks the host.
///
/// \param[in] src     a live tensor handle; its elements are read.
/// \param[out] dst    a live, writable tensor handle; its elements are written.
/// \param[in] stream  a `cudaStream_t` of the device that holds device memory; NULL = the legacy
///                    default stream. Unused when both operands are host-accessible (the CPU path).
/// \retval TB_SUCCESS                 the work is enqueued on `stream` (done, on the CPU path).
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL or released `src` or `dst`; different dtypes; a layout
///                                    on only one side; layouts that are not permutations of each
///                                    other; shapes that disagree once permuted; `src` and `dst`
///                                    overlap; a CUDA ordinal that names no present device.
/// \retval TB_ERROR_READ_ONLY         `dst` is read-only.
/// \retval TB_ERROR_NOT_SUPPORTED     operands in device memory of two GPUs that cannot access each
///                                    other.
/// \retval TB_ERROR_OUT_OF_MEMORY     a staging buffer (between pageable host memory and a GPU)
///                                    could not be allocated.
/// \retval TB_ERROR_CUDA_UNAVAILABLE  GPU work is needed but the CUDA driver or NVRTC cannot be
///                                    loaded, or no device is present.
/// \retval TB_ERROR_CUDA              a CUDA driver or NVRTC call (kernel compilation, launch,
///                                    copy, stream ordering) failed; the message names it.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_reformat(
    src: *const TbTensor,
    dst: *const TbTensor,
    stream: *mut c_void,
) -> TbStatus {
    boundary("tb_reformat", || {
        let (src, dst) = (handle::clone_arc(src, "src")?, handle::clone_arc(dst, "dst")?);
        crate::ops::reformat(&src, &dst, Stream::from_handle(stream as u64))
    })
}

/// Copies `src` into `dst` (same shape and dtype; layouts equal or absent), between any two
/// devices: host → device, device → host, device → device on one GPU or across two (peer
/// access), host → host, with any strides on both sides. Enqueued on `stream` (of the device
/// that holds device memory). Pinned host memory is read or written asynchronously by the GPU;
/// pageable host memory is staged through a packed buffer, which blocks the host until the
/// pageable side is done.
///
/// \param[in] src     a live tensor handle; its elements are read.
/// \param[out] dst    a live, writable tensor handle; its elements are written.
/// \param[in] stream  a `cudaStream_t` of the device that holds device memory; NULL = the legacy
///                    default stream. Unused when both operands are host-accessible (the CPU path).
/// \retval TB_SUCCESS                 the work is enqueued on `stream` (done, on the CPU path).
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL or released `src` or `dst`; different dtypes or shapes;
///                                    two different layouts; `src` and `dst` overlap; a CUDA
///                                    ordinal that names no present device.
/// \retval TB_ERROR_READ_ONLY         `dst` is read-only.
/// \retval TB_ERROR_NOT_SUPPORTED     operands in device memory of two GPUs that cannot access each
///                                    other.
/// \retval TB_ERROR_OUT_OF_MEMORY     a staging buffer (between pageable host memory and a GPU)
///                                    could not be allocated.
/// \retval TB_ERROR_CUDA_UNAVAILABLE  GPU work is needed but the CUDA driver or NVRTC cannot be
///                                    loaded, or no device is present.
/// \retval TB_ERROR_CUDA              a CUDA driver or NVRTC call (kernel compilation, launch,
///                                    copy, stream ordering) failed; the message names it.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_copy(
    src: *const TbTensor,
    dst: *const TbTensor,
    stream: *mut c_void,
) -> TbStatus {
    boundary("tb_copy", || {
        let (src, dst) = (handle::clone_arc(src, "src")?, handle::clone_arc(dst, "dst")?);
        crate::ops::copy(&src, &dst, Stream::from_handle(stream as u64))
    })
}

/// Reformats `src` into a new packed tensor in `layout` (a permutation of `src`'s labels, e.g.
/// `"NCHW"` for an `"NHWC"` source) on `src`'s device: the allocation (ordered on `stream`, see
/// `tb_tensor_alloc_async`) and the reformat in one call, as `tb_tensor_alloc_async` followed by
/// `tb_reformat` would do.
///
/// \param[in] src      the tensor to reformat; it must have a layout.
/// \param[in] layout   the new tensor's layout.
/// \param[in] stream   a `cudaStream_t` (NULL = legacy default stream); ignored on the CPU.
/// \param[out] out     receives the new tensor (one reference); NULL on failure.
/// \retval TB_SUCCESS                 `*out` holds the reformatted tensor.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL or stale `src`, NULL `out`, a layout that is not a
///                                    permutation of `src`'s.
/// \retval TB_ERROR_OUT_OF_MEMORY     the output cannot be allocated.
/// \retval TB_ERROR_OVERFLOW          the output's size does not fit int64.
/// \retval TB_ERROR_NOT_SUPPORTED     operands on GPUs without peer access.
/// \retval TB_ERROR_CUDA_UNAVAILABLE  a CUDA tensor without a driver.
/// \retval TB_ERROR_CUDA              a driver or kernel-compilation failure.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_reformat_new(
    src: *const TbTensor,
    layout: *const c_char,
    stream: *mut c_void,
    out: *mut *mut TbTensor,
) -> TbStatus {
    boundary("tb_reformat_new", || {
        write_out(out, std::ptr::null_mut(), "out")?;
        let layout = read_layout_arg(layout)?;
        let src = handle::clone_arc(src, "src")?;
        let stream = Stream::from_handle(stream as u64);
        let result = crate::ops::reformat_into_new(&src, layout, stream)?;
        write_out(out, handle::create(result)?, "out")
    })
}

/// Converts `src` into a new packed tensor of `dtype` in `layout` (NULL: `src`'s own) on `src`'s
/// device, with the per-channel affine of `tb_convert`: the allocation (ordered on `stream`) and
/// the conversion in one call.
///
/// \param[in] src      the tensor to convert.
/// \param[in] layout   the new tensor's layout (a permutation of `src`'s), or NULL for `src`'s.
/// \param[in] dtype    the new tensor's element type (a `tb_convert` output).
/// \param[in] scale    `count` multipliers (see `tb_convert`); NULL when `count` is 0.
/// \param[in] offset   `count` offsets; NULL when `count` is 0.
/// \param[in] count    0, 1 or the number of channels (at most `TB_MAX_CHANNELS`).
/// \param[in] stream   a `cudaStream_t` (NULL = legacy default stream); ignored on the CPU.
/// \param[out] out     receives the new tensor (one reference); NULL on failure.
/// \retval TB_SUCCESS                 `*out` holds the converted tensor.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL or stale `src`, NULL `out`, a bad layout or count.
/// \retval TB_ERROR_NOT_SUPPORTED     an unsupported dtype pair, or GPUs without peer access.
/// \retval TB_ERROR_OUT_OF_MEMORY     the output cannot be allocated.
/// \retval TB_ERROR_OVERFLOW          the output's size does not fit int64.
/// \retval TB_ERROR_CUDA_UNAVAILABLE  a CUDA tensor without a driver.
/// \retval TB_ERROR_CUDA              a driver or kernel-compilation failure.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn tb_convert_new(
    src: *const TbTensor,
    layout: *const c_char,
    dtype: TbDataType,
    scale: *const f32,
    offset: *const f32,
    count: i32,
    stream: *mut c_void,
    out: *mut *mut TbTensor,
) -> TbStatus {
    boundary("tb_convert_new", || {
        write_out(out, std::ptr::null_mut(), "out")?;
        let (scale, offset) = read_coefficients(scale, offset, count)?;
        let layout = read_layout_arg(layout)?;
        let dtype = DataType::from_raw(dtype)?;
        let src = handle::clone_arc(src, "src")?;
        let stream = Stream::from_handle(stream as u64);
        let result = crate::ops::convert_into_new(&src, layout, dtype, &scale, &offset, stream)?;
        write_out(out, handle::create(result)?, "out")
    })
}

/// Reads `tb_convert`'s coefficient arrays: `count` values each, or scale 1 and offset 0.
pub(crate) fn read_coefficients(
    scale: *const f32,
    offset: *const f32,
    count: i32,
) -> crate::error::Result<(Vec<f32>, Vec<f32>)> {
    let count = usize::try_from(count)
        .map_err(|_| Error::invalid_argument(format!("count = {count} is negative")))?;
    Ok(match count {
        0 => (vec![1.0], vec![0.0]),
        n => (read_array(scale, n, "scale")?, read_array(offset, n, "offset")?),
    })
}

/// One pass that converts `src` into `dst`'s dtype and layout, applying a per-channel affine
/// y = x · scale[c] + offset[c] (one fused multiply-add in float32; c is the index along `dst`'s
/// `C` label). `count` values in `scale` and `offset`: 1 (broadcast) or the number of channels
/// (at most 64); `count` = 0 with NULL arrays means scale 1, offset 0. Inputs: uint8, int8,
/// uint16, int16, float16, bfloat16, float32, float8_e4m3fn, float8_e5m2; outputs: float16,
/// bfloat16, float32 (round to nearest even), uint8 (rounded half to even, saturated to
/// [0, 255], NaN → 0) or float8_e4m3fn / float8_e5m2 (nearest even, as PyTorch's `.to()`:
/// overflow gives NaN in e4m3fn, infinity in e5m2), on the CPU and the GPU alike. The classic
/// uint8 NHWC → float32 NCHW normalisation is one kernel. Devices and streams as `tb_reformat`.
///
/// \param[in] src     a live tensor handle; its elements are read.
/// \param[out] dst    a live, writable tensor handle; its elements are written.
/// \param[in] scale   `count` multipliers, one per channel of `dst`'s `C` label or one for all; may
///                    be NULL when `count` is 0.
/// \param[in] offset  `count` addends, as `scale`; may be NULL when `count` is 0.
/// \param[in] count   0 (identity), 1, or the number of channels.
/// \param[in] stream  a `cudaStream_t` of the device that holds device memory; NULL = the legacy
///                    default stream. Unused when both operands are host-accessible (the CPU path).
/// \retval TB_SUCCESS                 the work is enqueued on `stream` (done, on the CPU path).
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL or released `src` or `dst`; negative `count`; NULL
///                                    `scale` or `offset` with `count` above 0; `count` above 1
///                                    without a `C` label in `dst`'s layout or not equal to its
///                                    channel count; a layout on only one side; layouts that are
///                                    not permutations of each other; shapes that disagree once
///                                    permuted; `src` and `dst` overlap; a CUDA ordinal that names
///                                    no present device.
/// \retval TB_ERROR_READ_ONLY         `dst` is read-only.
/// \retval TB_ERROR_NOT_SUPPORTED     a source or destination dtype the conversion does not handle;
///                                    more than 64 channels; operands in device memory of two GPUs
///                                    that cannot access each other.
/// \retval TB_ERROR_OUT_OF_MEMORY     a staging buffer (between pageable host memory and a GPU)
///                                    could not be allocated.
/// \retval TB_ERROR_CUDA_UNAVAILABLE  GPU work is needed but the CUDA driver or NVRTC cannot be
///                                    loaded, or no device is present.
/// \retval TB_ERROR_CUDA              a CUDA driver or NVRTC call (kernel compilation, launch,
///                                    copy, stream ordering) failed; the message names it.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_convert(
    src: *const TbTensor,
    dst: *const TbTensor,
    scale: *const f32,
    offset: *const f32,
    count: i32,
    stream: *mut c_void,
) -> TbStatus {
    boundary("tb_convert", || {
        let (scale, offset) = read_coefficients(scale, offset, count)?;
        let (src, dst) = (handle::clone_arc(src, "src")?, handle::clone_arc(dst, "dst")?);
        let stream = Stream::from_handle(stream as u64);
        crate::ops::convert(&src, &dst, &scale, &offset, &[], stream)
    })
}

/// `tb_convert` with the channels reordered in the same pass: output channel k (along `dst`'s `C`
/// label) reads source channel `order[k]`, and the coefficients apply to output channels. BGR →
/// RGB is {2, 1, 0}, BGRA → RGBA {2, 1, 0, 3}; repeats spread one source channel over several
/// ({0, 0, 0}). Decoders and OpenCV hand out BGR: this makes uint8 BGR NHWC → normalised float32
/// RGB NCHW one kernel, as fast as `tb_convert`'s normalisation where the order is a permutation
/// (the element-wise kernel of same-layout conversions gives way to the general one).
///
/// \param[in] src       a live tensor handle; its elements are read.
/// \param[out] dst      a live, writable tensor handle with a `C` label; its elements are written.
/// \param[in] order     `channels` source channel indices, each in 0..channels.
/// \param[in] channels  the extent of `dst`'s `C` label (at most 64).
/// \param[in] scale     as `tb_convert`.
/// \param[in] offset    as `tb_convert`.
/// \param[in] count     as `tb_convert`.
/// \param[in] stream    as `tb_convert`.
/// \retval TB_SUCCESS                 the work is enqueued on `stream` (done, on the CPU path).
/// \retval TB_ERROR_INVALID_ARGUMENT  as `tb_convert`; also NULL `order`, no `C` label in `dst`'s
///                                    layout, `channels` not its extent, an entry outside
///                                    0..channels.
/// \retval TB_ERROR_NOT_SUPPORTED     as `tb_convert`; also more than 64 channels.
/// \retval TB_ERROR_READ_ONLY         `dst` is read-only.
/// \retval TB_ERROR_OUT_OF_MEMORY     as `tb_convert`.
/// \retval TB_ERROR_CUDA_UNAVAILABLE  as `tb_convert`.
/// \retval TB_ERROR_CUDA              as `tb_convert`.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)] // tb_convert's arguments and the order
pub extern "C" fn tb_convert_channels(
    src: *const TbTensor,
    dst: *const TbTensor,
    order: *const i32,
    channels: i32,
    scale: *const f32,
    offset: *const f32,
    count: i32,
    stream: *mut c_void,
) -> TbStatus {
    boundary("tb_convert_channels", || {
        let length = usize::try_from(channels).ok().filter(|&n| n > 0).ok_or_else(|| {
            Error::invalid_argument(format!("channels = {channels}: give at least 1"))
        })?;
        let order: Vec<i64> =
            read_array(order, length, "order")?.into_iter().map(i64::from).collect();
        let (scale, offset) = read_coefficients(scale, offset, count)?;
        let (src, dst) = (handle::clone_arc(src, "src")?, handle::clone_arc(dst, "dst")?);
        let stream = Stream::from_handle(stream as u64);
        crate::ops::convert(&src, &dst, &scale, &offset, &order, stream)
    })
}

/// Bytes that always hold a name written by `tb_reformat_plan` or `tb_convert_plan`, with its
/// terminating NUL.
pub const TB_PLAN_NAME_CAPACITY: usize = 128;

/// Writes `name` and a terminating NUL into the caller's buffer of `capacity` bytes; fails,
/// writing nothing, when it does not fit.
fn write_name(name: &str, out: *mut c_char, capacity: usize) -> crate::error::Result<()> {
    let out = super::require_ptr(out, "name")?;
    debug_assert!(name.len() < TB_PLAN_NAME_CAPACITY, "plan name {name:?} too long");
    if name.len() >= capacity {
        return Err(Error::invalid_argument(format!(
            "capacity {capacity} cannot hold the plan name \"{name}\" ({} bytes with its NUL; \
             TB_PLAN_NAME_CAPACITY = {TB_PLAN_NAME_CAPACITY} always suffices)",
            name.len() + 1
        )));
    }
    // SAFETY: `out` is non-null and, per the contract, holds `capacity` > name.len() bytes; the
    // name (ASCII, made here) cannot overlap the caller's buffer.
    unsafe {
        std::ptr::copy_nonoverlapping(name.as_ptr(), out.cast::<u8>(), name.len());
        *out.add(name.len()) = 0;
    }
    Ok(())
}

/// Names the work `tb_reformat(src, dst, …)` would do, without doing it: after the same argument
/// checks (with the same statuses), writes into `name` a NUL-terminated ASCII string — the kernel
/// family first, then the compile-time choices that specialise it, for example
/// `"deinterleave small=3 vec=16"` (NHWC → NCHW, three channels, 16-byte stores),
/// `"interleave small=3 vec=16 ilp=1"`, `"interleave small=8 vec=8 staged ilp=1"` (each thread's
/// 64-byte run moved through its warp), `"transpose_tiled tile_r=64 tile_s=256"` (rows padded to
/// a pitch on either side take these too), `"elementwise vec=16 ilp=1 align_in=16 align_out=16"`
/// (a same-layout conversion: one dense run, 16-byte chunks on the destination side, or on the
/// source side with `staged` when the destination is wider),
/// `"general rank=4"` (the element-wise fallback, here over four dimensions) or `"memcpy"` (a
/// driver copy); `"host memcpy"`, `"host copy loop"` or `"host convert loop"` when both tensors
/// are host-accessible (the CPU path); `"staged upload, "` or `"staged download, "` followed by
/// the GPU work when one side is pageable host memory; `"none"` when there are no elements.
/// Names may gain new families and choices in later versions; the first word is the family.
///
/// Needs no GPU, driver or NVRTC: the choice depends only on the operands' descriptions (shapes,
/// strides, dtypes, layouts, kinds of memory and the alignment of their addresses), so it can be
/// asked on any machine, of tensors wrapped with a CUDA device; the device is not checked.
///
/// \param[in] src       a live tensor handle (read: its description only).
/// \param[in] dst       a live, writable tensor handle (read: its description only).
/// \param[out] name     receives the name; at least `capacity` bytes; not NULL.
/// \param[in] capacity  size of `name` in bytes; `TB_PLAN_NAME_CAPACITY` always suffices.
/// \retval TB_SUCCESS                 `name` holds the name.
/// \retval TB_ERROR_INVALID_ARGUMENT  as `tb_reformat`; or NULL `name`, or `capacity` too small
///                                    for the name (the message gives the size needed; `name` is
///                                    left unchanged).
/// \retval TB_ERROR_READ_ONLY         `dst` is read-only.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_reformat_plan(
    src: *const TbTensor,
    dst: *const TbTensor,
    name: *mut c_char,
    capacity: usize,
) -> TbStatus {
    boundary("tb_reformat_plan", || {
        let (src, dst) = (handle::clone_arc(src, "src")?, handle::clone_arc(dst, "dst")?);
        write_name(&crate::ops::reformat_plan(&src, &dst)?, name, capacity)
    })
}

/// Names the work `tb_convert(src, dst, …)` would do, as `tb_reformat_plan` does for
/// `tb_reformat`: the same argument checks as `tb_convert` (dtypes, layouts, shapes, overlap),
/// then the name. The coefficients do not change the choice, so none are taken. Needs no GPU.
///
/// \param[in] src       a live tensor handle (read: its description only).
/// \param[in] dst       a live, writable tensor handle (read: its description only).
/// \param[out] name     receives the name; at least `capacity` bytes; not NULL.
/// \param[in] capacity  size of `name` in bytes; `TB_PLAN_NAME_CAPACITY` always suffices.
/// \retval TB_SUCCESS                 `name` holds the name.
/// \retval TB_ERROR_INVALID_ARGUMENT  as `tb_convert`; or NULL `name`, or `capacity` too small
///                                    for the name (`name` is left unchanged).
/// \retval TB_ERROR_READ_ONLY         `dst` is read-only.
/// \retval TB_ERROR_NOT_SUPPORTED     a source or destination dtype `tb_convert` does not handle.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_convert_plan(
    src: *const TbTensor,
    dst: *const TbTensor,
    name: *mut c_char,
    capacity: usize,
) -> TbStatus {
    boundary("tb_convert_plan", || {
        let (src, dst) = (handle::clone_arc(src, "src")?, handle::clone_arc(dst, "dst")?);
        write_name(&crate::ops::convert_plan(&src, &dst)?, name, capacity)
    })
}

/// A packed (C-contiguous, same layout) copy of `tensor` in new memory of the same kind on the
/// same device, owned by the new tensor; writable. Enqueued on `stream` for GPU memory, and
/// allocated in `stream`'s order (by the allocator installed for the device kind, if any, whose
/// failure status and message are returned).
///
/// \param[in] tensor  a live tensor handle; its elements are read.
/// \param[in] stream  a `cudaStream_t` of the tensor's device; NULL = the legacy default stream.
///                    Unused for CPU, pinned and managed memory, which are copied on the CPU.
/// \param[out] out    receives the new tensor, holding one reference; set to NULL on failure; not
///                    NULL.
/// \retval TB_SUCCESS                 `*out` holds the copy (enqueued on `stream` for GPU memory).
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `out`; a NULL or released `tensor`; a CUDA ordinal that
///                                    names no present device.
/// \retval TB_ERROR_OVERFLOW          the packed size does not fit int64 (possible for a read-only
///                                    tensor with zero strides).
/// \retval TB_ERROR_OUT_OF_MEMORY     the new memory could not be allocated, or the handle table is
///                                    full (4 Mi live handles).
/// \retval TB_ERROR_CUDA_UNAVAILABLE  GPU work is needed but the CUDA driver or NVRTC cannot be
///                                    loaded, or no device is present.
/// \retval TB_ERROR_CUDA              a CUDA driver or NVRTC call (allocation, kernel, copy, stream
///                                    ordering) failed; the message names it.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_clone(
    tensor: *const TbTensor,
    stream: *mut c_void,
    out: *mut *mut TbTensor,
) -> TbStatus {
    boundary("tb_tensor_clone", || {
        write_out(out, std::ptr::null_mut(), "out")?;
        let held = handle::clone_arc(tensor, "tensor")?;
        let copy = crate::ops::clone(&held, Stream::from_handle(stream as u64))?;
        write_out(out, handle::create(copy)?, "out")
    })
}
