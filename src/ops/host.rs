//! Running a plan on the CPU, over host-accessible memory.
//!
//! This is the one module of the core that dereferences tensor data, so it holds the core's only
//! `unsafe`: every address it touches is `data + Σ index·stride` for indices inside the shape,
//! which `Tensor::new` proved to lie inside the span the tensor's creator vouched for.

use super::element::{ElementOp, read_as_f32, write_from_f32};
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

/// Executes `plan` from host memory at `src` to host memory at `dst`.
pub(crate) fn run(plan: &Plan, src: u64, dst: u64, op: &ElementOp) {
    let (src_item, dst_item) = (plan.src_item as usize, plan.dst_item as usize);
    match (op, plan.shape()) {
        (_, Shape::Empty) => {}
        (ElementOp::Copy, Shape::Contiguous) => {
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
        (ElementOp::Convert(conversion), _) => for_each_element(plan, |s, d, channel| {
            // SAFETY: offsets of in-bounds elements of the source and destination dtypes.
            let (input, output) = unsafe {
                (
                    std::slice::from_raw_parts((src as *const u8).offset(s as isize), src_item),
                    std::slice::from_raw_parts_mut((dst as *mut u8).offset(d as isize), dst_item),
                )
            };
            let y = conversion.affine(read_as_f32(conversion.from, input), channel);
            write_from_f32(conversion.to, y, output);
        }),
    }
}
