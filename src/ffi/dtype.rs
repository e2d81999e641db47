//! Data-type functions of the C ABI.

use super::{boundary, read_required_str, require_out, write_out};
use crate::dtype::{DataType, TbDataType};
use crate::error::Error;
use crate::ffi::status::TbStatus;
use std::ffi::c_char;

/// Parses a NumPy array-interface typestr (`"|u1"`, `"<f4"`, `"|b1"`, `"<c8"`, `"<f2"`, `"<V2"`
/// for bfloat16) into `*out`. Malformed typestrs fail with `TB_ERROR_INVALID_ARGUMENT`;
/// well-formed ones that no supported type matches (big-endian `">f4"`, object, string and
/// datetime kinds, other sizes) with `TB_ERROR_NOT_SUPPORTED`.
///
/// \param[in] typestr  a NUL-terminated typestr; not NULL.
/// \param[out] out     receives the type; not NULL; unchanged on failure.
/// \retval TB_SUCCESS                 `*out` written.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `typestr` or `out`; a malformed typestr: not UTF-8,
///                                    empty, an unknown byte-order character, no kind character,
///                                    a letter that is not a NumPy kind (`"<z4"`), or a size that
///                                    is not a number (of at most 32 bits).
/// \retval TB_ERROR_NOT_SUPPORTED     big-endian data; a kind with no tensor meaning (objects,
///                                    strings, datetimes); a size no supported type has, however
///                                    large.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_dtype_from_typestr(typestr: *const c_char, out: *mut TbDataType) -> TbStatus {
    boundary("tb_dtype_from_typestr", || {
        require_out(out, "out")?;
        let text = read_required_str(typestr, "typestr")?;
        write_out(out, DataType::from_typestr(text)?.to_raw(), "out")
    })
}

/// Stores in `*out` the little-endian NumPy typestr of `dtype` (`"<f4"`) as a static string
/// (do not free). Unsupported dtypes (vector lanes, unknown codes) and the float8, float6 and
/// float4 types (`float4_e2m1fn_x2` too), which have no typestr, fail with
/// `TB_ERROR_NOT_SUPPORTED`.
///
/// \param[in] dtype  the element type.
/// \param[out] out   receives a static NUL-terminated string; not NULL; unchanged on failure.
/// \retval TB_SUCCESS                 `*out` written.
/// \retval TB_ERROR_INVALID_ARGUMENT  `out` is NULL.
/// \retval TB_ERROR_NOT_SUPPORTED     `dtype` is not a supported type (other lanes, unknown code or
///                                    bits), or a float8/6/4 type (no typestr).
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_dtype_to_typestr(dtype: TbDataType, out: *mut *const c_char) -> TbStatus {
    boundary("tb_dtype_to_typestr", || {
        require_out(out, "out")?;
        let text = DataType::from_raw(dtype)?.c_typestr()?;
        write_out(out, text.as_ptr(), "out")
    })
}

/// Looks up a dtype by canonical name (`"uint8"`, `"float16"`, `"bfloat16"`, `"complex64"`,
/// `"bool"` …) into `*out`.
///
/// \param[in] name  a NUL-terminated canonical name; not NULL.
/// \param[out] out  receives the type; not NULL; unchanged on failure.
/// \retval TB_SUCCESS                 `*out` written.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `name` or `out`; a name that is not UTF-8 or names no
///                                    supported type.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_dtype_from_name(name: *const c_char, out: *mut TbDataType) -> TbStatus {
    boundary("tb_dtype_from_name", || {
        require_out(out, "out")?;
        let text = read_required_str(name, "name")?;
        write_out(out, DataType::from_name(text)?.to_raw(), "out")
    })
}

/// Stores in `*out` the canonical name of `dtype` (`"float32"`) as a static string (do not
/// free); `TB_ERROR_NOT_SUPPORTED` when tensorbridge does not support the type.
///
/// \param[in] dtype  the element type.
/// \param[out] out   receives a static NUL-terminated string; not NULL; unchanged on failure.
/// \retval TB_SUCCESS                 `*out` written.
/// \retval TB_ERROR_INVALID_ARGUMENT  `out` is NULL.
/// \retval TB_ERROR_NOT_SUPPORTED     `dtype` is not a supported type (other lanes, unknown code or
///                                    bits).
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_dtype_name(dtype: TbDataType, out: *mut *const c_char) -> TbStatus {
    boundary("tb_dtype_name", || {
        require_out(out, "out")?;
        let name = DataType::from_raw(dtype)?.c_name();
        write_out(out, name.as_ptr(), "out")
    })
}

/// Stores the size of one element of `dtype` in bytes in `*out` (a bool is one byte);
/// `TB_ERROR_NOT_SUPPORTED` for unsupported types.
///
/// \param[in] dtype  the element type.
/// \param[out] out   receives the size in bytes; not NULL; unchanged on failure.
/// \retval TB_SUCCESS                 `*out` written.
/// \retval TB_ERROR_INVALID_ARGUMENT  `out` is NULL.
/// \retval TB_ERROR_NOT_SUPPORTED     `dtype` is not a supported type (other lanes, unknown code or
///                                    bits).
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_dtype_item_size(dtype: TbDataType, out: *mut i64) -> TbStatus {
    boundary("tb_dtype_item_size", || write_out(out, DataType::from_raw(dtype)?.item_size(), "out"))
}

/// The number of element types tensorbridge supports: `tb_dtype_at` takes indices below it.
///
/// \return the number of supported element types (at least 1).
#[unsafe(no_mangle)]
pub extern "C" fn tb_dtype_count() -> i32 {
    DataType::all().count() as i32
}

/// Stores the `index`-th supported element type in `*out`, so a binding can build its dtype
/// table from the library (with `tb_dtype_name` and `tb_dtype_to_typestr`) instead of copying it.
///
/// \param[in] index  0 ≤ index < `tb_dtype_count()`.
/// \param[out] out   receives the type.
/// \retval TB_SUCCESS                 `*out` written.
/// \retval TB_ERROR_INVALID_ARGUMENT  `out` is NULL or `index` is out of range.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_dtype_at(index: i32, out: *mut TbDataType) -> TbStatus {
    boundary("tb_dtype_at", || {
        require_out(out, "out")?;
        let dtype =
            usize::try_from(index).ok().and_then(|i| DataType::all().nth(i)).ok_or_else(|| {
                Error::invalid_argument(format!(
                    "index {index} is out of range 0..{}",
                    DataType::all().count()
                ))
            })?;
        write_out(out, dtype.to_raw(), "out")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn typestr_round_trip_through_the_c_functions() {
        let mut dtype = DataType::U8.to_raw();
        assert_eq!(tb_dtype_from_typestr(c"<f2".as_ptr(), &mut dtype), TbStatus::TB_SUCCESS);
        assert_eq!(dtype, DataType::F16.to_raw());
        let mut text: *const c_char = std::ptr::null();
        assert_eq!(tb_dtype_to_typestr(dtype, &mut text), TbStatus::TB_SUCCESS);
        // SAFETY: the function stored a static C string.
        assert_eq!(unsafe { CStr::from_ptr(text) }, c"<f2");
        assert_eq!(
            tb_dtype_from_typestr(std::ptr::null(), &mut dtype),
            TbStatus::TB_ERROR_INVALID_ARGUMENT
        );
    }
}
