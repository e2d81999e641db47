//! Operations that move elements: `copy` (any devices), `reformat` (change the memory order to
//! the destination's layout), `convert` (dtype + per-channel affine + layout, in one pass) and
//! `clone`. Each validates, builds a [`plan::Plan`], and runs it on the CPU when both tensors are
//! host-accessible, otherwise on the GPU on the caller's stream.

pub(crate) mod element;
pub(crate) mod frame;
pub(crate) mod frame_job;
pub(crate) mod gpu;
pub(crate) mod gpu_frame;
pub(crate) mod host;
pub(crate) mod ordering;
pub(crate) mod plan;

use crate::device::{Device, DeviceType};
use crate::dtype::DataType;
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::storage::{Storage, allocate_host};
use crate::stream::Stream;
use crate::tensor::{Requirements, Tensor, TensorDesc, byte_extent, contiguous_strides};
use element::{Conversion, ElementOp};
use gpu::Target;
use plan::{Plan, Shape};

/// Fails when the byte spans of `src` and `dst` intersect (the result would depend on order).
fn check_no_overlap(src: &Tensor, dst: &Tensor) -> Result<()> {
    let span = |t: &Tensor| -> Result<(i128, i128)> {
        let (low, high) = byte_extent(t.shape(), t.strides(), t.dtype().item_size())?;
        Ok((i128::from(t.data()) + i128::from(low), i128::from(t.data()) + i128::from(high)))
    };
    let host_side = |t: &Tensor| t.device().kind != DeviceType::TB_DEVICE_CUDA;
    if src.element_count() == 0 || host_side(src) != host_side(dst) {
        return Ok(());
    }
    let ((a0, a1), (b0, b1)) = (span(src)?, span(dst)?);
    if a0 < b1 && b0 < a1 {
        return Err(Error::invalid_argument(format!(
            "source bytes [{a0:#x}, {a1:#x}) and destination bytes [{b0:#x}, {b1:#x}) overlap; \
             in-place operations are not supported"
        )));
    }
    Ok(())
}

/// The source viewed in the destination's memory order: permuted by layout when both have one.
fn aligned_source(src: &Tensor, dst: &Tensor, operation: &str) -> Result<Tensor> {
    let (from, to) = (src.layout(), dst.layout());
    let view = match (from.is_none(), to.is_none()) {
        (false, false) => src.permute_to_layout(&to)?,
        (true, true) => src.clone(),
        _ => {
            return Err(Error::invalid_argument(format!(
                "{operation} needs both tensors to have a layout or neither (source \"{}\", \
                 destination \"{}\")",
                from.as_string(),
                to.as_string()
            )));
        }
    };
    if view.shape() != dst.shape() {
        return Err(Error::invalid_argument(format!(
            "{operation}: source shape {:?} in layout \"{}\" does not match destination shape {:?}",
            view.shape(),
            to.as_string(),
            dst.shape()
        )));
    }
    Ok(view)
}

fn same_dtype(src: &Tensor, dst: &Tensor, operation: &str) -> Result<()> {
    if src.dtype() != dst.dtype() {
        return Err(Error::invalid_argument(format!(
            "{operation}: source dtype {} differs from destination dtype {}; use tb_convert to \
             change the element type",
            src.dtype(),
            dst.dtype()
        )));
    }
    Ok(())
}

/// Copies `src` into `dst` element by element (same shape and dtype, any strides), between any
/// two devices. Layouts, when both tensors have one, must be equal: use `reformat` to reorder.
pub(crate) fn copy(src: &Tensor, dst: &Tensor, stream: Stream) -> Result<()> {
    dst.require_writable("destination")?;
    same_dtype(src, dst, "copy")?;
    if !src.layout().is_none() && !dst.layout().is_none() && src.layout() != dst.layout() {
        return Err(Error::invalid_argument(format!(
            "copy: layouts \"{}\" and \"{}\" differ; use tb_reformat to change the memory order",
            src.layout().as_string(),
            dst.layout().as_string()
        )));
    }
    if src.shape() != dst.shape() {
        return Err(Error::invalid_argument(format!(
            "copy: source shape {:?} differs from destination shape {:?}",
            src.shape(),
            dst.shape()
        )));
    }
    check_no_overlap(src, dst)?;
    execute(src, dst, &ElementOp::Copy, None, stream)
}

/// Writes `src` into `dst` in the destination's layout, which must hold the same labels
/// (NHWC → NCHW, HWC → CHW, any permutation). Same dtype; equal layouts make a strided copy.
pub(crate) fn reformat(src: &Tensor, dst: &Tensor, stream: Stream) -> Result<()> {
    let view = checked_reformat(src, dst)?;
    execute(&view, dst, &ElementOp::Copy, None, stream)
}

/// `reformat`'s checks; the source viewed in the destination's memory order.
fn checked_reformat(src: &Tensor, dst: &Tensor) -> Result<Tensor> {
    dst.require_writable("destination")?;
    same_dtype(src, dst, "reformat")?;
    let view = aligned_source(src, dst, "reformat")?;
    check_no_overlap(&view, dst)?;
    Ok(view)
}

/// Names the work `reformat(src, dst, …)` would do — the kernel family and its compile-time
/// choices, the host method, or a staged path — after the same checks, doing none of it (see
/// `tb_reformat_plan`). Needs no GPU: the choice depends only on the operands' descriptions.
pub(crate) fn reformat_plan(src: &Tensor, dst: &Tensor) -> Result<String> {
    let view = checked_reformat(src, dst)?;
    describe(&view, dst, &ElementOp::Copy, None)
}

/// One pass that reads `src`, computes y = x · scale[c] + offset[c] in float32 (c the index
/// along the destination layout's `C` label; one value broadcasts), converts to `dst`'s dtype
/// and writes it in `dst`'s layout. With a channel `order`, output channel k reads source
/// channel order[k] (BGR → RGB in the same pass); empty: each its own.
pub(crate) fn convert(
    src: &Tensor,
    dst: &Tensor,
    scale: &[f32],
    offset: &[f32],
    order: &[i64],
    stream: Stream,
) -> Result<()> {
    let (view, op, channel) = checked_convert(src, dst, scale, offset, order)?;
    execute(&view, dst, &op, channel, stream)
}

/// `convert`'s checks; the source viewed in the destination's memory order, the conversion and
/// the channel dimension.
fn checked_convert(
    src: &Tensor,
    dst: &Tensor,
    scale: &[f32],
    offset: &[f32],
    order: &[i64],
) -> Result<(Tensor, ElementOp, Option<usize>)> {
    dst.require_writable("destination")?;
    let view = aligned_source(src, dst, "convert")?;
    let channel = dst.layout().find(b'C');
    let channels = channel.map(|c| dst.shape()[c]);
    let conversion =
        Conversion::new(src.dtype(), dst.dtype(), scale.to_vec(), offset.to_vec(), channels)?
            .with_channel_order(order, channels)?;
    check_no_overlap(&view, dst)?;
    Ok((view, ElementOp::Convert(conversion), channel))
}

/// Names the work `convert(src, dst, …)` would do, as [`reformat_plan`] does for `reformat`.
/// The coefficients do not change the choice (the channel dimension is kept apart whether one
/// coefficient pair or one per channel is given), so none are asked for.
pub(crate) fn convert_plan(src: &Tensor, dst: &Tensor) -> Result<String> {
    let (view, op, channel) = checked_convert(src, dst, &[1.0], &[0.0], &[])?;
    describe(&view, dst, &op, channel)
}

/// A new packed output of `dtype` on `src`'s device, shaped like `src` viewed in `layout` (its
/// labels permuted; `src`'s own shape when `layout` is none or its own), allocated ordered on
/// `stream`.
fn output_like(src: &Tensor, layout: Layout, dtype: DataType, stream: Stream) -> Result<Tensor> {
    let shape = match layout.is_none() || layout == src.layout() {
        true => src.shape().to_vec(),
        false => src.permute_to_layout(&layout)?.shape().to_vec(),
    };
    let requirements = Requirements::compute(src.device(), dtype, &shape, layout, 0)?;
    Tensor::allocate(requirements, Some(stream))
}

/// `reformat` into a new packed tensor in `layout` (a permutation of `src`'s labels), allocated
/// ordered on `stream` on `src`'s device.
pub(crate) fn reformat_into_new(src: &Tensor, layout: Layout, stream: Stream) -> Result<Tensor> {
    let out = output_like(src, layout, src.dtype(), stream)?;
    reformat(src, &out, stream)?;
    Ok(out)
}

/// `convert` into a new packed tensor of `dtype` in `layout` (none: `src`'s own), allocated
/// ordered on `stream` on `src`'s device.
pub(crate) fn convert_into_new(
    src: &Tensor,
    layout: Layout,
    dtype: DataType,
    scale: &[f32],
    offset: &[f32],
    stream: Stream,
) -> Result<Tensor> {
    let layout = if layout.is_none() { src.layout() } else { layout };
    let out = output_like(src, layout, dtype, stream)?;
    convert(src, &out, scale, offset, &[], stream)?;
    Ok(out)
}

/// A packed (C-contiguous) copy of `src` in new memory of the same kind on the same device,
/// with the same layout; writable.
pub(crate) fn clone(src: &Tensor, stream: Stream) -> Result<Tensor> {
    let copy_into = Tensor::allocate(Requirements::packed_like(src)?, Some(stream))?;
    self::copy(src, &copy_into, stream)?;
    Ok(copy_into)
}

/// Where the GPU work of an operation runs: the device owning device memory among the operands.
fn gpu_ordinal(operands: &[&Tensor]) -> Option<i32> {
    operands.iter().find(|t| t.is_device_memory()).map(|t| t.device().ordinal)
}

/// Whether a kernel on a GPU can dereference the tensor (not pageable host memory).
fn gpu_accessible(t: &Tensor) -> bool {
    t.device().kind != DeviceType::TB_DEVICE_CPU
}

/// Where an operation's elements move, by the kinds of memory its operands are in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    /// No device memory and both operands host-accessible: on the CPU.
    Host,
    /// On GPU `ordinal`, which reads and writes both operands in place.
    Device(i32),
    /// The pageable source is packed on the CPU and copied to GPU `ordinal`, which does the rest.
    Upload(i32),
    /// GPU `ordinal` writes a packed buffer, copied to the pageable destination and scattered.
    Download(i32),
}

/// The route of an operation from `src` to `dst`.
fn route(src: &Tensor, dst: &Tensor) -> Route {
    let Some(ordinal) = gpu_ordinal(&[dst, src]) else { return Route::Host };
    match (gpu_accessible(src), gpu_accessible(dst)) {
        (true, true) => Route::Device(ordinal),
        (false, _) => Route::Upload(ordinal),
        (_, false) => Route::Download(ordinal),
    }
}

/// A stand-in address for a staging buffer when naming a staged plan: a multiple of
/// `DEVICE_ALIGNMENT`, as the pool's allocations are, so the kernel chosen is the one a real
/// staging buffer gets.
const STAGING_STAND_IN: u64 = 1 << 40;

/// What [`execute`] would do for these operands, named: "none"; "host " and the CPU method;
/// the GPU work's name (see [`gpu::Work::name`]); or "staged upload, " / "staged download, "
/// followed by the GPU work on the packed staging buffer.
fn describe(src: &Tensor, dst: &Tensor, op: &ElementOp, channel: Option<usize>) -> Result<String> {
    let plan = Plan::new(src, dst, channel)?;
    if plan.shape() == Shape::Empty {
        return Ok(gpu::Work::Nothing.name());
    }
    let staged = STAGING_STAND_IN;
    Ok(match route(src, dst) {
        Route::Host => format!("host {}", host::Method::of(&plan, op).name()),
        Route::Device(_) => gpu::choose(&plan, op, src.data(), dst.data())?.name(),
        Route::Upload(ordinal) => {
            let plan = upload_plan(src, dst, channel, staged, ordinal)?;
            format!("staged upload, {}", gpu::choose(&plan, op, staged, dst.data())?.name())
        }
        Route::Download(ordinal) => {
            let plan = download_plan(src, dst, channel, staged, ordinal)?;
            format!("staged download, {}", gpu::choose(&plan, op, src.data(), staged)?.name())
        }
    })
}

fn execute(
    src: &Tensor,
    dst: &Tensor,
    op: &ElementOp,
    channel: Option<usize>,
    stream: Stream,
) -> Result<()> {
    let plan = Plan::new(src, dst, channel)?;
    if plan.shape() == Shape::Empty {
        return Ok(());
    }
    let ordinal = match route(src, dst) {
        Route::Host => {
            // Both host-accessible: wait for GPU work still writing pinned or managed memory.
            ordering::host_sync(src)?;
            ordering::host_sync(dst)?;
            host::run(&plan, src.data(), dst.data(), op);
            return Ok(());
        }
        Route::Device(ordinal) | Route::Upload(ordinal) | Route::Download(ordinal) => ordinal,
    };
    for t in [src, dst] {
        if t.is_device_memory() && t.device().ordinal != ordinal {
            crate::cuda::peer::enable_access(ordinal, t.device().ordinal)?;
        }
    }
    ordering::before(src, stream)?;
    ordering::before(dst, stream)?;
    let target =
        |src_data: u64, dst_data: u64| Target { src: src_data, dst: dst_data, ordinal, stream };
    let enqueued = match route(src, dst) {
        Route::Upload(_) => upload(src, dst, op, channel, ordinal, stream),
        Route::Download(_) => download(src, dst, op, channel, ordinal, stream),
        _ => gpu::run(&plan, op, &target(src.data(), dst.data())),
    };
    enqueued?;
    ordering::after(src, stream)?;
    ordering::after(dst, stream)
}

/// A packed tensor of `like`'s shape over memory at `data` on `device` (a staging buffer).
fn packed_like(like: &Tensor, data: u64, device: Device) -> Result<Tensor> {
    let desc = TensorDesc {
        data,
        device,
        dtype: like.dtype(),
        shape: like.shape().into(),
        strides: Some(contiguous_strides(like.shape(), like.dtype().item_size())?),
        layout: Layout::NONE,
        readonly: false,
    };
    Tensor::new(desc, &Storage::with_release(None))
}

/// The GPU step of an upload: from `src` packed at `staging` on GPU `ordinal` into `dst`.
fn upload_plan(
    src: &Tensor,
    dst: &Tensor,
    channel: Option<usize>,
    staging: u64,
    ordinal: i32,
) -> Result<Plan> {
    Plan::new(&packed_like(src, staging, Device::cuda(ordinal))?, dst, channel)
}

/// The GPU step of a download: from `src` into `dst` packed at `staging` on GPU `ordinal`.
fn download_plan(
    src: &Tensor,
    dst: &Tensor,
    channel: Option<usize>,
    staging: u64,
    ordinal: i32,
) -> Result<Plan> {
    Plan::new(src, &packed_like(dst, staging, Device::cuda(ordinal))?, channel)
}

/// Runs `work` with a host buffer and a device buffer of `bytes` each (the staging pair for
/// pageable memory), freeing both afterwards whether `work` succeeded or not; the device buffer
/// is stream-ordered, so it is released only after the work queued on `stream`.
fn with_staging(
    ordinal: i32,
    bytes: i64,
    stream: Stream,
    work: impl FnOnce(u64, u64) -> Result<()>,
) -> Result<()> {
    let (host_data, release_host) = allocate_host(bytes)?;
    let size = usize::try_from(bytes).map_err(|_| Error::internal("negative staging size"))?;
    let device_data = crate::cuda::pool::allocate(ordinal, size, Some(stream))?;
    let result = work(host_data, device_data);
    let freed = {
        // Giving the staging memory back: fault injection does not fail it (src/fault.rs).
        let _release = crate::fault::suspend();
        crate::cuda::pool::free_on(ordinal, device_data, stream)
    };
    release_host(&[]);
    result.and(freed)
}

/// Pageable host → GPU: pack the source on the CPU, copy the bytes to the device (the driver
/// stages pageable memory and returns once the host buffer may be reused), then run the plan
/// from the packed device copy.
fn upload(
    src: &Tensor,
    dst: &Tensor,
    op: &ElementOp,
    channel: Option<usize>,
    ordinal: i32,
    stream: Stream,
) -> Result<()> {
    let bytes = src.nbytes();
    with_staging(ordinal, bytes, stream, |host_data, device_data| {
        let host_packed = packed_like(src, host_data, Device::CPU)?;
        host::run(&Plan::new(src, &host_packed, None)?, src.data(), host_data, &ElementOp::Copy);
        crate::cuda::memory::copy_bytes(ordinal, device_data, host_data, bytes, stream)?;
        let plan = upload_plan(src, dst, channel, device_data, ordinal)?;
        let target = Target { src: device_data, dst: dst.data(), ordinal, stream };
        gpu::run(&plan, op, &target)
    })
}

/// GPU → pageable host: run the plan into a packed device buffer, copy it to host memory and
/// wait for it, then scatter it into the destination on the CPU.
fn download(
    src: &Tensor,
    dst: &Tensor,
    op: &ElementOp,
    channel: Option<usize>,
    ordinal: i32,
    stream: Stream,
) -> Result<()> {
    let bytes = dst.nbytes();
    with_staging(ordinal, bytes, stream, |host_data, device_data| {
        let plan = download_plan(src, dst, channel, device_data, ordinal)?;
        let target = Target { src: src.data(), dst: device_data, ordinal, stream };
        gpu::run(&plan, op, &target)?;
        crate::cuda::memory::copy_bytes(ordinal, host_data, device_data, bytes, stream)?;
        crate::cuda::stream::synchronize(ordinal, stream)?;
        let host_packed = packed_like(dst, host_data, Device::CPU)?;
        host::run(&Plan::new(&host_packed, dst, None)?, host_data, dst.data(), &ElementOp::Copy);
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtype::DataType;

    /// A host tensor that owns zeroed memory.
    fn host(dtype: DataType, shape: &[i64], layout: &str) -> Tensor {
        let bytes = shape.iter().product::<i64>() * dtype.item_size();
        let (data, release) = allocate_host(bytes).unwrap();
        let desc = TensorDesc {
            data,
            device: Device::CPU,
            dtype,
            shape: shape.into(),
            strides: None,
            layout: Layout::parse(layout).unwrap(),
            readonly: false,
        };
        Tensor::new(desc, &Storage::with_release(Some(release))).unwrap()
    }

    /// Deterministic pseudo-random bytes (xorshift), never all zero.
    fn fill(t: &Tensor, seed: u64) {
        let mut state = seed | 1;
        let bytes = t.nbytes() as usize;
        for i in 0..bytes {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // SAFETY: the tensor owns `bytes` bytes of host memory.
            unsafe { *(t.data() as *mut u8).add(i) = state as u8 };
        }
    }

    fn byte_at(t: &Tensor, index: &[i64], k: i64) -> u8 {
        let offset: i64 = index.iter().zip(t.strides()).map(|(i, s)| i * s).sum::<i64>() + k;
        // SAFETY: an in-bounds element of a host tensor.
        unsafe { *((t.data() as i64 + offset) as *const u8) }
    }

    /// Every index of `shape`, row-major.
    fn indices(shape: &[i64]) -> Vec<Vec<i64>> {
        let mut all = vec![vec![]];
        for &extent in shape {
            all = all
                .into_iter()
                .flat_map(|p| (0..extent).map(move |i| [p.clone(), vec![i]].concat()))
                .collect();
        }
        all
    }

    #[test]
    fn reformat_matches_naive_permutation_for_odd_extents_and_dtypes() {
        let cases: [(&str, &str, &[i64], DataType); 5] = [
            ("NHWC", "NCHW", &[2, 3, 7, 3], DataType::U8),
            ("NCHW", "NHWC", &[1, 3, 5, 7], DataType::F32),
            ("HWC", "CHW", &[1, 1023, 4], DataType::U16),
            ("NCDHW", "NDHWC", &[2, 3, 2, 3, 5], DataType::C64),
            ("ABCD", "DBCA", &[3, 1, 4, 7], DataType::F64),
        ];
        for (seed, (from, to, shape, dtype)) in cases.into_iter().enumerate() {
            let src = host(dtype, shape, from);
            fill(&src, seed as u64 + 1);
            let order = src.layout().permutation_to(&Layout::parse(to).unwrap()).unwrap();
            let dst_shape: Vec<i64> = order.iter().map(|&d| shape[d]).collect();
            let dst = host(dtype, &dst_shape, to);
            reformat(&src, &dst, Stream::LEGACY).unwrap();
            for index in indices(&dst_shape) {
                let mut src_index = vec![0; shape.len()];
                for (i, &d) in order.iter().enumerate() {
                    src_index[d] = index[i];
                }
                for k in 0..dtype.item_size() {
                    assert_eq!(
                        byte_at(&dst, &index, k),
                        byte_at(&src, &src_index, k),
                        "{from}->{to} {index:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn copy_handles_negative_and_padded_strides() {
        let src = host(DataType::I16, &[6, 9], "HW");
        fill(&src, 7);
        let flipped = src.slice(1, i64::MAX, i64::MIN, -2).unwrap().slice(0, 1, 6, 2).unwrap();
        let dst = host(DataType::I16, flipped.shape(), "HW");
        copy(&flipped, &dst, Stream::LEGACY).unwrap();
        for index in indices(dst.shape()) {
            for k in 0..2 {
                assert_eq!(byte_at(&dst, &index, k), byte_at(&flipped, &index, k));
            }
        }
    }

    #[test]
    fn convert_normalizes_nhwc_u8_into_nchw_f32() {
        let src = host(DataType::U8, &[2, 3, 5, 3], "NHWC");
        fill(&src, 3);
        let dst = host(DataType::F32, &[2, 3, 3, 5], "NCHW");
        let (scale, offset) = ([0.5, 0.25, 2.0], [-1.0, 3.0, 0.125]);
        convert(&src, &dst, &scale, &offset, &[], Stream::LEGACY).unwrap();
        for index in indices(dst.shape()) {
            let (n, c, h, w) = (index[0], index[1], index[2], index[3]);
            let x = f32::from(byte_at(&src, &[n, h, w, c], 0));
            let got = f32::from_le_bytes(std::array::from_fn(|k| byte_at(&dst, &index, k as i64)));
            assert_eq!(got, x.mul_add(scale[c as usize], offset[c as usize]), "{index:?}");
        }
    }

    #[test]
    fn convert_with_a_channel_order_reads_each_output_channel_from_its_source_channel() {
        // BGR NHWC -> RGB NCHW, BGRA HWC -> RGBA HWC (same layout), and one channel spread.
        let cases: [(&str, &str, &[i64], &[i64]); 3] = [
            ("NHWC", "NCHW", &[2, 3, 5, 3], &[2, 1, 0]),
            ("HWC", "HWC", &[3, 7, 4], &[2, 1, 0, 3]),
            ("CHW", "HWC", &[3, 2, 5], &[0, 0, 0]),
        ];
        for (seed, (from, to, shape, order)) in cases.into_iter().enumerate() {
            let src = host(DataType::U8, shape, from);
            fill(&src, seed as u64 + 7);
            let permutation = src.layout().permutation_to(&Layout::parse(to).unwrap()).unwrap();
            let dst_shape: Vec<i64> = permutation.iter().map(|&d| shape[d]).collect();
            let dst = host(DataType::F32, &dst_shape, to);
            let channels = order.len();
            let scale: Vec<f32> = (0..channels).map(|c| 0.5 + c as f32).collect();
            let offset: Vec<f32> = (0..channels).map(|c| -(c as f32)).collect();
            convert(&src, &dst, &scale, &offset, order, Stream::LEGACY).unwrap();
            let c_dst = dst.layout().find(b'C').unwrap();
            for index in indices(&dst_shape) {
                let mut src_index = vec![0; shape.len()];
                for (i, &d) in permutation.iter().enumerate() {
                    src_index[d] = index[i];
                }
                let k = index[c_dst] as usize;
                src_index[permutation[c_dst]] = order[k];
                let x = f32::from(byte_at(&src, &src_index, 0));
                let got =
                    f32::from_le_bytes(std::array::from_fn(|b| byte_at(&dst, &index, b as i64)));
                assert_eq!(got, x.mul_add(scale[k], offset[k]), "{from}->{to} {index:?}");
            }
        }
        let src = host(DataType::U8, &[2, 2, 3], "HWC");
        let dst = host(DataType::F32, &[2, 2, 3], "HWC");
        let refused = convert(&src, &dst, &[1.0], &[0.0], &[2, 1], Stream::LEGACY).unwrap_err();
        assert!(refused.message.contains("2 values for 3 channels"), "{}", refused.message);
    }

    #[test]
    fn operations_reject_bad_operands() {
        let a = host(DataType::U8, &[2, 3], "HW");
        let b = host(DataType::F32, &[2, 3], "HW");
        let c = host(DataType::U8, &[3, 2], "WH");
        assert!(reformat(&a, &b, Stream::LEGACY).unwrap_err().message.contains("use tb_convert"));
        assert!(copy(&a, &c, Stream::LEGACY).unwrap_err().message.contains("use tb_reformat"));
        assert!(reformat(&a, &a, Stream::LEGACY).unwrap_err().message.contains("overlap"));
        let frozen = a.with_layout(Layout::NONE).unwrap();
        let readonly = Tensor::new(
            TensorDesc {
                data: frozen.data(),
                device: Device::CPU,
                dtype: DataType::U8,
                shape: [2, 3].into(),
                strides: None,
                layout: Layout::NONE,
                readonly: true,
            },
            &Storage::with_release(None),
        )
        .unwrap();
        let other = host(DataType::U8, &[2, 3], "");
        assert_eq!(
            copy(&other, &readonly, Stream::LEGACY).unwrap_err().kind,
            crate::error::ErrorKind::ReadOnly
        );
        let mismatch = host(DataType::U8, &[2, 4], "HW");
        assert!(
            reformat(&a, &mismatch, Stream::LEGACY).unwrap_err().message.contains("does not match")
        );
        let unlabeled = host(DataType::U8, &[2, 3], "");
        assert!(
            reformat(&a, &unlabeled, Stream::LEGACY).unwrap_err().message.contains("or neither")
        );
    }

    /// A tensor description at `data` in memory of `kind` (never dereferenced); also the plan's
    /// tests' tensors.
    pub(crate) fn described(
        kind: DeviceType,
        data: u64,
        dtype: DataType,
        shape: &[i64],
        layout: &str,
    ) -> Tensor {
        let desc = TensorDesc {
            data,
            device: Device { kind, ordinal: 0 },
            dtype,
            shape: shape.into(),
            strides: None,
            layout: Layout::parse(layout).unwrap(),
            readonly: false,
        };
        Tensor::new(desc, &Storage::with_release(None)).unwrap()
    }

    /// The plan queries follow `execute`'s routes — CPU, GPU in place (device or pinned memory),
    /// staged through pageable memory — and make the operations' own checks; none needs a GPU.
    #[test]
    fn plan_names_follow_the_route_and_the_checks_of_the_operation() {
        const CUDA: DeviceType = DeviceType::TB_DEVICE_CUDA;
        const PINNED: DeviceType = DeviceType::TB_DEVICE_CUDA_HOST;
        let (nhwc, nchw) = ([2, 4, 8, 3], [2, 3, 4, 8]);
        let host_src = host(DataType::U8, &nhwc, "NHWC");
        let host_dst = host(DataType::U8, &nchw, "NCHW");
        let host_same = host(DataType::U8, &nhwc, "NHWC");
        let host_f32 = host(DataType::F32, &nchw, "NCHW");
        assert_eq!(reformat_plan(&host_src, &host_dst).unwrap(), "host copy loop");
        assert_eq!(reformat_plan(&host_src, &host_same).unwrap(), "host memcpy");
        assert_eq!(convert_plan(&host_src, &host_f32).unwrap(), "host convert loop");

        let gpu_src = described(CUDA, 1 << 32, DataType::U8, &nhwc, "NHWC");
        let gpu_dst = described(CUDA, 1 << 33, DataType::U8, &nchw, "NCHW");
        let pinned_src = described(PINNED, 1 << 34, DataType::U8, &nhwc, "NHWC");
        let deinterleave = "deinterleave small=3 vec=16";
        assert_eq!(reformat_plan(&gpu_src, &gpu_dst).unwrap(), deinterleave);
        assert_eq!(reformat_plan(&pinned_src, &gpu_dst).unwrap(), deinterleave, "read in place");
        // The CPU packs a pageable source in the destination's order: the GPU copies bytes.
        assert_eq!(reformat_plan(&host_src, &gpu_dst).unwrap(), "staged upload, memcpy");
        assert_eq!(
            reformat_plan(&gpu_src, &host_dst).unwrap(),
            format!("staged download, {deinterleave}")
        );
        let gpu_f32 = described(CUDA, 1 << 35, DataType::F32, &nchw, "NCHW");
        assert_eq!(convert_plan(&gpu_src, &gpu_f32).unwrap(), "deinterleave small=3 vec=4");

        assert!(reformat_plan(&gpu_src, &gpu_f32).unwrap_err().message.contains("use tb_convert"));
        assert!(reformat_plan(&gpu_src, &gpu_src).unwrap_err().message.contains("overlap"));
        let f64_dst = described(CUDA, 1 << 36, DataType::F64, &nchw, "NCHW");
        let unsupported = convert_plan(&gpu_src, &f64_dst).unwrap_err();
        assert_eq!(unsupported.kind, crate::error::ErrorKind::NotSupported);
    }

    #[test]
    fn clone_packs_a_strided_view() {
        let src = host(DataType::F32, &[4, 6, 3], "HWC");
        fill(&src, 11);
        let planar = src.permute_to_layout(&Layout::parse("CHW").unwrap()).unwrap();
        let packed = clone(&planar, Stream::LEGACY).unwrap();
        assert!(packed.is_contiguous());
        assert_eq!(packed.layout().as_string(), "CHW");
        for index in indices(packed.shape()) {
            for k in 0..4 {
                assert_eq!(byte_at(&packed, &index, k), byte_at(&planar, &index, k));
            }
        }
    }
}
