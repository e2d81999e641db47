//! Video frames to a model's input in one pass: YUV 4:2:0 frames as decoders hand them out
//! (NV12 and its 16-bit form P016/P010, and three-plane I420) converted to RGB or BGR,
//! interleaved or planar, in any `convert` output dtype, with an optional per-channel affine —
//! reading each input byte once and writing each output byte once.
//!
//! A frame arrives as one tensor (Y rows, then chroma rows: `(3H/2, W)`, as decoders' DLPack
//! exports give it) or as its planes (Y `(H, W)`, interleaved chroma `(H/2, W/2, 2)` or three
//! planes `(H/2, W/2)` for I420), each optionally batched (a leading `N`) and optionally with a
//! trailing extent-1 channel. Chroma is sited per 2×2 block of luma (nearest sample, as NVDEC,
//! NPP and CV-CUDA do). Colour: the BT.601 or BT.709 matrix on limited ("TV": Y 16–235, C
//! 16–240) or full range samples; 16-bit samples are the 8-bit values × 256 (P010 keeps its ten
//! bits high). RGB values are computed in float32 on a 0–255 scale, clamped to [0, 255], then
//! the affine y = x · scale[c] + offset[c] is applied and the dtype written as `convert` writes
//! it. The GPU kernel (`kernels/frame.cu`) performs the same float32 operations in the same
//! order, so both paths give the same bytes.

use super::element::Conversion;
use super::frame_job::{Coefficients, FrameFormat, FrameJob, PixelFormat, Plane};
use super::{check_no_overlap, gpu_frame, host, ordering};
use crate::device::Device;
use crate::dtype::DataType;
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::stream::Stream;
use crate::tensor::{Requirements, Tensor};

/// A plane tensor's extents and strides: optional batch, rows, columns, optional channels.
struct Dims4 {
    batch: Option<(i64, i64)>,
    rows: (i64, i64),
    columns: (i64, i64),
    channels: Option<(i64, i64)>,
}

/// Reads a plane tensor as `[N,] rows, columns [, K]`, where K may only be one of `channels`
/// (1 for luma and planar chroma, 2 for interleaved chroma). A rank-3 tensor is `N, rows,
/// columns` when its layout starts with N, `rows, columns, K` when its layout has C; without a
/// layout, `rows, columns, K` exactly when its last extent is an allowed K.
fn dims_of(t: &Tensor, name: &str, channels: &[i64]) -> Result<Dims4> {
    let (shape, strides) = (t.shape(), t.strides());
    let at = |i: usize| (shape[i], strides[i]);
    let batched_3 = || {
        let layout = t.layout();
        if layout.is_none() { !channels.contains(&shape[2]) } else { layout.find(b'N') == Some(0) }
    };
    match shape.len() {
        2 => Ok(Dims4 { batch: None, rows: at(0), columns: at(1), channels: None }),
        3 if batched_3() => {
            Ok(Dims4 { batch: Some(at(0)), rows: at(1), columns: at(2), channels: None })
        }
        3 => Ok(Dims4 { batch: None, rows: at(0), columns: at(1), channels: Some(at(2)) }),
        4 => Ok(Dims4 { batch: Some(at(0)), rows: at(1), columns: at(2), channels: Some(at(3)) }),
        rank => Err(Error::invalid_argument(format!(
            "{name} has rank {rank}; a frame plane is (rows, columns), optionally with a leading \
             batch and a trailing channel extent"
        ))),
    }
}

fn plane(t: &Tensor, dims: &Dims4) -> Plane {
    Plane {
        data: t.data(),
        frame: dims.batch.map_or(0, |b| b.1),
        row: dims.rows.1,
        column: dims.columns.1,
    }
}

fn require_channels(dims: &Dims4, allowed: &[i64], name: &str, shape: &[i64]) -> Result<()> {
    match dims.channels {
        Some((k, _)) if !allowed.contains(&k) => Err(Error::invalid_argument(format!(
            "{name} of shape {shape:?} has {k} samples per position; expected {allowed:?}"
        ))),
        _ => Ok(()),
    }
}

/// The planes of `inputs` for `format`, with the frame size and batch.
struct Planes {
    batch: Option<i64>,
    height: i64,
    width: i64,
    y: Plane,
    u: Plane,
    v: Plane,
}

fn frame_size(rows: i64, columns: i64, what: &str) -> Result<(i64, i64)> {
    if rows <= 0 || columns <= 0 || rows % 2 != 0 || columns % 2 != 0 {
        return Err(Error::invalid_argument(format!(
            "{what} is {rows}×{columns}: 4:2:0 frames need an even, non-zero height and width"
        )));
    }
    Ok((rows, columns))
}

/// One tensor holding a whole frame: `3H/2` rows (Y, then chroma) of `W` samples.
fn single_tensor(t: &Tensor, pixel: PixelFormat) -> Result<Planes> {
    let dims = dims_of(t, "the frame", &[1])?;
    require_channels(&dims, &[1], "the frame", t.shape())?;
    let (rows, row) = dims.rows;
    let (width, column) = dims.columns;
    if rows % 3 != 0 {
        return Err(Error::invalid_argument(format!(
            "a one-tensor {} frame has 3·H/2 rows (Y, then chroma); {rows} rows is not a multiple \
             of 3",
            pixel.name()
        )));
    }
    let (height, width) = frame_size(rows / 3 * 2, width, "the frame")?;
    let y = plane(t, &dims);
    let chroma = (t.data() as i64 + height * row) as u64;
    let item = pixel.sample().item_size();
    let (u, v) = match pixel {
        PixelFormat::I420 => {
            // Cb then Cr, each (H/2)·(W/2) packed samples: only rows of exactly W packed samples
            // lay them out as planes.
            if column != item || row != width * item {
                return Err(Error::invalid_argument(format!(
                    "a one-tensor I420 frame needs packed rows (row stride {} bytes, sample \
                     stride {item}); got {row} and {column}: pass the three planes instead",
                    width * item
                )));
            }
            let half = Plane { data: chroma, frame: y.frame, row: width / 2 * item, column: item };
            let cr = (chroma as i64 + height / 2 * (width / 2) * item) as u64;
            (half, Plane { data: cr, ..half })
        }
        _ => {
            let cb = Plane { data: chroma, frame: y.frame, row, column: 2 * column };
            (cb, Plane { data: (chroma as i64 + column) as u64, ..cb })
        }
    };
    Ok(Planes { batch: dims.batch.map(|b| b.0), height, width, y, u, v })
}

fn batch_of(dims: &Dims4) -> Option<i64> {
    dims.batch.map(|b| b.0)
}

/// Chroma planes must have half the luma's rows and columns, and the same batch.
fn check_chroma(
    luma: &Planes,
    dims: &Dims4,
    columns: i64,
    name: &str,
    shape: &[i64],
) -> Result<()> {
    if dims.rows.0 != luma.height / 2 || columns != luma.width / 2 || batch_of(dims) != luma.batch {
        return Err(Error::invalid_argument(format!(
            "{name} of shape {shape:?} does not match a {}×{} luma plane{}: chroma has half its \
             rows and columns{}",
            luma.height,
            luma.width,
            luma.batch.map_or(String::new(), |n| format!(" in a batch of {n}")),
            if luma.batch.is_some() { " and the same batch" } else { "" }
        )));
    }
    Ok(())
}

fn planes_of(inputs: &[&Tensor], pixel: PixelFormat) -> Result<Planes> {
    for (i, t) in inputs.iter().enumerate() {
        if t.dtype() != pixel.sample() {
            return Err(Error::invalid_argument(format!(
                "plane {i} is {}; {} samples are {}",
                t.dtype(),
                pixel.name(),
                pixel.sample()
            )));
        }
    }
    let luma_planes = |t: &Tensor| -> Result<(Planes, Dims4)> {
        let dims = dims_of(t, "the Y plane", &[1])?;
        require_channels(&dims, &[1], "the Y plane", t.shape())?;
        let (height, width) = frame_size(dims.rows.0, dims.columns.0, "the Y plane")?;
        let y = plane(t, &dims);
        let planes = Planes { batch: batch_of(&dims), height, width, y, u: y, v: y };
        Ok((planes, dims))
    };
    match (pixel, inputs) {
        (_, [frame]) => single_tensor(frame, pixel),
        (PixelFormat::Nv12 | PixelFormat::P016, [y, uv]) => {
            let (mut planes, _) = luma_planes(y)?;
            let dims = dims_of(uv, "the UV plane", &[2])?;
            require_channels(&dims, &[2], "the UV plane", uv.shape())?;
            // (H/2, W/2, 2) pairs, or (H/2, W) samples alternating Cb, Cr.
            let (cb, cr, columns) = match dims.channels {
                Some((_, pair)) => {
                    let cb = plane(uv, &dims);
                    (cb, Plane { data: (cb.data as i64 + pair) as u64, ..cb }, dims.columns.0)
                }
                None => {
                    let mut cb = plane(uv, &dims);
                    cb.column *= 2;
                    let cr = Plane { data: (cb.data as i64 + dims.columns.1) as u64, ..cb };
                    if dims.columns.0 % 2 != 0 {
                        return Err(Error::invalid_argument(format!(
                            "the UV plane of shape {:?} has an odd number of samples per row; \
                             Cb and Cr alternate",
                            uv.shape()
                        )));
                    }
                    (cb, cr, dims.columns.0 / 2)
                }
            };
            check_chroma(&planes, &dims, columns, "the UV plane", uv.shape())?;
            (planes.u, planes.v) = (cb, cr);
            Ok(planes)
        }
        (PixelFormat::I420, [y, u, v]) => {
            let (mut planes, _) = luma_planes(y)?;
            for (t, name) in [(u, "the U plane"), (v, "the V plane")] {
                let dims = dims_of(t, name, &[1])?;
                require_channels(&dims, &[1], name, t.shape())?;
                check_chroma(&planes, &dims, dims.columns.0, name, t.shape())?;
            }
            let (du, dv) = (dims_of(u, "the U plane", &[1])?, dims_of(v, "the V plane", &[1])?);
            if (du.batch.map(|b| b.1), du.rows.1, du.columns.1)
                != (dv.batch.map(|b| b.1), dv.rows.1, dv.columns.1)
            {
                return Err(Error::invalid_argument(
                    "the U and V planes have different strides; they must share one geometry",
                ));
            }
            (planes.u, planes.v) = (plane(u, &du), plane(v, &dv));
            Ok(planes)
        }
        (pixel, inputs) => Err(Error::invalid_argument(format!(
            "{} frames come as 1 tensor or {} planes, not {}",
            pixel.name(),
            if pixel == PixelFormat::I420 { 3 } else { 2 },
            inputs.len()
        ))),
    }
}

/// The output's batch and byte strides of (frame, channel, row, column), checked against the
/// frame size: a layout with H, W and C (3 channels), and N when the rank is 4.
fn output_strides(dst: &Tensor, planes: &Planes) -> Result<(i64, [i64; 4])> {
    let layout = dst.layout();
    let find = |label: u8| layout.find(label);
    let (shape, strides) = (dst.shape(), dst.strides());
    let (Some(h), Some(w), Some(c)) = (find(b'H'), find(b'W'), find(b'C')) else {
        return Err(Error::invalid_argument(format!(
            "the output's layout \"{}\" needs H, W and C labels (HWC, CHW, NHWC, NCHW)",
            layout.as_string()
        )));
    };
    let n = find(b'N');
    if shape.len() != 3 + usize::from(n.is_some()) {
        return Err(Error::invalid_argument(format!(
            "the output's layout \"{}\" has labels other than N, H, W and C",
            layout.as_string()
        )));
    }
    let batch = n.map_or(1, |n| shape[n]);
    let frames = planes.batch.unwrap_or(1);
    if shape[h] != planes.height || shape[w] != planes.width || shape[c] != 3 || batch != frames {
        return Err(Error::invalid_argument(format!(
            "the output of shape {shape:?} in layout \"{}\" does not hold {frames} frame(s) of \
             {}×{} pixels with 3 channels",
            layout.as_string(),
            planes.height,
            planes.width
        )));
    }
    Ok((batch, [n.map_or(0, |n| strides[n]), strides[c], strides[h], strides[w]]))
}

impl FrameJob {
    /// The job of writing the frames of `planes` (read from `inputs`) into `dst` (writable).
    fn new(
        planes: &Planes,
        inputs: &[&Tensor],
        format: &FrameFormat,
        dst: &Tensor,
        scale: &[f32],
        offset: &[f32],
    ) -> Result<Self> {
        let (batch, dst_strides) = output_strides(dst, planes)?;
        for input in inputs {
            check_no_overlap(input, dst)?;
        }
        let conversion =
            Conversion::new(DataType::U8, dst.dtype(), scale.to_vec(), offset.to_vec(), Some(3))?;
        Ok(FrameJob {
            batch,
            height: planes.height,
            width: planes.width,
            sample: format.pixel.sample(),
            y: planes.y,
            u: planes.u,
            v: planes.v,
            dst: dst.data(),
            dst_strides,
            coefficients: Coefficients::new(format),
            blue_first: format.bgr,
            conversion,
        })
    }
}

/// Runs `job` over the tensors it was made from: on the GPU, enqueued on `stream`, when any
/// operand is in device memory (all must then be GPU-accessible); on the CPU when all are host
/// memory.
fn run(job: &FrameJob, inputs: &[&Tensor], dst: &Tensor, stream: Stream) -> Result<()> {
    let operands: Vec<&Tensor> = inputs.iter().copied().chain([dst]).collect();
    let Some(ordinal) = super::gpu_ordinal(&operands) else {
        for t in &operands {
            ordering::host_sync(t)?;
        }
        host::run_frames(job);
        return Ok(());
    };
    if let Some(other) = operands.iter().find(|t| {
        !super::gpu_accessible(t) || (t.is_device_memory() && t.device().ordinal != ordinal)
    }) {
        return Err(Error::invalid_argument(format!(
            "frame conversion: the planes and the output must all be on the GPU ({}, or pinned \
             or managed memory) or all in host memory; one is on {}: copy it first",
            Device::cuda(ordinal),
            other.device()
        )));
    }
    for t in &operands {
        ordering::before(t, stream)?;
    }
    gpu_frame::run_frames(job, ordinal, stream)?;
    for t in &operands {
        ordering::after(t, stream)?;
    }
    Ok(())
}

/// Converts a batch of YUV 4:2:0 frames (`inputs`: one tensor or the planes) into `dst` (RGB or
/// BGR in `dst`'s layout and dtype), applying y = x · scale[c] + offset[c] to the 0–255 values.
/// On the GPU, enqueued on `stream`, when any operand is in device memory (all must then be
/// GPU-accessible); on the CPU when all are host memory.
pub(crate) fn convert_frames(
    inputs: &[&Tensor],
    format: &FrameFormat,
    dst: &Tensor,
    scale: &[f32],
    offset: &[f32],
    stream: Stream,
) -> Result<()> {
    dst.require_writable("destination")?;
    let planes = planes_of(inputs, format.pixel)?;
    let job = FrameJob::new(&planes, inputs, format, dst, scale, offset)?;
    run(&job, inputs, dst, stream)
}

/// `convert_frames` into a new packed tensor of `dtype` in `layout` (HWC, CHW, NHWC or NCHW;
/// a batched input needs N) on the planes' device, allocated ordered on `stream`.
pub(crate) fn convert_frames_new(
    inputs: &[&Tensor],
    format: &FrameFormat,
    layout: Layout,
    dtype: DataType,
    scale: &[f32],
    offset: &[f32],
    stream: Stream,
) -> Result<Tensor> {
    let planes = planes_of(inputs, format.pixel)?; // refuses an empty `inputs`
    let extent = |label: u8| match label {
        b'N' => Ok(planes.batch.unwrap_or(1)),
        b'H' => Ok(planes.height),
        b'W' => Ok(planes.width),
        b'C' => Ok(3),
        other => Err(Error::invalid_argument(format!(
            "the output layout \"{}\" has the label '{}'; use N, H, W and C",
            layout.as_string(),
            other as char
        ))),
    };
    let shape = layout.as_string().bytes().map(extent).collect::<Result<Vec<i64>>>()?;
    let requirements = Requirements::compute(inputs[0].device(), dtype, &shape, layout, 0)?;
    let out = Tensor::allocate(requirements, Some(stream))?;
    let job = FrameJob::new(&planes, inputs, format, &out, scale, offset)?;
    run(&job, inputs, &out, stream)?;
    Ok(out)
}
