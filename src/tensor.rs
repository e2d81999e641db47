//! Tensors: a typed, strided view of memory that someone else (or a `Storage`) owns.
//!
//! A `Tensor` is immutable metadata plus an `Arc<Storage>`; views (permute, slice, select) are
//! new `Tensor`s over the same storage, so the memory lives until the last view is dropped, and
//! the storage's release action (the caller's cleanup callback, or freeing an allocation) runs
//! exactly once, then.

use crate::alloc::{Allocation, Request};
use crate::device::{Device, DeviceType};
use crate::dims::Dims;
use crate::dtype::DataType;
use crate::error::{Error, Result, checked_add, checked_mul};
use crate::layout::{Layout, TB_MAX_RANK};
use crate::storage::{ReleaseFn, Storage};
use crate::stream::Stream;
use std::sync::Arc;

/// Everything needed to describe a tensor, before validation.
#[derive(Clone, Debug)]
pub(crate) struct TensorDesc {
    /// Address of the element at index (0, …, 0). May be 0 only for zero-size tensors.
    pub data: u64,
    /// Where the memory lives.
    pub device: Device,
    /// Element type.
    pub dtype: DataType,
    /// Extent of each dimension, outermost first.
    pub shape: Dims,
    /// Byte strides; `None` means C-contiguous (packed, row-major).
    pub strides: Option<Dims>,
    /// Dimension labels, or `Layout::NONE`.
    pub layout: Layout,
    /// Whether writes through this tensor are forbidden.
    pub readonly: bool,
}

/// A validated tensor: the invariants below hold for every value of this type.
/// - rank ≤ 15, every extent ≥ 0, and the byte span fits in int64;
/// - the product of the non-zero extents times the item size fits in int64 (as NumPy requires),
///   whatever their order: so the element count and `nbytes` fit, and so do those of every
///   permutation, slice and selection of the tensor (each is checked again when it is made).
///   The accessors `element_count`, `nbytes` and `is_contiguous` rely on this and cannot fail;
/// - data is non-null when the tensor has elements, and aligned (as are the strides) for its dtype;
/// - a writable tensor's elements do not overlap;
/// - the layout is none or has one label per dimension.
#[derive(Clone)]
pub(crate) struct Tensor {
    data: u64,
    device: Device,
    dtype: DataType,
    shape: Dims,
    strides: Dims,
    layout: Layout,
    readonly: bool,
    /// Number of elements; see the invariants.
    count: i64,
    /// `count` × item size; see the invariants.
    nbytes: i64,
    storage: Arc<Storage>,
}

/// Byte strides of a C-contiguous tensor of `shape` and `item_size`.
#[inline]
pub(crate) fn contiguous_strides(shape: &[i64], item_size: i64) -> Result<Dims> {
    let mut strides = Dims::zeros(shape.len());
    let mut step = item_size;
    for (dim, &extent) in shape.iter().enumerate().rev() {
        strides[dim] = step;
        step = checked_mul(step, extent.max(1), "contiguous stride")?;
    }
    Ok(strides)
}

/// The memory a new tensor needs: computed by a pure function from what the caller asks for,
/// then satisfied by an allocator (`Tensor::allocate`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Requirements {
    /// Where the memory lives.
    pub device: Device,
    /// Element type.
    pub dtype: DataType,
    /// Extents.
    pub shape: Dims,
    /// Byte strides of the new tensor (row-major, rows padded to the alignment asked for).
    pub strides: Dims,
    /// Dimension labels.
    pub layout: Layout,
    /// Bytes to allocate.
    pub bytes: i64,
}

impl Requirements {
    /// The strides and size of a fresh allocation of `shape` whose rows start at multiples of
    /// `row_alignment` bytes (0 = packed). A row is the dimension labelled `W` and everything
    /// inside it (`W·C` for `"NHWC"`, `W` for `"NCHW"`), or the last dimension when the layout has
    /// no `W`; the dimension just outside the row gets the padded pitch, as `cudaMallocPitch`
    /// would give.
    pub(crate) fn compute(
        device: Device,
        dtype: DataType,
        shape: &[i64],
        layout: Layout,
        row_alignment: i64,
    ) -> Result<Requirements> {
        check_shape(shape, None)?;
        layout.check_rank(shape.len())?;
        let (strides, bytes) = padded_strides(shape, &layout, dtype.item_size(), row_alignment)?;
        Ok(Requirements { device, dtype, shape: shape.into(), strides, layout, bytes })
    }

    /// A packed (C-contiguous) tensor of `like`'s device, dtype, shape and layout.
    pub(crate) fn packed_like(like: &Tensor) -> Result<Requirements> {
        Self::compute(like.device(), like.dtype(), like.shape(), like.layout(), 0)
    }
}

/// See `Requirements::compute`.
fn padded_strides(
    shape: &[i64],
    layout: &Layout,
    item_size: i64,
    row_alignment: i64,
) -> Result<(Dims, i64)> {
    if row_alignment < 0 || (row_alignment > 0 && row_alignment.count_ones() != 1) {
        return Err(Error::invalid_argument(format!(
            "row_alignment = {row_alignment} is not 0 or a power of two"
        )));
    }
    let mut strides = contiguous_strides(shape, item_size)?;
    let row_dim = layout.find(b'W').unwrap_or(shape.len().saturating_sub(1));
    if row_alignment > 0 && row_dim > 0 {
        let row_bytes = checked_mul(strides[row_dim], shape[row_dim].max(1), "row size")?;
        let pitch =
            checked_add(row_bytes, row_alignment - 1, "row pitch")? / row_alignment * row_alignment;
        let mut step = pitch;
        for dim in (0..row_dim).rev() {
            strides[dim] = step;
            step = checked_mul(step, shape[dim].max(1), "padded stride")?;
        }
    }
    let total = match shape.first() {
        Some(&outer) => checked_mul(strides[0], outer, "allocation size")?,
        None => item_size,
    };
    Ok((strides, total))
}

/// Number of elements (product of the extents), checked as `sizes` checks it.
pub(crate) fn element_count(shape: &[i64]) -> Result<i64> {
    sizes(shape, 1).map(|(count, _)| count)
}

/// The element count and size in bytes (count × `item_size`) of `shape`. The product of the
/// non-zero extents times the item size must fit int64 (`TB_ERROR_OVERFLOW` otherwise), as
/// NumPy requires: the rule does not depend on the order of the extents, so a permutation of a
/// valid shape is valid too.
pub(crate) fn sizes(shape: &[i64], item_size: i64) -> Result<(i64, i64)> {
    let mut bytes = item_size;
    for &extent in shape.iter().filter(|&&e| e != 0) {
        bytes = bytes.checked_mul(extent).ok_or_else(|| {
            Error::overflow(format!(
                "element count × item size of shape {shape:?} ({item_size} bytes per element) \
                 overflows int64"
            ))
        })?;
    }
    match shape.contains(&0) {
        true => Ok((0, 0)),
        false => Ok((bytes / item_size, bytes)),
    }
}

/// The lowest and one-past-highest byte offsets, relative to the data pointer, that the
/// elements occupy. `(0, 0)` for a zero-size tensor.
pub(crate) fn byte_extent(shape: &[i64], strides: &[i64], item_size: i64) -> Result<(i64, i64)> {
    if shape.contains(&0) {
        return Ok((0, 0));
    }
    let (mut low, mut high) = (0i64, 0i64);
    for (dim, (&extent, &stride)) in shape.iter().zip(strides).enumerate() {
        // The message is built only on overflow: this runs on every wrap and import.
        let overflow = || {
            Error::overflow(format!(
                "byte extent of dimension {dim} (extent {extent}, stride {stride}) overflows int64"
            ))
        };
        let reach = (extent - 1).checked_mul(stride).ok_or_else(overflow)?;
        let bound = if reach < 0 { &mut low } else { &mut high };
        *bound = bound.checked_add(reach).ok_or_else(overflow)?;
    }
    Ok((low, checked_add(high, item_size, "byte extent")?))
}

fn check_shape(shape: &[i64], strides: Option<&Dims>) -> Result<()> {
    if shape.len() > TB_MAX_RANK {
        return Err(Error::invalid_argument(format!(
            "rank {} exceeds the maximum rank {TB_MAX_RANK}",
            shape.len()
        )));
    }
    if let Some(dim) = shape.iter().position(|&e| e < 0) {
        return Err(Error::invalid_argument(format!(
            "shape[{dim}] = {} is negative; extents must be >= 0",
            shape[dim]
        )));
    }
    if let Some(strides) = strides
        && strides.len() != shape.len()
    {
        return Err(Error::invalid_argument(format!(
            "{} strides given for a tensor of rank {}",
            strides.len(),
            shape.len()
        )));
    }
    Ok(())
}

fn check_alignment(data: u64, dtype: DataType, shape: &[i64], strides: &[i64]) -> Result<()> {
    let align = dtype.alignment();
    if !data.is_multiple_of(align as u64) {
        return Err(Error::invalid_argument(format!(
            "data pointer {data:#x} is misaligned for {dtype} (needs a multiple of {align} bytes)"
        )));
    }
    for (dim, (&extent, &stride)) in shape.iter().zip(strides).enumerate() {
        if extent > 1 && stride % align != 0 {
            return Err(Error::invalid_argument(format!(
                "strides[{dim}] = {stride} bytes is misaligned for {dtype} \
                 (needs a multiple of {align} bytes)"
            )));
        }
    }
    Ok(())
}

/// Whether the elements are packed in row-major order: every dimension of extent above 1 steps
/// exactly over the dimensions inside it (strides of extent-1 dimensions do not matter).
fn is_packed(shape: &[i64], strides: &[i64], item_size: i64) -> bool {
    let mut expected = item_size;
    for (&extent, &stride) in shape.iter().zip(strides).rev() {
        if extent != 1 && stride != expected {
            return false;
        }
        match expected.checked_mul(extent) {
            Some(next) => expected = next,
            None => return false,
        }
    }
    true
}

/// Rejects writable tensors in which two indices reach the same byte. Sorted by |stride|, every
/// dimension must step past the whole span of the dimensions inside it (the rule NumPy and
/// PyTorch use for "no internal overlap"); dimensions of extent ≤ 1 never overlap. Packed
/// row-major strides satisfy the rule by construction (each steps exactly over the span inside
/// it, and that span is at most the tensor's size in bytes, which fits int64), so they are
/// accepted without sorting. `shape` has at most `TB_MAX_RANK` dimensions (`check_shape`).
fn check_no_overlap(shape: &[i64], strides: &[i64], item_size: i64) -> Result<()> {
    if shape.contains(&0) || is_packed(shape, strides, item_size) {
        return Ok(());
    }
    // (|stride|, extent, dim) of the dimensions of extent above 1, sorted on the stack.
    let mut dims = [(0i64, 0i64, 0usize); TB_MAX_RANK];
    let mut len = 0;
    for (dim, (&extent, &stride)) in shape.iter().zip(strides).enumerate() {
        if extent > 1 {
            dims[len] = (stride.unsigned_abs() as i64, extent, dim);
            len += 1;
        }
    }
    dims[..len].sort_unstable();
    let mut span = item_size;
    for &(stride, extent, dim) in &dims[..len] {
        if stride < span {
            return Err(Error::invalid_argument(format!(
                "strides[{dim}] = {} makes elements overlap (it must step at least {span} bytes); \
                 overlapping tensors (such as zero strides) must be read-only",
                strides[dim]
            )));
        }
        // Checked: byte_extent bounds each side of the span, not their sum.
        span = (extent - 1)
            .checked_mul(stride)
            .and_then(|reach| span.checked_add(reach))
            .ok_or_else(|| {
                Error::overflow(format!(
                    "the overlap check's span of dimensions up to strides[{dim}] = {} \
                     (extent {extent}) overflows int64",
                    strides[dim]
                ))
            })?;
    }
    Ok(())
}

impl Tensor {
    /// Validates `desc` and makes a tensor over `storage`.
    pub(crate) fn new(desc: TensorDesc, storage: &Arc<Storage>) -> Result<Tensor> {
        Tensor::validated(desc, || storage.clone())
    }

    /// Validates `desc` and makes a tensor over the storage that `storage` gives, which is called
    /// only once `desc` is known to be valid.
    fn validated(desc: TensorDesc, storage: impl FnOnce() -> Arc<Storage>) -> Result<Tensor> {
        let dtype = desc.dtype;
        check_shape(&desc.shape, desc.strides.as_ref())?;
        desc.layout.check_rank(desc.shape.len())?;
        let item_size = dtype.item_size();
        let strides = match desc.strides {
            Some(strides) => strides,
            None => contiguous_strides(&desc.shape, item_size)?,
        };
        let (count, nbytes) = sizes(&desc.shape, item_size)?;
        let (low, high) = byte_extent(&desc.shape, &strides, item_size)?;
        if count > 0 && desc.data == 0 {
            return Err(Error::invalid_argument(format!(
                "data is NULL but the tensor has {count} elements"
            )));
        }
        if count > 0 {
            let first = i128::from(desc.data) + i128::from(low);
            let end = i128::from(desc.data) + i128::from(high);
            if first < 0 || end > i128::from(u64::MAX) {
                return Err(Error::overflow(format!(
                    "elements span bytes [{low}, {high}) around data {:#x}, \
                     outside the address space",
                    desc.data
                )));
            }
            check_alignment(desc.data, dtype, &desc.shape, &strides)?;
            if !desc.readonly {
                check_no_overlap(&desc.shape, &strides, item_size)?;
            }
        }
        Ok(Tensor {
            data: desc.data,
            device: desc.device,
            dtype,
            shape: desc.shape,
            strides,
            layout: desc.layout,
            readonly: desc.readonly,
            count,
            nbytes,
            storage: storage(),
        })
    }

    /// A tensor over new memory, as `requirements` describe it, from the allocator installed for
    /// its device kind; writable. The memory is ordered on `stream` (`None`: usable on every
    /// stream at once), which becomes the tensor's pending stream; it goes back to the allocator
    /// when the last tensor over it is dropped, after the last work on it.
    pub(crate) fn allocate(requirements: Requirements, stream: Option<Stream>) -> Result<Tensor> {
        let request = Request::new(requirements.device, requirements.bytes, stream);
        let Allocation { data, release } = crate::alloc::allocate(&request)?;
        let desc = TensorDesc {
            data,
            device: requirements.device,
            dtype: requirements.dtype,
            shape: requirements.shape,
            strides: Some(requirements.strides),
            layout: requirements.layout,
            readonly: false,
        };
        // CUDA memory tensorbridge allocated is freed in stream order after its last use.
        let storage = match desc.device.is_cuda() {
            true => Storage::with_ordered_free(release, Some((data, requirements.bytes as u64))),
            false => Storage::with_release(Some(release)),
        };
        if let Some(stream) = stream.filter(|_| desc.device.is_cuda()) {
            storage.record_use(stream, false);
        }
        Tensor::new(desc, &storage)
    }

    /// A tensor over memory someone else owns, which runs `release` when its memory is no longer
    /// used. If `desc` is invalid, `release` is dropped without running: the memory stays the
    /// caller's.
    pub(crate) fn adopt(desc: TensorDesc, release: Option<ReleaseFn>) -> Result<Tensor> {
        // The storage is made only for a valid `desc`: on failure `release` is simply dropped.
        Tensor::validated(desc, || Storage::with_release(release))
    }

    /// Like `adopt`, for memory whose release must come after the last work on it: operations
    /// leave completion markers, and `release` receives the streams the memory was used on.
    pub(crate) fn adopt_ordered(desc: TensorDesc, release: ReleaseFn) -> Result<Tensor> {
        Tensor::validated(desc, || Storage::with_ordered_free(release, None))
    }

    /// Hands a tensor that `adopt` just made to `hand_off` (which gives it to C). If that fails,
    /// the release action is taken out before the tensor is dropped, as when validation fails: the
    /// memory stays the caller's and their cleanup never runs. Only for a tensor whose storage
    /// no other tensor shares yet.
    pub(crate) fn hand_off_adopted<T>(
        self,
        hand_off: impl FnOnce(Tensor) -> Result<T>,
    ) -> Result<T> {
        let storage = self.storage.clone();
        hand_off(self).inspect_err(|_| drop(storage.disarm()))
    }

    /// Address of the element at index (0, …, 0).
    pub(crate) fn data(&self) -> u64 {
        self.data
    }
    /// Where the memory lives.
    pub(crate) fn device(&self) -> Device {
        self.device
    }
    /// Element type.
    pub(crate) fn dtype(&self) -> DataType {
        self.dtype
    }
    /// Extents, outermost first.
    pub(crate) fn shape(&self) -> &[i64] {
        &self.shape
    }
    /// Byte strides, outermost first.
    pub(crate) fn strides(&self) -> &[i64] {
        &self.strides
    }
    /// Number of dimensions.
    pub(crate) fn rank(&self) -> usize {
        self.shape.len()
    }
    /// Dimension labels (possibly none).
    pub(crate) fn layout(&self) -> Layout {
        self.layout
    }
    /// Whether writes through this tensor are forbidden.
    pub(crate) fn is_readonly(&self) -> bool {
        self.readonly
    }
    /// The storage shared by this tensor and its views.
    pub(crate) fn storage(&self) -> &Arc<Storage> {
        &self.storage
    }
    /// Number of elements (fits int64 by the type's invariant, checked when it was made).
    pub(crate) fn element_count(&self) -> i64 {
        self.count
    }
    /// Bytes the elements themselves occupy (element count × item size; fits int64 by the
    /// type's invariant, even for a broadcast tensor whose span is much smaller).
    pub(crate) fn nbytes(&self) -> i64 {
        self.nbytes
    }
    /// Whether the elements are packed in row-major order (ignoring strides of extent-1 dims).
    pub(crate) fn is_contiguous(&self) -> bool {
        // Partial products of the extents are at most `nbytes` (the type's invariant), so
        // `is_packed` never meets an overflow here.
        self.count == 0 || is_packed(&self.shape, &self.strides, self.dtype.item_size())
    }

    /// Fails with `TB_ERROR_READ_ONLY` when the tensor may not be written.
    pub(crate) fn require_writable(&self, role: &str) -> Result<()> {
        if self.readonly {
            return Err(Error::read_only(format!("{role} tensor is read-only")));
        }
        Ok(())
    }

    /// A view of the same storage. Its sizes are checked again (they cannot overflow when the
    /// view's extents are a permutation or a subset of this tensor's, which is all views make).
    fn view(&self, data: u64, shape: Dims, strides: Dims, layout: Layout) -> Result<Tensor> {
        let (count, nbytes) = sizes(&shape, self.dtype.item_size())?;
        Ok(Tensor { data, shape, strides, layout, count, nbytes, ..self.clone() })
    }

    fn check_dim(&self, dim: i64) -> Result<usize> {
        let rank = self.rank() as i64;
        let resolved = if dim < 0 { dim + rank } else { dim };
        if !(0..rank).contains(&resolved) {
            return Err(Error::invalid_argument(format!(
                "dimension {dim} is out of range for a tensor of rank {rank}"
            )));
        }
        Ok(resolved as usize)
    }

    /// A view with dimensions reordered: view dimension `i` is this tensor's dimension `order[i]`.
    pub(crate) fn permute(&self, order: &[usize]) -> Result<Tensor> {
        let mut seen = vec![false; self.rank()];
        if order.len() != self.rank() {
            return Err(Error::invalid_argument(format!(
                "permutation has {} axes but the tensor has rank {}",
                order.len(),
                self.rank()
            )));
        }
        for (i, &axis) in order.iter().enumerate() {
            if axis >= self.rank() || std::mem::replace(&mut seen[axis], true) {
                return Err(Error::invalid_argument(format!(
                    "axes[{i}] = {axis} is out of range or repeated: {order:?} is not a \
                     permutation of 0..{}",
                    self.rank()
                )));
            }
        }
        let shape = order.iter().map(|&a| self.shape[a]).collect();
        let strides = order.iter().map(|&a| self.strides[a]).collect();
        self.view(self.data, shape, strides, self.layout.permuted(order))
    }

    /// A view in `target` layout, which must hold the same labels as this tensor's layout.
    pub(crate) fn permute_to_layout(&self, target: &Layout) -> Result<Tensor> {
        let order = self.layout.permutation_to(target)?;
        self.permute(&order)
    }

    /// A view of `start..stop` with `step` along `dim`, with Python's slice semantics: negative
    /// `start`/`stop` count from the end, out-of-range bounds are clamped, `step` may be negative
    /// (giving a negative stride) but not 0. The rank and layout are kept.
    pub(crate) fn slice(&self, dim: i64, start: i64, stop: i64, step: i64) -> Result<Tensor> {
        let dim = self.check_dim(dim)?;
        if step == 0 {
            return Err(Error::invalid_argument("slice step is 0"));
        }
        let extent = self.shape[dim];
        let clamp = |index: i64| -> i64 {
            let index = if index < 0 { index.saturating_add(extent) } else { index };
            match step > 0 {
                true => index.clamp(0, extent),
                false => index.clamp(-1, extent - 1),
            }
        };
        let (start, stop) = (clamp(start), clamp(stop));
        // Both bounds lie in -1..=extent, so their difference fits; `step` is divided out as an
        // unsigned magnitude because -i64::MIN does not fit (that step takes one element).
        let count = match step > 0 {
            true if start < stop => (stop - start - 1) / step + 1,
            false if stop < start => ((start - stop - 1) as u64 / step.unsigned_abs()) as i64 + 1,
            _ => 0,
        };
        let stride = self.strides[dim];
        let mut data = self.data;
        let mut strides = self.strides.clone();
        // A view with no elements addresses nothing: its offset and stride are not computed (they
        // may not even fit int64 when another dimension is empty).
        let empty_elsewhere = self.shape.iter().enumerate().any(|(d, &e)| d != dim && e == 0);
        if count > 0 && !empty_elsewhere {
            let offset = checked_mul(start, stride, "slice offset")?;
            data = data.wrapping_add_signed(offset);
            if count > 1 {
                strides[dim] = checked_mul(stride, step, "slice stride")?;
            }
        }
        let mut shape = self.shape.clone();
        shape[dim] = count;
        self.view(data, shape, strides, self.layout)
    }

    /// The sub-tensor at `index` along `dim` (negative counts from the end), one rank lower; its
    /// layout drops `dim`'s label (an `"NHWC"` batch's element is an `"HWC"` image).
    pub(crate) fn select(&self, dim: i64, index: i64) -> Result<Tensor> {
        let dim = self.check_dim(dim)?;
        let extent = self.shape[dim];
        let resolved = if index < 0 { index + extent } else { index };
        if !(0..extent).contains(&resolved) {
            return Err(Error::invalid_argument(format!(
                "index {index} is out of range for dimension {dim} of extent {extent}"
            )));
        }
        let offset = checked_mul(resolved, self.strides[dim], "select offset")?;
        let (shape, strides) = (self.shape.without(dim), self.strides.without(dim));
        self.view(self.data.wrapping_add_signed(offset), shape, strides, self.layout.without(dim))
    }

    /// A view with `layout` attached (or removed with `Layout::NONE`); memory is unchanged.
    pub(crate) fn with_layout(&self, layout: Layout) -> Result<Tensor> {
        layout.check_rank(self.rank())?;
        Ok(Tensor { layout, ..self.clone() })
    }

    /// Whether the host can dereference this tensor's data.
    pub(crate) fn is_host_accessible(&self) -> bool {
        self.device.kind.is_host_accessible()
    }

    /// Whether this tensor lives in CUDA device memory proper.
    pub(crate) fn is_device_memory(&self) -> bool {
        self.device.kind == DeviceType::TB_DEVICE_CUDA
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tensor")
            .field("data", &format_args!("{:#x}", self.data))
            .field("device", &format_args!("{}", self.device))
            .field("dtype", &format_args!("{}", self.dtype))
            .field("shape", &self.shape)
            .field("strides", &self.strides)
            .field("layout", &self.layout)
            .field("readonly", &self.readonly)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn desc(shape: &[i64], strides: Option<&[i64]>, layout: &str) -> TensorDesc {
        TensorDesc {
            data: 0x1000,
            device: Device::CPU,
            dtype: DataType::F32,
            shape: shape.into(),
            strides: strides.map(Dims::from),
            layout: Layout::parse(layout).unwrap(),
            readonly: false,
        }
    }

    fn unowned() -> Arc<Storage> {
        Storage::with_release(None)
    }

    #[test]
    fn contiguous_by_default() {
        let t = Tensor::new(desc(&[2, 3, 4], None, "HWC"), &unowned()).unwrap();
        assert_eq!(t.strides(), &[48, 16, 4]);
        assert!(t.is_contiguous());
        assert_eq!(t.nbytes(), 96);
    }

    #[test]
    fn release_runs_once_after_the_last_view() {
        let count = Arc::new(AtomicUsize::new(0));
        let counter = count.clone();
        let storage = Storage::with_release(Some(Box::new(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        })));
        let t = Tensor::new(desc(&[4, 5, 6, 3], None, "NHWC"), &storage).unwrap();
        drop(storage);
        let view = t.permute_to_layout(&Layout::parse("NCHW").unwrap()).unwrap();
        drop(t);
        assert_eq!(count.load(Ordering::SeqCst), 0);
        let image = view.select(0, 1).unwrap();
        drop(view);
        assert_eq!(count.load(Ordering::SeqCst), 0);
        drop(image);
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn permute_by_layout_moves_strides() {
        let t = Tensor::new(desc(&[2, 8, 16, 3], None, "NHWC"), &unowned()).unwrap();
        let v = t.permute_to_layout(&Layout::parse("NCHW").unwrap()).unwrap();
        assert_eq!(v.shape(), &[2, 3, 8, 16]);
        assert_eq!(v.strides(), &[1536, 4, 192, 12]);
        assert_eq!(v.layout().as_string(), "NCHW");
        assert!(!v.is_contiguous());
    }

    #[test]
    fn slicing_follows_python() {
        let t = Tensor::new(desc(&[10], None, ""), &unowned()).unwrap();
        let cases: [(i64, i64, i64, i64, i64, u64); 7] = [
            (2, 8, 1, 6, 4, 0x1008),
            (2, 8, 3, 2, 12, 0x1008),
            (-3, i64::MAX, 1, 3, 4, 0x101c),
            (9, -11, -1, 10, -4, 0x1024),
            (8, 2, -2, 3, -8, 0x1020),
            (5, 5, 1, 0, 4, 0x1000),
            (i64::MIN, i64::MAX, 4, 3, 16, 0x1000),
        ];
        for (start, stop, step, count, stride, data) in cases {
            let s = t.slice(0, start, stop, step).unwrap();
            assert_eq!(s.shape(), &[count], "{start}:{stop}:{step}");
            assert_eq!(s.strides(), &[stride], "{start}:{stop}:{step}");
            assert_eq!(s.data(), data, "{start}:{stop}:{step}");
        }
        assert!(t.slice(0, 0, 1, 0).unwrap_err().message.contains("step is 0"));
        assert!(t.slice(1, 0, 1, 1).unwrap_err().message.contains("dimension 1"));
    }

    #[test]
    fn select_drops_the_label() {
        let t = Tensor::new(desc(&[4, 2, 2, 3], None, "NHWC"), &unowned()).unwrap();
        let image = t.select(0, -1).unwrap();
        assert_eq!(image.shape(), &[2, 2, 3]);
        assert_eq!(image.layout().as_string(), "HWC");
        assert_eq!(image.data(), 0x1000 + 3 * 48);
        assert!(t.select(0, 4).unwrap_err().message.contains("index 4"));
    }

    #[test]
    fn overlap_is_only_allowed_read_only() {
        let broadcast = desc(&[4, 3], Some(&[0, 4]), "");
        let err = Tensor::new(broadcast.clone(), &unowned()).unwrap_err();
        assert!(err.message.contains("overlap"), "{}", err.message);
        let readonly = TensorDesc { readonly: true, ..broadcast };
        Tensor::new(readonly, &unowned()).unwrap();
        // Padded rows and negative strides do not overlap.
        Tensor::new(desc(&[4, 3], Some(&[64, 4]), ""), &unowned()).unwrap();
        Tensor::new(desc(&[4, 3], Some(&[-12, 4]), ""), &unowned()).unwrap();
    }

    /// Regression: size, span and slice arithmetic was unchecked (a panic in debug builds, a
    /// silent wrap in release ones). Each case must fail with `Overflow`, in both.
    #[test]
    fn size_span_and_view_arithmetic_overflow_is_an_error() {
        let huge = 1i64 << 62;
        // (case, dtype, data, shape, strides, readonly, message fragment)
        type Case<'a> = (&'a str, DataType, u64, &'a [i64], &'a [i64], bool, &'a str);
        let cases: [Case; 6] = [
            (
                "overlap_span_sum_wraps",
                DataType::U8,
                1 << 63,
                &[2, 2, 2],
                &[-(huge - 1), -huge, huge],
                false,
                "overlap check's span",
            ),
            (
                "broadcast_nbytes_f32",
                DataType::F32,
                0x1000,
                &[(1 << 61) + 1],
                &[0],
                true,
                "item size",
            ),
            ("broadcast_nbytes_f64", DataType::F64, 0x1000, &[huge], &[0], true, "item size"),
            (
                "zero_extent_last",
                DataType::U8,
                0x1000,
                &[i64::MAX, 2, 0],
                &[0, 0, 0],
                false,
                "item size",
            ),
            (
                "zero_extent_first",
                DataType::U8,
                0x1000,
                &[0, i64::MAX, 2],
                &[0, 0, 0],
                false,
                "item size",
            ),
            (
                "element_count",
                DataType::U8,
                0x1000,
                &[1 << 32, 1 << 32],
                &[0, 0],
                true,
                "element count",
            ),
        ];
        for (case, dtype, data, shape, strides, readonly, fragment) in cases {
            let d = TensorDesc { dtype, data, readonly, ..desc(shape, Some(strides), "") };
            let err = Tensor::new(d, &unowned()).unwrap_err();
            assert_eq!(err.kind, crate::error::ErrorKind::Overflow, "{case}: {}", err.message);
            assert!(err.message.contains(fragment), "{case}: {}", err.message);
        }
        // The largest float64 broadcast whose size fits: the accessors give exact values.
        let extent = i64::MAX / 8;
        let d =
            TensorDesc { dtype: DataType::F64, readonly: true, ..desc(&[extent], Some(&[0]), "") };
        let broadcast = Tensor::new(d, &unowned()).unwrap();
        assert_eq!(broadcast.element_count(), extent);
        assert_eq!(broadcast.nbytes(), extent * 8);
        assert!(!broadcast.is_contiguous());
        // A zero-size tensor's permutations are all valid (the rule ignores the order).
        let d = TensorDesc { data: 0, ..desc(&[0, 1 << 40, 1 << 20], None, "") };
        let empty = Tensor::new(d, &unowned()).unwrap();
        let permuted = empty.permute(&[1, 2, 0]).unwrap();
        assert_eq!((permuted.element_count(), permuted.nbytes()), (0, 0));
        assert!(permuted.is_contiguous());
    }

    /// Regression: `-step` overflowed for `step = i64::MIN`; Python gives one element.
    #[test]
    fn slicing_with_extreme_steps_follows_python() {
        let t = Tensor::new(desc(&[10], None, ""), &unowned()).unwrap();
        // (start, stop, step, count, data)
        let cases: [(i64, i64, i64, i64, u64); 5] = [
            (5, i64::MIN, i64::MIN, 1, 0x1014),
            (i64::MAX, i64::MIN, i64::MIN, 1, 0x1024),
            (i64::MIN, i64::MAX, i64::MIN, 0, 0x1000),
            (0, i64::MAX, i64::MAX, 1, 0x1000),
            (-1, -11, i64::MIN + 1, 1, 0x1024),
        ];
        for (start, stop, step, count, data) in cases {
            let s = t.slice(0, start, stop, step).unwrap();
            assert_eq!(s.shape(), &[count], "{start}:{stop}:{step}");
            assert_eq!(s.strides(), &[4], "{start}:{stop}:{step}");
            assert_eq!(s.data(), data, "{start}:{stop}:{step}");
            assert_eq!(s.nbytes(), 4 * count);
        }
    }

    #[test]
    fn zero_size_tensors_may_have_null_data() {
        let d = TensorDesc { data: 0, ..desc(&[0, 3], None, "") };
        let t = Tensor::new(d, &unowned()).unwrap();
        assert_eq!(t.element_count(), 0);
        assert!(t.is_contiguous());
    }

    #[test]
    fn row_alignment_pads_the_pitch_of_the_w_row() {
        let nhwc = Layout::parse("NHWC").unwrap();
        let (strides, total) = padded_strides(&[2, 3, 5, 3], &nhwc, 1, 64).unwrap();
        assert_eq!(*strides, [192, 64, 3, 1]);
        assert_eq!(total, 384);
        let nchw = Layout::parse("NCHW").unwrap();
        let (strides, _) = padded_strides(&[1, 3, 2, 5], &nchw, 4, 32).unwrap();
        assert_eq!(*strides, [192, 64, 32, 4]);
        let (strides, total) = padded_strides(&[7], &Layout::NONE, 4, 256).unwrap();
        assert_eq!((&*strides, total), (&[4][..], 28));
        let err = padded_strides(&[7], &Layout::NONE, 4, 48).unwrap_err();
        assert!(err.message.contains("row_alignment = 48"));
    }
}
