//! (e) `tb_tensor_wrap` with shapes and strides near the int64 limits, then chains of views
//! (permute, transpose, slice, select, with_layout) on whatever wraps. Invariants: an accepted
//! tensor's byte span fits the address space; every view's elements lie inside its base's span;
//! counts and sizes agree with the shape; extra references and stale handles behave; the
//! cleanup runs exactly once, after the last view goes.

use crate::abi::*;
use crate::input::Input;
use crate::{Buffer, CallCounter, LiveBaseline, layout_arg, ptr_or_null};
use std::ffi::c_void;

const DTYPES: &[(u8, u8)] = &[(1, 8), (0, 16), (2, 32), (2, 64), (5, 64), (5, 128), (4, 16), (6, 8)];

/// The half-open byte range `[lo, hi)` the elements of `info` cover, or None when it has none.
fn span(info: &TbTensorInfo, item: i64) -> Option<(i128, i128)> {
    if info.element_count == 0 {
        return None;
    }
    let (mut lo, mut hi) = (info.data as usize as i128, info.data as usize as i128);
    for i in 0..info.rank as usize {
        let reach = i128::from(info.shape[i] - 1) * i128::from(info.strides[i]);
        if reach < 0 { lo += reach } else { hi += reach }
    }
    Some((lo, hi + i128::from(item)))
}

fn check_consistent(info: &TbTensorInfo, item: i64) {
    let rank = info.rank as usize;
    assert!(rank <= TB_MAX_RANK);
    assert!(info.shape[..rank].iter().all(|&e| e >= 0), "negative extent {:?}", &info.shape[..rank]);
    let count = if info.shape[..rank].contains(&0) {
        Some(0)
    } else {
        info.shape[..rank].iter().try_fold(1i64, |a, &e| a.checked_mul(e))
    };
    assert_eq!(count, Some(info.element_count), "element count of {:?}", &info.shape[..rank]);
    assert_eq!(
        info.element_count.checked_mul(item),
        Some(info.nbytes),
        "nbytes of shape {:?}, strides {:?}, item size {item}, readonly {}",
        &info.shape[..rank],
        &info.strides[..rank],
        info.readonly
    );
    if let Some((lo, hi)) = span(info, item) {
        assert!(lo >= 0 && hi <= 1i128 << 64, "elements outside the address space: [{lo}, {hi})");
    }
    if !info.readonly && info.element_count > 0 {
        for i in 0..rank {
            assert!(info.strides[i] != 0 || info.shape[i] <= 1, "writable tensor with a zero stride");
        }
    }
}

pub fn run(data: &[u8]) {
    let _live = LiveBaseline::take();
    let mut input = Input::new(data);
    let mut buffer = Buffer::new(512);
    let (code, bits) = input.pick(DTYPES);
    let dtype = if input.below(16) == 0 {
        TbDataType { code: input.u8(), bits: input.u8(), lanes: input.u16() }
    } else {
        TbDataType { code, bits, lanes: 1 }
    };
    let rank = match input.below(8) {
        0 => i32::from(input.u8() as i8),
        _ => input.below(6) as i32,
    };
    let mut shape = [0i64; 16];
    let mut strides = [0i64; 16];
    for i in 0..16 {
        shape[i] = match input.below(3) {
            0 => input.edgy_i64(),
            _ => input.below(6) as i64,
        };
        strides[i] = match input.below(3) {
            0 => input.edgy_i64(),
            _ => i64::from(input.u8() as i8) * i64::from(bits / 8).max(1),
        };
    }
    let data_ptr: *mut c_void = match input.below(4) {
        0 => std::ptr::null_mut(),
        1 => input.u64() as usize as *mut c_void,
        _ => buffer.base().wrapping_add(input.below(4) * 16).cast(),
    };
    let device = if input.below(8) == 0 {
        TbDevice { device_type: input.pick(&[2, 3, 13, 0, 99]), device_id: input.u8() as i8 as i32 }
    } else {
        TbDevice { device_type: TB_DEVICE_CPU, device_id: 0 }
    };
    let with_strides = input.bool();
    let readonly = input.bool();
    let layout = layout_arg(&mut input, rank.clamp(0, 15) as usize);
    let counter = CallCounter::default();
    let mut base: *mut TbTensor = 1usize as *mut TbTensor;
    // SAFETY: arrays of 16 entries (≥ any accepted rank); valid out pointer; the counter outlives
    // the tensor. Wrapping reads no element.
    let status = unsafe {
        tb_tensor_wrap(
            data_ptr,
            device,
            dtype,
            rank,
            shape.as_ptr(),
            if with_strides { strides.as_ptr() } else { std::ptr::null() },
            ptr_or_null(&layout),
            readonly,
            CallCounter::callback(),
            counter.context(),
            &mut base,
        )
    };
    no_internal(status, "wrap");
    if status != TB_SUCCESS {
        assert!(base.is_null(), "*out must be NULL on failure");
        assert_eq!(counter.calls.get(), 0, "cleanup ran for a refused wrap");
        return;
    }
    let mut item = 0;
    // SAFETY: valid out pointer.
    assert_eq!(unsafe { tb_dtype_item_size(dtype, &mut item) }, TB_SUCCESS);
    let base_info = info(base);
    check_consistent(&base_info, item);
    assert_eq!(base_info.rank, rank);
    assert_eq!(base_info.shape[..rank as usize], shape[..rank as usize]);
    if with_strides && base_info.element_count > 0 {
        for i in (0..rank as usize).filter(|&i| shape[i] > 1) {
            assert_eq!(base_info.strides[i], strides[i], "stride {i}");
        }
    }
    let base_span = span(&base_info, item);

    let mut handles = vec![base];
    for _ in 0..input.below(9) {
        let from = handles[input.below(handles.len())];
        let from_info = info(from);
        let r = from_info.rank;
        let mut view: *mut TbTensor = std::ptr::null_mut();
        // SAFETY (every call below): `from` is live, arrays are in bounds, out pointers valid.
        let status = match input.below(7) {
            0 => {
                let text = layout_arg(&mut input, r as usize);
                unsafe { tb_tensor_permute(from, ptr_or_null(&text), &mut view) }
            }
            1 => {
                let mut axes: Vec<i32> = (0..r.max(0)).collect();
                for i in (1..axes.len()).rev() {
                    axes.swap(i, input.below(i + 1));
                }
                if input.below(8) == 0 && !axes.is_empty() {
                    axes[0] = input.u8() as i8 as i32;
                }
                unsafe { tb_tensor_transpose(from, r, axes.as_ptr(), &mut view) }
            }
            2 | 3 => {
                let dim = if input.below(8) == 0 { input.u8() as i8 as i32 } else { input.below(r.max(1) as usize) as i32 };
                let (start, stop) = (input.edgy_i64(), input.edgy_i64());
                let step = match input.below(4) { 0 => input.edgy_i64(), 1 => -1, 2 => 1, _ => input.u8() as i8 as i64 };
                unsafe { tb_tensor_slice(from, dim, start, stop, step, &mut view) }
            }
            4 => {
                let dim = input.below(r.max(1) as usize) as i32;
                unsafe { tb_tensor_select(from, dim, input.edgy_i64(), &mut view) }
            }
            5 => {
                let text = layout_arg(&mut input, r as usize);
                unsafe { tb_tensor_with_layout(from, ptr_or_null(&text), &mut view) }
            }
            _ => {
                // An extra reference, dropped again at once.
                unsafe {
                    assert_eq!(tb_tensor_retain(from), TB_SUCCESS);
                    release(from);
                }
                continue;
            }
        };
        no_internal(status, "view");
        if status != TB_SUCCESS {
            assert!(view.is_null(), "*out must be NULL on failure");
            continue;
        }
        let view_info = info(view);
        check_consistent(&view_info, item);
        assert_eq!(view_info.dtype, base_info.dtype);
        assert_eq!(view_info.readonly, base_info.readonly);
        if let (Some((lo, hi)), Some((blo, bhi))) = (span(&view_info, item), base_span) {
            assert!(blo <= lo && hi <= bhi, "view [{lo}, {hi}) outside its base [{blo}, {bhi})");
        }
        handles.push(view);
    }

    // Release in an order the input picks; the cleanup runs with the last one.
    while !handles.is_empty() {
        assert_eq!(counter.calls.get(), 0, "cleanup ran while handles are alive");
        let h = handles.swap_remove(input.below(handles.len()));
        release(h);
        // SAFETY: a released handle is answered with an error, never a crash.
        assert_eq!(unsafe { tb_tensor_release(h) }, TB_ERROR_INVALID_ARGUMENT, "double release");
    }
    assert_eq!(counter.calls.get(), 1, "cleanup must run exactly once");
    assert_eq!(counter.last_data.get(), data_ptr as usize);
}
