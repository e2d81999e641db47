//! Layout functions of the C ABI.

use super::{boundary, read_required_str, read_struct, require_out, write_out};
use crate::ffi::status::TbStatus;
use crate::layout::{Layout, TB_MAX_RANK, TbLayout};
use std::ffi::c_char;

/// Parses a layout string such as `"NHWC"` into `*out`: ASCII letters, at most `TB_MAX_RANK`,
/// none repeated. `""` gives the empty layout. NULL `text` is an error.
///
/// \param[in] text  NUL-terminated labels such as `"NHWC"`, or `""`; not NULL.
/// \param[out] out  receives the layout, NUL-padded; not NULL; unchanged on failure.
/// \retval TB_SUCCESS                 `*out` written.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `text` or `out`; text that is not UTF-8, has more than
///                                    `TB_MAX_RANK` labels, or a label that is not an ASCII letter
///                                    or is repeated.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_layout_parse(text: *const c_char, out: *mut TbLayout) -> TbStatus {
    boundary("tb_layout_parse", || {
        require_out(out, "out")?;
        let text = read_required_str(text, "text")?;
        write_out(out, Layout::parse(text)?.to_raw(), "out")
    })
}

/// Stores the number of labels of `*layout` (0 for the empty layout) in `*rank`.
///
/// \param[in] layout  a layout, as `tb_layout_parse` makes it; not NULL; validated again.
/// \param[out] rank   receives the number of labels, 0 to `TB_MAX_RANK`; not NULL; unchanged on
///                    failure.
/// \retval TB_SUCCESS                 `*rank` written.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `layout` or `rank`; a `*layout` that is not
///                                    NUL-terminated or has invalid labels.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_layout_rank(layout: *const TbLayout, rank: *mut i32) -> TbStatus {
    boundary("tb_layout_rank", || {
        let layout = read_layout(layout)?;
        write_out(rank, layout.rank() as i32, "rank")
    })
}

/// Stores in `*index` the dimension that carries `label` in `*layout` (`'C'` in `"NHWC"` → 3),
/// or -1 when the layout has no such label.
///
/// \param[in] layout  a layout, as `tb_layout_parse` makes it; not NULL; validated again.
/// \param[in] label   the label to look for (case-sensitive).
/// \param[out] index  receives the dimension index, or -1; not NULL; unchanged on failure.
/// \retval TB_SUCCESS                 `*index` written.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `layout` or `index`; a `*layout` that is not
///                                    NUL-terminated or has invalid labels.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_layout_find(
    layout: *const TbLayout,
    label: c_char,
    index: *mut i32,
) -> TbStatus {
    boundary("tb_layout_find", || {
        let layout = read_layout(layout)?;
        let found = layout.find(label as u8).map_or(-1, |i| i as i32);
        write_out(index, found, "index")
    })
}

/// Stores in `axes[0..rank)` the permutation that views a tensor in layout `*from` as layout
/// `*to`: dimension `i` of the view is dimension `axes[i]` of the original (`"NHWC"` → `"NCHW"`
/// gives 0, 3, 1, 2), as `tb_tensor_permute` applies it.
///
/// \param[in] from   the tensor's layout.
/// \param[in] to     the wanted layout: the same labels in another order.
/// \param[out] axes  at least `TB_MAX_RANK` entries; entries past the rank are set to -1.
/// \retval TB_SUCCESS                 `axes` written.
/// \retval TB_ERROR_INVALID_ARGUMENT  a NULL pointer, or layouts that are not permutations of
///                                    each other (an invalid `*from` or `*to`, or an empty
///                                    `*from`, included).
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_layout_permutation(
    from: *const TbLayout,
    to: *const TbLayout,
    axes: *mut i32,
) -> TbStatus {
    boundary("tb_layout_permutation", || {
        let (from, to) = (read_layout(from)?, read_layout(to)?);
        let order = from.permutation_to(&to)?;
        require_out(axes, "axes")?;
        let mut filled = [-1i32; TB_MAX_RANK];
        for (slot, axis) in filled.iter_mut().zip(order) {
            *slot = axis as i32;
        }
        // SAFETY: non-null; the contract says axes holds TB_MAX_RANK entries.
        unsafe { std::ptr::copy_nonoverlapping(filled.as_ptr(), axes, TB_MAX_RANK) };
        Ok(())
    })
}

/// Reads and re-validates a layout passed by pointer (its bytes come from the caller).
fn read_layout(layout: *const TbLayout) -> crate::error::Result<Layout> {
    Layout::from_raw(read_struct(layout, "layout")?)
}
