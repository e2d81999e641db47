//! (c) `tb_tensor_from_array_interface` and `tb_tensor_from_cuda_array_interface` with every
//! field of `TbArrayInterface` randomised. The data pointer is NULL, into a buffer this target
//! owns (at any offset, so often misaligned), or an arbitrary address: imports read no element,
//! so any address is safe to describe. Without a GPU the CUDA import must fail cleanly.

use crate::abi::*;
use crate::input::Input;
use crate::{Buffer, CallCounter, LiveBaseline, layout_arg, ptr_or_null};
use std::ffi::c_void;

const TYPESTRS: &[&[u8]] = &[
    b"|u1", b"|i1", b"|b1", b"<i2", b"<u2", b"<i4", b"<u4", b"<i8", b"<u8", b"<f2", b"<f4",
    b"<f8", b"<c8", b"<c16", b"<V2", b">f4", b"|O", b"<U4", b"=f4", b"<M8",
];

fn descriptor(input: &mut Input<'_>, buffer: &mut Buffer) -> TbArrayInterface {
    let mut d = TbArrayInterface {
        version: 3,
        data: std::ptr::null_mut(),
        readonly: false,
        typestr: [0; 16],
        rank: 0,
        shape: [0; TB_MAX_RANK],
        strides: [0; TB_MAX_RANK],
        has_strides: false,
        stream: 0,
        has_stream: false,
        has_mask: false,
    };
    d.version = match input.below(4) {
        0 => 2,
        1 => 3,
        2 => i32::from(input.u8() as i8),
        _ => input.u32() as i32,
    };
    d.data = match input.below(4) {
        0 => std::ptr::null_mut(),
        1 | 2 => buffer.base().wrapping_add(input.below(64)).cast(),
        _ => input.u64() as usize as *mut c_void,
    };
    d.readonly = input.bool();
    if input.below(4) == 0 {
        // Raw bytes, possibly without a terminating NUL.
        for b in d.typestr.iter_mut() {
            *b = input.u8();
        }
    } else {
        let t = input.pick(TYPESTRS);
        d.typestr[..t.len()].copy_from_slice(t);
    }
    d.rank = match input.below(8) {
        0 => input.u32() as i32,
        1 => i32::from(input.u8() as i8),
        _ => input.below(5) as i32,
    };
    let small = input.bool();
    for i in 0..TB_MAX_RANK {
        d.shape[i] = if small { input.below(5) as i64 } else { input.edgy_i64() };
        d.strides[i] = if small { (input.u8() as i8 as i64) * 4 } else { input.edgy_i64() };
    }
    d.has_strides = input.bool();
    d.has_stream = input.bool();
    d.stream = if input.bool() { input.below(3) as u64 } else { input.u64() };
    d.has_mask = input.below(8) == 0;
    d
}

pub fn run(data: &[u8]) {
    let _live = LiveBaseline::take();
    let mut input = Input::new(data);
    let mut buffer = Buffer::new(4096);
    let desc = descriptor(&mut input, &mut buffer);
    let layout = layout_arg(&mut input, desc.rank.clamp(0, 15) as usize);
    let cuda = input.bool();
    if crate::debug() {
        eprintln!("{desc:?}\nlayout {layout:?}, CUDA import: {cuda}");
    }

    let counter = CallCounter::default();
    let mut out: *mut TbTensor = 1usize as *mut TbTensor;
    // SAFETY: valid descriptor and out pointer; the counter outlives the tensor.
    let status = unsafe {
        if cuda {
            tb_tensor_from_cuda_array_interface(
                &desc,
                ptr_or_null(&layout),
                CallCounter::callback(),
                counter.context(),
                &mut out,
            )
        } else {
            tb_tensor_from_array_interface(
                &desc,
                ptr_or_null(&layout),
                CallCounter::callback(),
                counter.context(),
                &mut out,
            )
        }
    };
    no_internal(status, if cuda { "CUDA array interface import" } else { "array interface import" });
    if status != TB_SUCCESS {
        assert!(out.is_null(), "*out must be NULL on failure");
        assert_eq!(counter.calls.get(), 0, "keep_alive ran for a refused import");
        return;
    }
    if cuda {
        // Without a GPU only a zero-size array with NULL data can be described as CUDA memory.
        assert!(desc.data.is_null(), "CUDA import of {:p} succeeded without a GPU", desc.data);
    }
    assert!(desc.version >= 2, "version {} accepted", desc.version);
    assert!(!desc.has_mask, "a masked array was accepted");
    let info = info(out);
    assert!((0..=TB_MAX_RANK as i32).contains(&desc.rank));
    assert_eq!(info.rank, desc.rank);
    let rank = desc.rank as usize;
    assert_eq!(info.shape[..rank], desc.shape[..rank]);
    if desc.has_strides && info.element_count > 0 {
        for i in (0..rank).filter(|&i| desc.shape[i] > 1) {
            assert_eq!(info.strides[i], desc.strides[i], "stride {i}");
        }
    }
    assert!(desc.shape[..rank].iter().all(|&e| e >= 0));
    assert_eq!(info.readonly, desc.readonly);
    if !cuda {
        assert_eq!(info.data, desc.data);
        // Export and re-import: the same description comes back.
        // SAFETY: all-zero is a valid TbArrayInterface.
        let mut exported: TbArrayInterface = unsafe { std::mem::zeroed() };
        // SAFETY: live handle, valid out pointer.
        let s = no_internal(unsafe { tb_tensor_to_array_interface(out, &mut exported) }, "export");
        assert_eq!(s, TB_SUCCESS, "export of an imported host tensor: {}", last_error());
        assert_eq!(exported.rank, desc.rank);
        assert_eq!(exported.shape[..rank], desc.shape[..rank]);
        assert_eq!(exported.data, desc.data);
        let mut again: *mut TbTensor = std::ptr::null_mut();
        // SAFETY: as above; no keep-alive.
        let s = no_internal(
            unsafe { tb_tensor_from_array_interface(&exported, std::ptr::null(), None, std::ptr::null_mut(), &mut again) },
            "re-import of an export",
        );
        if s == TB_ERROR_OVERFLOW && info.element_count == 0 && crate::KNOWN_OPEN_ZERO_SIZE_OVERFLOW {
            // Open defect, fuzz/regressions/array_interface/zero-size-export-reimport.open.
            release(out);
            assert_eq!(counter.calls.get(), 1);
            return;
        }
        assert_eq!(s, TB_SUCCESS, "re-import of an export: {}", last_error());
        let info2 = crate::abi::info(again);
        assert_eq!(info2.shape, info.shape);
        if info.element_count > 0 {
            for i in (0..rank).filter(|&i| info.shape[i] > 1) {
                assert_eq!(info2.strides[i], info.strides[i], "stride {i} after a round trip");
            }
        }
        assert_eq!(info2.dtype, info.dtype);
        release(again);
    }
    // A view keeps the memory alive after the import's handle goes.
    let mut view: *mut TbTensor = std::ptr::null_mut();
    if rank > 0 {
        // SAFETY: live handle.
        let s = unsafe { tb_tensor_slice(out, 0, 0, i64::MAX, 1, &mut view) };
        assert_eq!(no_internal(s, "slice of an import"), TB_SUCCESS, "{}", last_error());
    }
    release(out);
    if !view.is_null() {
        assert_eq!(counter.calls.get(), 0, "keep_alive ran while a view is alive");
        release(view);
    }
    assert_eq!(counter.calls.get(), 1, "keep_alive must run exactly once");
    assert_eq!(counter.last_data.get(), desc.data as usize);
}
