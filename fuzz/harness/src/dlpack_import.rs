//! (d) `tb_tensor_from_dlpack` and `tb_tensor_from_dlpack_versioned` with randomised
//! `DLTensor` fields, flags, versions and byte offsets. The deleter counts its calls: never on a
//! refused import, exactly once after the last release of an accepted one. Accepted tensors are
//! described back (`tb_tensor_info`) and exported again, and the exports' deleters are run.

use crate::abi::*;
use crate::input::Input;
use crate::{Buffer, LiveBaseline, layout_arg, ptr_or_null};
use std::cell::Cell;
use std::ffi::c_void;

thread_local! {
    static DELETER_CALLS: Cell<usize> = const { Cell::new(0) };
}

unsafe extern "C" fn legacy_deleter(_managed: *mut TbDLManagedTensor) {
    DELETER_CALLS.with(|c| c.set(c.get() + 1));
}

unsafe extern "C" fn versioned_deleter(_managed: *mut TbDLManagedTensorVersioned) {
    DELETER_CALLS.with(|c| c.set(c.get() + 1));
}

const DEVICE_TYPES: &[i32] = &[1, 1, 1, 2, 3, 13, 0, 4, 7, 14, -1];
const DTYPES: &[(u8, u8)] = &[
    (0, 8), (0, 16), (0, 32), (0, 64), (1, 8), (1, 16), (1, 32), (1, 64), (2, 16), (2, 32),
    (2, 64), (4, 16), (5, 64), (5, 128), (6, 8), (3, 64), (2, 8), (0, 128), (10, 8), (12, 8),
    (15, 6), (16, 6), (17, 4), (17, 8),
];

fn dl_tensor(input: &mut Input<'_>, buffer: &mut Buffer, shape: &mut [i64; 16], strides: &mut [i64; 16]) -> TbDLTensor {
    let data: *mut c_void = match input.below(4) {
        0 => std::ptr::null_mut(),
        1 | 2 => buffer.base().wrapping_add(input.below(4) * 8).cast(),
        _ => input.u64() as usize as *mut c_void,
    };
    let device = TbDevice {
        device_type: if input.below(8) == 0 { input.u32() as i32 } else { input.pick(DEVICE_TYPES) },
        device_id: if input.below(4) == 0 { input.u32() as i32 } else { 0 },
    };
    let ndim = match input.below(8) {
        0 => input.u32() as i32,
        1 => i32::from(input.u8() as i8),
        _ => input.below(5) as i32,
    };
    let dtype = if input.below(8) == 0 {
        TbDataType { code: input.u8(), bits: input.u8(), lanes: input.u16() }
    } else {
        let (code, bits) = input.pick(DTYPES);
        // float4: padded/packed (lanes 1), PyTorch's float4_e2m1fn_x2 (lanes 2) or a bad vector.
        // The extra byte is read only here, so inputs that pick another dtype decode as before.
        let lanes = if (code, bits) == (17, 4) { [1, 2, 2, 3][input.below(4)] } else { 1 };
        TbDataType { code, bits, lanes }
    };
    let small = input.bool();
    for i in 0..16 {
        shape[i] = if small { input.below(5) as i64 } else { input.edgy_i64() };
        strides[i] = if small { i64::from(input.u8() as i8) } else { input.edgy_i64() };
    }
    let shape_ptr = if input.below(8) == 0 { std::ptr::null_mut() } else { shape.as_mut_ptr() };
    let strides_ptr = if input.bool() { std::ptr::null_mut() } else { strides.as_mut_ptr() };
    let byte_offset = match input.below(4) {
        0 | 1 => 0,
        2 => (input.below(8) * 8) as u64,
        _ => input.edgy_i64() as u64,
    };
    TbDLTensor { data, device, ndim, dtype, shape: shape_ptr, strides: strides_ptr, byte_offset }
}

fn item_size(dtype: TbDataType) -> Option<i64> {
    let mut size = 0;
    // SAFETY: valid out pointer.
    (unsafe { tb_dtype_item_size(dtype, &mut size) } == TB_SUCCESS).then_some(size)
}

const FLOAT4_PAIR: TbDataType = TbDataType { code: 17, bits: 4, lanes: 2 };

/// Whether `dl` is packed float4 (bits 4, lanes 1, no padded flag), which imports as
/// float4_e2m1fn_x2 pairs along the last dimension.
fn packed_float4(dl: &TbDLTensor, padded: bool) -> bool {
    !padded && (dl.dtype.code, dl.dtype.bits, dl.dtype.lanes) == (17, 4, 1)
}

/// A packed float4 import was accepted: every pair must lie in one byte (else nibbles would be
/// misread as pairs): rank ≥ 1, an even last extent, and, for a tensor with elements, a last
/// stride of 1 and even strides elsewhere (dimensions of extent 1 never step).
fn check_pairing_was_legal(shape: &[i64], strides: Option<&[i64]>) {
    let last = shape.len().checked_sub(1).expect("a packed float4 scalar was accepted");
    assert_eq!(shape[last] % 2, 0, "packed float4 with an odd last extent accepted: {shape:?}");
    let (Some(strides), false) = (strides, shape.contains(&0)) else { return };
    for (i, (&extent, &stride)) in shape.iter().zip(strides).enumerate() {
        let legal = extent <= 1 || if i == last { stride == 1 } else { stride % 2 == 0 };
        assert!(legal, "packed float4 accepted with a pair straddling bytes: {shape:?} {strides:?}");
    }
}

/// What an accepted import must look like; `padded`: the versioned flag.
fn check_accepted(tensor: *mut TbTensor, dl: &TbDLTensor, readonly: bool, padded: bool) {
    let info = info(tensor);
    let pairs = packed_float4(dl, padded);
    assert_eq!(info.rank, dl.ndim);
    assert_eq!(info.dtype, if pairs { FLOAT4_PAIR } else { dl.dtype });
    assert_eq!(info.device, dl.device);
    assert_eq!(info.readonly, readonly, "read-only flag");
    let rank = dl.ndim as usize;
    let size = item_size(info.dtype).expect("an accepted dtype has a size");
    if rank > 0 {
        // SAFETY: the harness's shape array has 16 entries.
        let mut shape = unsafe { std::slice::from_raw_parts(dl.shape, rank) }.to_vec();
        // SAFETY: as above.
        let mut strides = (!dl.strides.is_null())
            .then(|| unsafe { std::slice::from_raw_parts(dl.strides, rank) }.to_vec());
        if pairs {
            // Pairs: the last extent halves; the last stride is 1 pair, the others halve.
            check_pairing_was_legal(&shape, strides.as_deref());
            shape[rank - 1] /= 2;
            if let Some(strides) = &mut strides {
                strides.iter_mut().for_each(|stride| *stride /= 2);
                strides[rank - 1] = 1;
            }
        }
        assert_eq!(&info.shape[..rank], &shape[..]);
        if let Some(strides) = strides {
            for i in 0..rank {
                if shape[i] > 1 {
                    assert_eq!(info.strides[i], strides[i] * size, "stride {i} in bytes");
                }
            }
        }
    } else {
        assert!(!pairs, "a packed float4 scalar was accepted");
    }
    if info.element_count > 0 {
        assert_eq!(info.data as usize, (dl.data as usize).wrapping_add(dl.byte_offset as usize));
    }
}

/// Exports `tensor` both ways and runs the exports' deleters (which drop their references).
fn export_and_drop(tensor: *mut TbTensor) {
    let mut legacy: *mut TbDLManagedTensor = std::ptr::null_mut();
    // SAFETY: live handle, valid out pointer.
    if no_internal(unsafe { tb_tensor_to_dlpack(tensor, &mut legacy) }, "legacy export") == TB_SUCCESS {
        // SAFETY: the export is live until its deleter runs, which happens once, here.
        unsafe { ((*legacy).deleter.expect("exports have a deleter"))(legacy) };
    }
    let mut versioned: *mut TbDLManagedTensorVersioned = std::ptr::null_mut();
    // SAFETY: as above.
    let s = no_internal(unsafe { tb_tensor_to_dlpack_versioned(tensor, &mut versioned) }, "export");
    if s == TB_SUCCESS {
        // SAFETY: as above.
        unsafe {
            assert_eq!((*versioned).version.major, 1);
            // The padded flag marks padded float6/float4 only, never PyTorch's packed pair.
            let dtype = (*versioned).dl_tensor.dtype;
            let padded = (*versioned).flags & 4 != 0;
            assert_eq!(padded, dtype.bits < 8 && dtype.lanes == 1, "padded flag on {dtype:?}");
            ((*versioned).deleter.expect("exports have a deleter"))(versioned)
        };
    }
}

/// Whether `dl` has DLPack 1.1's float6 types (e2m3fn / e3m2fn), packed unless a versioned
/// tensor's flags say padded; packed, no byte addresses them, so they must be refused.
fn is_float6(dl: &TbDLTensor) -> bool {
    dl.dtype.lanes == 1 && matches!((dl.dtype.code, dl.dtype.bits), (15, 6) | (16, 6))
}

pub fn run(data: &[u8]) {
    let _live = LiveBaseline::take();
    DELETER_CALLS.with(|c| c.set(0));
    let mut input = Input::new(data);
    let mut buffer = Buffer::new(1024);
    let (mut shape, mut strides) = ([0i64; 16], [0i64; 16]);
    let versioned = input.bool();
    let with_deleter = input.below(4) != 0;
    let dl = dl_tensor(&mut input, &mut buffer, &mut shape, &mut strides);
    let layout = layout_arg(&mut input, dl.ndim.clamp(0, 15) as usize);
    if crate::debug() {
        eprintln!("{dl:?}\nshape {:?}\nstrides {:?}\nlayout {layout:?}", &shape[..8], &strides[..8]);
    }
    let mut out: *mut TbTensor = 1usize as *mut TbTensor;

    if versioned {
        let version = TbDLPackVersion {
            major: if input.below(4) == 0 { input.u32() % 4 } else { 1 },
            minor: if input.bool() { input.u32() } else { 1 },
        };
        let flags = if input.bool() { input.u64() } else { input.u64() & 7 };
        let mut managed = Box::new(TbDLManagedTensorVersioned {
            version,
            manager_ctx: std::ptr::null_mut(),
            deleter: with_deleter.then_some(versioned_deleter as _),
            flags,
            dl_tensor: dl,
        });
        // SAFETY: a valid managed tensor that outlives the import; valid out pointer.
        let status = unsafe { tb_tensor_from_dlpack_versioned(&mut *managed, ptr_or_null(&layout), &mut out) };
        no_internal(status, "versioned import");
        if version.major > 1 {
            assert_eq!(status, TB_ERROR_NOT_SUPPORTED, "major version {} accepted", version.major);
        }
        let padded = flags & 4 != 0;
        if is_float6(&dl) && !padded {
            assert_ne!(status, TB_SUCCESS, "a packed float6 dtype (no padded flag) accepted");
        }
        if dl.dtype == FLOAT4_PAIR && padded {
            assert_ne!(status, TB_SUCCESS, "float4_e2m1fn_x2 accepted with the padded flag");
        }
        finish(status, out, &dl, flags & TB_DLPACK_FLAG_READ_ONLY != 0, padded, with_deleter);
        drop(managed);
    } else {
        let mut managed = Box::new(TbDLManagedTensor {
            dl_tensor: dl,
            manager_ctx: std::ptr::null_mut(),
            deleter: with_deleter.then_some(legacy_deleter as _),
        });
        // SAFETY: as above.
        let status = unsafe { tb_tensor_from_dlpack(&mut *managed, ptr_or_null(&layout), &mut out) };
        no_internal(status, "legacy import");
        if is_float6(&dl) {
            assert_ne!(status, TB_SUCCESS, "float6 accepted from a legacy (packed) tensor");
        }
        finish(status, out, &dl, false, false, with_deleter);
        drop(managed);
    }
}

fn finish(status: Status, out: *mut TbTensor, dl: &TbDLTensor, readonly: bool, padded: bool, with_deleter: bool) {
    let calls = || DELETER_CALLS.with(Cell::get);
    if status != TB_SUCCESS {
        assert!(out.is_null(), "*out must be NULL on failure");
        assert_eq!(calls(), 0, "the deleter ran for a refused import");
        return;
    }
    check_accepted(out, dl, readonly, padded);
    export_and_drop(out);
    let mut view: *mut TbTensor = std::ptr::null_mut();
    if dl.ndim > 0 {
        // SAFETY: live handle.
        let s = unsafe { tb_tensor_slice(out, -1, -1, i64::MIN, -1, &mut view) };
        let zero_size = info(out).element_count == 0;
        // Open defect, fuzz/regressions/dlpack_import/zero-size-reversed-slice.open.
        let known = s == TB_ERROR_OVERFLOW && zero_size && crate::KNOWN_OPEN_ZERO_SIZE_OVERFLOW;
        if !known {
            assert_eq!(no_internal(s, "reversed slice"), TB_SUCCESS, "{}", last_error());
        }
    }
    assert_eq!(calls(), 0, "the deleter ran while the tensor is alive");
    release(out);
    if !view.is_null() {
        assert_eq!(calls(), 0, "the deleter ran while a view is alive");
        release(view);
    }
    assert_eq!(calls(), usize::from(with_deleter), "the deleter must run exactly once");
}
