//! (b) NumPy typestrs through `tb_dtype_from_typestr`, against a reference table of what the
//! header promises, and back through `tb_dtype_to_typestr`.

use crate::abi::*;
use crate::{LiveBaseline, c_string};

/// (code, bits) of a typestr the header says is supported, or None.
fn reference(text: &[u8]) -> Option<(u8, u8)> {
    let text = std::str::from_utf8(text).ok()?;
    let mut chars = text.chars();
    let order = chars.next()?;
    let kind = chars.next()?;
    if !matches!(order, '<' | '|' | '=') {
        return None;
    }
    // A byte count in decimal (Rust's integer parser; it also takes a leading '+').
    let size: u64 = chars.as_str().parse().ok()?;
    let (code, sizes): (u8, &[u64]) = match kind {
        'b' => (6, &[1]),
        'i' => (0, &[1, 2, 4, 8]),
        'u' => (1, &[1, 2, 4, 8]),
        'f' => (2, &[2, 4, 8]),
        'c' => (5, &[8, 16]),
        'V' => (4, &[2]),
        _ => return None,
    };
    sizes.contains(&size).then_some((code, (size * 8) as u8))
}

pub fn run(data: &[u8]) {
    let _live = LiveBaseline::take();
    let text = c_string(data);
    let body = &text[..text.len() - 1];
    let sentinel = TbDataType { code: 0xEE, bits: 0xEE, lanes: 0xEEEE };
    let mut dtype = sentinel;
    // SAFETY: NUL-terminated string, valid out pointer.
    let status =
        no_internal(unsafe { tb_dtype_from_typestr(text.as_ptr().cast(), &mut dtype) }, "typestr");
    match reference(body) {
        Some((code, bits)) => {
            assert_eq!(status, TB_SUCCESS, "{:?} is supported: {}", String::from_utf8_lossy(body), last_error());
            assert_eq!(dtype, TbDataType { code, bits, lanes: 1 }, "{:?}", String::from_utf8_lossy(body));
            let mut back: *const std::ffi::c_char = std::ptr::null();
            // SAFETY: valid out pointer.
            assert_eq!(unsafe { tb_dtype_to_typestr(dtype, &mut back) }, TB_SUCCESS);
            // SAFETY: the library returns a static NUL-terminated string.
            let back = unsafe { std::ffi::CStr::from_ptr(back) }.to_bytes().to_vec();
            let mut again = sentinel;
            let back_c = c_string(&back);
            // SAFETY: as above.
            assert_eq!(unsafe { tb_dtype_from_typestr(back_c.as_ptr().cast(), &mut again) }, TB_SUCCESS);
            assert_eq!(again, dtype, "round trip through {:?}", String::from_utf8_lossy(&back));
            let mut size = 0;
            // SAFETY: valid out pointer.
            assert_eq!(unsafe { tb_dtype_item_size(dtype, &mut size) }, TB_SUCCESS);
            assert_eq!(size * 8, i64::from(bits));
        }
        None => {
            assert_ne!(
                status,
                TB_SUCCESS,
                "{:?} is not a supported typestr but was accepted as {dtype:?}",
                String::from_utf8_lossy(body)
            );
            assert!(matches!(status, TB_ERROR_INVALID_ARGUMENT | TB_ERROR_NOT_SUPPORTED));
            assert_eq!(dtype, sentinel, "out must be unchanged on failure");
        }
    }
}
