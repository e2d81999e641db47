//! Video frames in the C ABI: `tb_frame_convert` and `tb_frame_convert_new` turn YUV 4:2:0
//! frames (NV12, P016/P010, I420) into RGB or BGR model input in one pass.

use super::handle::{self, TbTensor};
use super::ops::read_coefficients;
use super::{boundary, read_array, read_layout_arg, write_out};
use crate::dtype::{DataType, TbDataType};
use crate::error::{Error, Result};
use crate::ffi::status::TbStatus;
use crate::ops::frame_job::{FrameFormat, PixelFormat, Range, Standard};
use crate::stream::Stream;
use crate::tensor::Tensor;
use std::ffi::{c_char, c_void};
use std::sync::Arc;

/// YUV 4:2:0 sample layouts (`TbFrameFormat::pixel_format`).
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TbPixelFormat {
    /// uint8 Y plane, then interleaved Cb, Cr pairs at half width and height (NVDEC's default).
    TB_PIXEL_NV12 = 1,
    /// uint8 Y, Cb and Cr planes, chroma at half width and height (YUV420p, "yuv420p").
    TB_PIXEL_I420 = 2,
    /// NV12 with uint16 samples: P016, and P010 (ten significant bits in the high bits).
    TB_PIXEL_P016 = 3,
}

/// Colour matrices (`TbFrameFormat::standard`).
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TbColorStandard {
    /// ITU-R BT.601 (Kr = 0.299, Kb = 0.114): standard-definition video, JPEG.
    TB_COLOR_BT601 = 0,
    /// ITU-R BT.709 (Kr = 0.2126, Kb = 0.0722): high-definition video.
    TB_COLOR_BT709 = 1,
}

/// Sample ranges (`TbFrameFormat::range`).
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TbColorRange {
    /// Limited ("TV", "studio"): Y 16–235, Cb and Cr 16–240 (× 256 for 16-bit samples).
    TB_RANGE_LIMITED = 0,
    /// Full ("PC", "JPEG"): the whole range of the sample type.
    TB_RANGE_FULL = 1,
}

/// How `tb_frame_convert` reads a frame and orders the output's channels.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TbFrameFormat {
    /// A `TbPixelFormat` value.
    pub pixel_format: i32,
    /// A `TbColorStandard` value.
    pub standard: i32,
    /// A `TbColorRange` value.
    pub range: i32,
    /// Channel order of the output: B, G, R when true; R, G, B when false.
    pub bgr: bool,
}

/// The entry of `table` whose C value is `value`, or an error naming `field` and the choices.
fn pick<T: Copy>(value: i32, table: &[(i32, &str, T)], field: &str, enum_name: &str) -> Result<T> {
    table.iter().find(|(code, _, _)| *code == value).map(|(_, _, v)| *v).ok_or_else(|| {
        let choices: Vec<String> = table.iter().map(|(c, n, _)| format!("{n} = {c}")).collect();
        Error::invalid_argument(format!(
            "{field} = {value} is not a {enum_name} ({})",
            choices.join(", ")
        ))
    })
}

fn read_format(format: *const TbFrameFormat) -> Result<FrameFormat> {
    use TbColorRange::*;
    use TbColorStandard::*;
    use TbPixelFormat::*;
    let format = read_array(format, 1, "format")?[0];
    let pixels = [
        (TB_PIXEL_NV12 as i32, "TB_PIXEL_NV12", PixelFormat::Nv12),
        (TB_PIXEL_I420 as i32, "TB_PIXEL_I420", PixelFormat::I420),
        (TB_PIXEL_P016 as i32, "TB_PIXEL_P016", PixelFormat::P016),
    ];
    let standards = [
        (TB_COLOR_BT601 as i32, "TB_COLOR_BT601", Standard::Bt601),
        (TB_COLOR_BT709 as i32, "TB_COLOR_BT709", Standard::Bt709),
    ];
    let ranges = [
        (TB_RANGE_LIMITED as i32, "TB_RANGE_LIMITED", Range::Limited),
        (TB_RANGE_FULL as i32, "TB_RANGE_FULL", Range::Full),
    ];
    Ok(FrameFormat {
        pixel: pick(format.pixel_format, &pixels, "pixel_format", "TbPixelFormat")?,
        standard: pick(format.standard, &standards, "standard", "TbColorStandard")?,
        range: pick(format.range, &ranges, "range", "TbColorRange")?,
        bgr: format.bgr,
    })
}

/// The tensors behind `count` plane handles (1, 2 or 3).
fn read_planes(planes: *const *const TbTensor, count: usize) -> Result<Vec<Arc<Tensor>>> {
    if !(1..=3).contains(&count) {
        return Err(Error::invalid_argument(format!(
            "plane_count = {count}; a frame is 1 tensor, or 2 (NV12, P016) or 3 (I420) planes"
        )));
    }
    let handles = read_array(planes, count, "planes")?;
    handles
        .iter()
        .enumerate()
        .map(|(i, &h)| handle::clone_arc(h, &format!("planes[{i}]")))
        .collect()
}

/// Converts a batch of YUV 4:2:0 video frames into RGB or BGR in `dst`, in one pass that reads
/// each input byte once and writes each output byte once, optionally applying a per-channel
/// affine y = x · scale[c] + offset[c] (x on a 0–255 scale; c in `dst`'s channel order).
///
/// A frame is given as 1 tensor — `(3H/2, W)` rows (Y, then chroma), as decoders export NV12
/// through DLPack; I420 this way needs packed rows — or as its planes: NV12/P016 as Y `(H, W)`
/// and interleaved chroma `(H/2, W/2, 2)` (or `(H/2, W)` alternating Cb, Cr); I420 as Y, U
/// and V, chroma `(H/2, W/2)`. Each plane may have a leading batch `N` and a trailing channel
/// extent (1, or 2 for interleaved chroma) — a rank-3 plane is batched when its layout starts
/// with N, or, without a layout, unless its last extent is that channel extent — and any
/// strides (row pitch included). Samples are uint8 (NV12, I420) or uint16 (P016/P010). H and W must be even.
///
/// `dst`'s layout has H, W and C (3 channels), and N for a batch: HWC, CHW, NHWC, NCHW or any
/// permutation; its dtype is one `tb_convert` writes (uint8, float16, bfloat16, float32,
/// float8_e4m3fn, float8_e5m2). Colour follows `format` (BT.601 or BT.709, limited or full
/// range); chroma is the nearest sample of each 2×2 block. RGB is computed in float32, clamped
/// to [0, 255], then the affine is applied and the result written as `tb_convert` writes it.
/// The CPU path (all operands in host memory) gives the same bytes as the GPU kernel.
///
/// \param[in] planes       `plane_count` live tensor handles (the frame or its planes).
/// \param[in] plane_count  1, 2 (NV12, P016) or 3 (I420).
/// \param[in] format       the pixel format, colour standard, range and channel order.
/// \param[out] dst         a live, writable tensor handle; its elements are written.
/// \param[in] scale        `count` multipliers (0–255 scale input); NULL when `count` is 0.
/// \param[in] offset       `count` addends; NULL when `count` is 0.
/// \param[in] count        0 (identity), 1 (broadcast) or 3.
/// \param[in] stream       a `cudaStream_t` of the device holding the operands (NULL = legacy
///                         default stream); unused when all operands are in host memory.
/// \retval TB_SUCCESS                 the work is enqueued on `stream` (done, on the CPU path).
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL or released handles; a bad `plane_count` or `format`
///                                    value; planes of the wrong dtype, rank or shape (odd height
///                                    or width, chroma that does not match luma, a one-tensor
///                                    frame whose rows are not 3H/2); an output without H, W and C
///                                    labels or of the wrong shape; overlapping input and output;
///                                    operands both in pageable host memory and on a GPU, or on
///                                    two GPUs; a bad `count`.
/// \retval TB_ERROR_READ_ONLY         `dst` is read-only.
/// \retval TB_ERROR_NOT_SUPPORTED     `dst`'s dtype is not a `tb_convert` output.
/// \retval TB_ERROR_CUDA_UNAVAILABLE  GPU operands but no CUDA driver or NVRTC.
/// \retval TB_ERROR_CUDA              a driver or kernel-compilation failure; the message names it.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn tb_frame_convert(
    planes: *const *const TbTensor,
    plane_count: usize,
    format: *const TbFrameFormat,
    dst: *const TbTensor,
    scale: *const f32,
    offset: *const f32,
    count: i32,
    stream: *mut c_void,
) -> TbStatus {
    boundary("tb_frame_convert", || {
        let format = read_format(format)?;
        let planes = read_planes(planes, plane_count)?;
        let (scale, offset) = read_coefficients(scale, offset, count)?;
        let dst = handle::clone_arc(dst, "dst")?;
        let inputs: Vec<&Tensor> = planes.iter().map(Arc::as_ref).collect();
        let stream = Stream::from_handle(stream as u64);
        crate::ops::frame::convert_frames(&inputs, &format, &dst, &scale, &offset, stream)
    })
}

/// `tb_frame_convert` into a new packed tensor of `dtype` in `layout` (`"NCHW"`, `"NHWC"`,
/// `"CHW"`, `"HWC"`…: labels N, H, W, C; N holds the batch, 1 for an unbatched frame) on the
/// planes' device, allocated ordered on `stream`.
///
/// \param[in] planes       `plane_count` live tensor handles (the frame or its planes).
/// \param[in] plane_count  1, 2 (NV12, P016) or 3 (I420).
/// \param[in] format       the pixel format, colour standard, range and channel order.
/// \param[in] layout       the new tensor's layout.
/// \param[in] dtype        the new tensor's element type (a `tb_convert` output).
/// \param[in] scale        `count` multipliers; NULL when `count` is 0.
/// \param[in] offset       `count` addends; NULL when `count` is 0.
/// \param[in] count        0, 1 or 3.
/// \param[in] stream       a `cudaStream_t` (NULL = legacy default stream); unused on the CPU.
/// \param[out] out         receives the new tensor (one reference); NULL on failure.
/// \retval TB_SUCCESS                 `*out` holds the converted frames.
/// \retval TB_ERROR_INVALID_ARGUMENT  as `tb_frame_convert`; NULL `out`; a layout with labels
///                                    other than N, H, W, C.
/// \retval TB_ERROR_NOT_SUPPORTED     `dtype` is not a `tb_convert` output.
/// \retval TB_ERROR_OUT_OF_MEMORY     the output cannot be allocated.
/// \retval TB_ERROR_CUDA_UNAVAILABLE  GPU operands but no CUDA driver or NVRTC.
/// \retval TB_ERROR_CUDA              a driver or kernel-compilation failure.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn tb_frame_convert_new(
    planes: *const *const TbTensor,
    plane_count: usize,
    format: *const TbFrameFormat,
    layout: *const c_char,
    dtype: TbDataType,
    scale: *const f32,
    offset: *const f32,
    count: i32,
    stream: *mut c_void,
    out: *mut *mut TbTensor,
) -> TbStatus {
    boundary("tb_frame_convert_new", || {
        write_out(out, std::ptr::null_mut(), "out")?;
        let format = read_format(format)?;
        let planes = read_planes(planes, plane_count)?;
        let (scale, offset) = read_coefficients(scale, offset, count)?;
        let layout = read_layout_arg(layout)?;
        let dtype = DataType::from_raw(dtype)?;
        let inputs: Vec<&Tensor> = planes.iter().map(Arc::as_ref).collect();
        let stream = Stream::from_handle(stream as u64);
        let result = crate::ops::frame::convert_frames_new(
            &inputs, &format, layout, dtype, &scale, &offset, stream,
        )?;
        write_out(out, handle::create(result)?, "out")
    })
}
