//! Running a plan on the CPU, over host-accessible memory.
//!
//! This is the one module of the core that dereferences tensor data, so it holds the core's only
//! `unsafe`: every address it touches is `data + Σ index·stride` for indices inside the shape,
//! which `Tensor::new` proved to lie inside the span the tensor's creator vouched for.

use super::element::{ElementOp, read_as_f32, write_from_f32};
use super::frame_job::FrameJob;
use super::plan::{Plan, Shape};

/// Visits every element of `plan`, calling `visit(src_offset, dst_offset, channel)` with byte
/// offsets from the two data pointers; the innermost dimension is the loop's fastest.
fn for_each_element(plan: &Plan, mut visit: impl FnMut(i64, i64, usize)) {
    let rank = plan.dims.len();
    if plan.count == 0 {
        return;
    }
    let mut index = vec![0i64; rank];
    let (mut src, mut dst) = (0i64, 0i64);
    loop {
        let channel = plan.channel.map_or(0, |c| index[c] as usize);
        visit(src, dst, channel);
        // Odometer increment, innermost first.
        let mut d = rank;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            let dim = plan.dims[d];
            if index[d] + 1 < dim.extent {
                index[d] += 1;
                src += dim.src;
                dst += dim.dst;
                break;
            }
            // Back to index 0 without stepping past the last index, whose offset (one stride
            // beyond the tensor's span) need not fit int64; every offset used lies in the span.
            src -= dim.src * (dim.extent - 1);
            dst -= dim.dst * (dim.extent - 1);
            index[d] = 0;
        }
    }
}

/// How the CPU carries out a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    /// Nothing to move.
    Nothing,
    /// One `memcpy` of the whole run.
    Memcpy,
    /// Element by element, bytes unchanged.
    CopyLoop,
    /// Element by element through the conversion.
    ConvertLoop,
}

impl Method {
    /// The method [`run`] uses for `plan` with `op`.
    pub(crate) fn of(plan: &Plan, op: &ElementOp) -> Method {
        match (op, plan.shape()) {
            (_, Shape::Empty) => Method::Nothing,
            (ElementOp::Copy, Shape::Contiguous) => Method::Memcpy,
            (ElementOp::Copy, _) => Method::CopyLoop,
            (ElementOp::Convert(_), _) => Method::ConvertLoop,
        }
    }

    /// A short lower-case name: "none", "memcpy", "copy loop" or "convert loop".
    pub(crate) fn name(self) -> &'static str {
        match self {
            Method::Nothing => "none",
            Method::Memcpy => "memcpy",
            Method::CopyLoop => "copy loop",
            Method::ConvertLoop => "convert loop",
        }
    }
}

/// Executes `plan` from host memory at `src` to host memory at `dst`.
pub(crate) fn run(plan: &Plan, src: u64, dst: u64, op: &ElementOp) {
    let (src_item, dst_item) = (plan.src_item as usize, plan.dst_item as usize);
    match (op, Method::of(plan, op)) {
        (_, Method::Nothing) => {}
        (_, Method::Memcpy) => {
            // SAFETY: both spans hold count elements (see the module comment); the caller has
            // checked that source and destination memory do not overlap.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    src as *const u8,
                    dst as *mut u8,
                    plan.count as usize * src_item,
                )
            }
        }
        (ElementOp::Copy, _) => for_each_element(plan, |s, d, _| {
            // SAFETY: offsets of in-bounds elements; item-sized, non-overlapping copies.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    (src as *const u8).offset(s as isize),
                    (dst as *mut u8).offset(d as isize),
                    src_item,
                )
            }
        }),
        (ElementOp::Convert(conversion), _) => {
            // A reordered channel reads another channel of the same source element group.
            let channel_step = plan.channel.map_or(0, |c| plan.dims[c].src);
            for_each_element(plan, |s, d, channel| {
                let s =
                    s + (conversion.source_channel(channel) as i64 - channel as i64) * channel_step;
                // SAFETY: offsets of in-bounds elements of the source and destination dtypes (a
                // reordered channel's index is another index inside the channel extent).
                let (input, output) = unsafe {
                    (
                        std::slice::from_raw_parts((src as *const u8).offset(s as isize), src_item),
                        std::slice::from_raw_parts_mut(
                            (dst as *mut u8).offset(d as isize),
                            dst_item,
                        ),
                    )
                };
                let y = conversion.affine(read_as_f32(conversion.from, input), channel);
                write_from_f32(conversion.to, y, output);
            })
        }
    }
}

/// Converts the frames of `job` on the CPU (host memory), pixel by pixel, as the GPU kernel does.
pub(crate) fn run_frames(job: &FrameJob) {
    let read = |address: i64| -> f32 {
        // SAFETY: addresses of samples inside the planes (`FrameJob::new` derived every stride
        // and extent from the plane tensors, whose spans `Tensor::new` checked).
        unsafe {
            match job.sample.item_size() {
                1 => f32::from(*(address as *const u8)),
                _ => f32::from((address as *const u16).read_unaligned()),
            }
        }
    };
    let item = job.conversion.to.item_size() as usize;
    let [d_n, d_c, d_y, d_x] = job.dst_strides;
    let mut bytes = [0u8; 4];
    for n in 0..job.batch {
        for row in 0..job.height {
            let (y_row, c_row) = (
                job.y.data as i64 + n * job.y.frame + row * job.y.row,
                n * job.u.frame + row / 2 * job.u.row,
            );
            for x in 0..job.width {
                let chroma = c_row + x / 2 * job.u.column;
                let rgb = job.coefficients.rgb(
                    read(y_row + x * job.y.column),
                    read(job.u.data as i64 + chroma),
                    read(job.v.data as i64 + chroma),
                );
                let ordered = if job.blue_first { [rgb[2], rgb[1], rgb[0]] } else { rgb };
                for (c, value) in ordered.into_iter().enumerate() {
                    write_from_f32(
                        job.conversion.to,
                        job.conversion.affine(value, c),
                        &mut bytes[..item],
                    );
                    let at = job.dst as i64 + n * d_n + c as i64 * d_c + row * d_y + x * d_x;
                    // SAFETY: an element of the output tensor (in its shape, see above), which
                    // does not overlap the planes.
                    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), at as *mut u8, item) };
                }
            }
        }
    }
}
