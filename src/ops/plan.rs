//! Planning an element-wise copy between two strided views of the same logical shape: drop
//! extent-1 dimensions, order by the destination's strides, merge dimensions that are contiguous
//! in both, and recognise the shapes the fast kernels handle. The same plan runs on the CPU or
//! the GPU.

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// One dimension of a plan: its extent and its byte strides in the source and destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dim {
    /// Number of indices.
    pub extent: i64,
    /// Source byte stride.
    pub src: i64,
    /// Destination byte stride.
    pub dst: i64,
}

/// What a plan looks like, for choosing how to run it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Nothing to move (an extent is 0).
    Empty,
    /// One dense run of bytes in both tensors: a memcpy.
    Contiguous,
    /// Every element in one dense run on both sides, in the same order, but not a memcpy: the
    /// element sizes differ, or a channel dimension is kept apart (a same-layout conversion).
    Dense,
    /// A batched transpose: destination `[B][R][S]` with `S` innermost (stride = item size),
    /// source `[B][S][R]` with `R` innermost — NHWC ↔ NCHW, HWC ↔ CHW, NDHWC ↔ NCDHW … The
    /// batch is up to two dimensions with any positive strides, so rows padded to a pitch on
    /// either side (which keep `B` from merging into one stride) stay a transpose.
    Transpose,
    /// Any other arrangement: element-wise with full index arithmetic.
    General,
}

/// The dimensions of a [`Shape::Transpose`] plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TransposeDims {
    /// The batch dimensions, outer then inner; extent 1 and strides 0 where absent.
    pub batch: [Dim; 2],
    /// The dimension innermost in the source (source stride = source item size).
    pub r: Dim,
    /// The dimension innermost in the destination (destination stride = destination item size).
    pub s: Dim,
    /// Indices of `r` and `s` in [`Plan::dims`].
    pub r_index: usize,
    /// See `r_index`.
    pub s_index: usize,
}

/// A canonical copy plan: dimensions outermost first (by destination stride), merged where both
/// sides are contiguous, plus the channel dimension when a per-channel affine needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    /// The merged dimensions, outermost first.
    pub dims: Vec<Dim>,
    /// Index into `dims` of the channel dimension (never merged), if the operation needs one.
    pub channel: Option<usize>,
    /// Source element size in bytes.
    pub src_item: i64,
    /// Destination element size in bytes.
    pub dst_item: i64,
    /// Number of elements moved.
    pub count: i64,
}

impl Plan {
    /// Plans copying `src` into `dst` element by element (same shape; the dtypes may differ for
    /// a conversion). `channel` is the logical dimension whose index selects the affine
    /// coefficients, kept unmerged.
    pub(crate) fn new(src: &Tensor, dst: &Tensor, channel: Option<usize>) -> Result<Plan> {
        if src.shape() != dst.shape() {
            return Err(Error::invalid_argument(format!(
                "source shape {:?} differs from destination shape {:?}",
                src.shape(),
                dst.shape()
            )));
        }
        let (src_item, dst_item) = (src.dtype().item_size(), dst.dtype().item_size());
        let count = src.element_count();
        if count == 0 {
            return Ok(Plan { dims: Vec::new(), channel: None, src_item, dst_item, count });
        }
        let mut dims: Vec<(Dim, bool)> = (0..src.rank())
            .filter(|&d| src.shape()[d] != 1)
            .map(|d| {
                let dim =
                    Dim { extent: src.shape()[d], src: src.strides()[d], dst: dst.strides()[d] };
                (dim, Some(d) == channel)
            })
            .collect();
        // Outermost first by destination stride; ties keep the logical order.
        dims.sort_by_key(|(dim, _)| std::cmp::Reverse(dim.dst.unsigned_abs()));
        let mut merged: Vec<(Dim, bool)> = Vec::with_capacity(dims.len());
        for (dim, is_channel) in dims {
            if let Some((outer, outer_is_channel)) = merged.last_mut()
                && !*outer_is_channel
                && !is_channel
                // Checked: stride × extent is one step past the dimension's reach, which the
                // tensor's invariants do not bound (it may not fit int64; then no merge).
                && dim.src.checked_mul(dim.extent) == Some(outer.src)
                && dim.dst.checked_mul(dim.extent) == Some(outer.dst)
            {
                *outer = Dim { extent: outer.extent * dim.extent, ..dim };
                continue;
            }
            merged.push((dim, is_channel));
        }
        let channel = merged.iter().position(|(_, is_channel)| *is_channel);
        let dims = merged.into_iter().map(|(dim, _)| dim).collect();
        Ok(Plan { dims, channel, src_item, dst_item, count })
    }

    /// Which kind of plan this is.
    pub(crate) fn shape(&self) -> Shape {
        if self.count == 0 {
            return Shape::Empty;
        }
        let same_item = self.src_item == self.dst_item;
        match self.dims.as_slice() {
            [] if same_item => Shape::Contiguous,
            [d] if same_item && d.src == self.src_item && d.dst == self.dst_item => {
                Shape::Contiguous
            }
            _ if self.is_dense() => Shape::Dense,
            _ if self.transpose_dims().is_some() => Shape::Transpose,
            _ => Shape::General,
        }
    }

    /// Whether the dimensions, innermost first, step by the item size and then each by the
    /// whole of the dimension inside it, on both sides: one dense run in the same order.
    fn is_dense(&self) -> bool {
        let (mut src, mut dst) = (self.src_item, self.dst_item);
        for dim in self.dims.iter().rev() {
            if dim.src != src || dim.dst != dst {
                return false;
            }
            match (src.checked_mul(dim.extent), dst.checked_mul(dim.extent)) {
                (Some(next_src), Some(next_dst)) => (src, dst) = (next_src, next_dst),
                _ => return false,
            }
        }
        true
    }

    /// For a [`Shape::Dense`] plan: how many consecutive elements share a channel index, and
    /// how many channels there are — `(count, 1)` without a channel dimension.
    pub(crate) fn channel_run(&self) -> (i64, i64) {
        match self.channel {
            None => (self.count, 1),
            Some(c) => (self.dims[c + 1..].iter().map(|d| d.extent).product(), self.dims[c].extent),
        }
    }

    /// The transpose's dimensions, or `None` when the plan is not one: at most four
    /// dimensions, all strides positive, the last innermost in the destination, another
    /// innermost in the source, and the rest (at most two) the batch.
    pub(crate) fn transpose_dims(&self) -> Option<TransposeDims> {
        let n = self.dims.len();
        if !(2..=4).contains(&n) || self.dims.iter().any(|d| d.src <= 0 || d.dst <= 0) {
            return None;
        }
        let s_index = n - 1;
        let r_index = (0..s_index).rev().find(|&d| self.dims[d].src == self.src_item)?;
        if self.dims[s_index].dst != self.dst_item {
            return None;
        }
        let absent = Dim { extent: 1, src: 0, dst: 0 };
        let mut batch = [absent; 2];
        let others: Vec<Dim> =
            (0..s_index).filter(|&d| d != r_index).map(|d| self.dims[d]).collect();
        batch[..others.len()].copy_from_slice(&others);
        let (r, s) = (self.dims[r_index], self.dims[s_index]);
        Some(TransposeDims { batch, r, s, r_index, s_index })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{Device, DeviceType};
    use crate::dtype::DataType;
    use crate::layout::Layout;
    use crate::storage::Storage;
    use crate::tensor::TensorDesc;

    fn tensor(dtype: DataType, shape: &[i64], layout: &str) -> Tensor {
        crate::ops::tests::described(DeviceType::TB_DEVICE_CPU, 0x100000, dtype, shape, layout)
    }

    /// Regression: merging dimensions multiplied a stride by its extent unchecked, which
    /// overflows for a huge (read-only) stride: a panic in debug builds.
    #[test]
    fn huge_strides_are_planned_without_overflow() {
        let desc = TensorDesc {
            data: 0x100000,
            device: Device::CPU,
            dtype: DataType::U8,
            shape: [2, 2].into(),
            strides: Some([1, (1 << 62) + 1].into()),
            layout: Layout::NONE,
            readonly: true,
        };
        let src = Tensor::new(desc, &Storage::with_release(None)).unwrap();
        let dst = tensor(DataType::U8, &[2, 2], "");
        let plan = Plan::new(&src, &dst, None).unwrap();
        assert_eq!(plan.dims.len(), 2, "dimensions that do not line up are not merged");
        assert_eq!(plan.count, 4);
    }

    #[test]
    fn nhwc_to_nchw_is_a_batched_transpose() {
        let src = tensor(DataType::U8, &[8, 4, 5, 3], "NHWC");
        let dst = tensor(DataType::U8, &[8, 3, 4, 5], "NCHW");
        let view = src.permute_to_layout(&dst.layout()).unwrap();
        let plan = Plan::new(&view, &dst, None).unwrap();
        assert_eq!(
            plan.dims,
            vec![
                Dim { extent: 8, src: 60, dst: 60 },
                Dim { extent: 3, src: 1, dst: 20 },
                Dim { extent: 20, src: 3, dst: 1 },
            ]
        );
        assert_eq!(plan.shape(), Shape::Transpose);
    }

    #[test]
    fn nchw_to_nhwc_is_the_other_transpose_and_single_images_drop_the_batch() {
        let src = tensor(DataType::F32, &[3, 4, 5], "CHW");
        let dst = tensor(DataType::F32, &[4, 5, 3], "HWC");
        let plan = Plan::new(&src.permute_to_layout(&dst.layout()).unwrap(), &dst, None).unwrap();
        assert_eq!(
            plan.dims,
            vec![Dim { extent: 20, src: 4, dst: 12 }, Dim { extent: 3, src: 80, dst: 4 }]
        );
        assert_eq!(plan.shape(), Shape::Transpose);
        assert_eq!(plan.transpose_dims().unwrap().batch[0].extent, 1);
    }

    #[test]
    fn same_layout_copies_merge_to_one_run_unless_the_channel_is_kept() {
        let a = tensor(DataType::F32, &[2, 3, 4], "HWC");
        let b = tensor(DataType::F32, &[2, 3, 4], "HWC");
        let plan = Plan::new(&a, &b, None).unwrap();
        assert_eq!(plan.shape(), Shape::Contiguous);
        assert_eq!(plan.count, 24);
        let kept = Plan::new(&a, &b, Some(2)).unwrap();
        assert_eq!(kept.dims.len(), 2);
        assert_eq!(kept.channel, Some(1));
    }

    /// Rows padded to a pitch keep N and H from merging; the transpose takes both as batch.
    #[test]
    fn a_pitched_source_is_a_transpose_with_two_batch_dimensions() {
        let desc = TensorDesc {
            data: 0x100000,
            device: Device::CPU,
            dtype: DataType::U8,
            shape: [8, 4, 5, 3].into(),
            strides: Some([4 * 256, 256, 3, 1].into()),
            layout: Layout::parse("NHWC").unwrap(),
            readonly: false,
        };
        let src = Tensor::new(desc, &Storage::with_release(None)).unwrap();
        let dst = tensor(DataType::U8, &[8, 3, 4, 5], "NCHW");
        let plan = Plan::new(&src.permute_to_layout(&dst.layout()).unwrap(), &dst, None).unwrap();
        assert_eq!(plan.shape(), Shape::Transpose);
        let dims = plan.transpose_dims().unwrap();
        assert_eq!(
            dims.batch,
            [Dim { extent: 8, src: 1024, dst: 60 }, Dim { extent: 4, src: 256, dst: 5 }]
        );
        assert_eq!((dims.r, dims.r_index), (Dim { extent: 3, src: 1, dst: 20 }, 1));
        assert_eq!((dims.s, dims.s_index), (Dim { extent: 5, src: 3, dst: 1 }, 3));
    }

    #[test]
    fn same_order_conversions_are_dense_and_odd_strides_are_general() {
        let a = tensor(DataType::U8, &[4, 6], "HW");
        let b = tensor(DataType::F32, &[4, 6], "HW");
        assert_eq!(Plan::new(&a, &b, None).unwrap().shape(), Shape::Dense);
        let kept = Plan::new(&a, &b, Some(1)).unwrap();
        assert_eq!((kept.shape(), kept.channel_run()), (Shape::Dense, (1, 6)));
        let outer = Plan::new(&a, &b, Some(0)).unwrap();
        assert_eq!((outer.shape(), outer.channel_run()), (Shape::Dense, (6, 4)));
        let columns = a.slice(1, 0, 6, 2).unwrap();
        let c = tensor(DataType::F32, &[4, 3], "HW");
        assert_eq!(Plan::new(&columns, &c, None).unwrap().shape(), Shape::General);
        let flipped = a.slice(1, i64::MAX, i64::MIN, -1).unwrap();
        let plan = Plan::new(&flipped, &a, None).unwrap();
        assert_eq!(plan.shape(), Shape::General);
        let empty = tensor(DataType::U8, &[0, 6], "HW");
        assert_eq!(Plan::new(&empty, &empty, None).unwrap().shape(), Shape::Empty);
    }
}
