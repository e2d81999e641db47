//! Self-description of the C ABI for bindings that re-declare its structs (Python's ctypes, other
//! FFIs): the size of each struct and the offset and size of each field, as this library was
//! compiled, so a binding can check its declarations when it loads the library instead of
//! trusting a copy.

use super::alloc::TbAllocator;
use super::cai::TbArrayInterface;
use super::dlpack::{TbDLManagedTensor, TbDLManagedTensorVersioned, TbDLPackVersion, TbDLTensor};
use super::exchange::{TbDLPackExchangeAPI, TbDLPackExchangeAPIHeader};
use super::frame::TbFrameFormat;
use super::ipc::TbIpcTensor;
use super::{boundary, read_required_str, read_str, write_out};
use crate::device::TbDevice;
use crate::dtype::TbDataType;
use crate::error::{Error, Result};
use crate::ffi::status::TbStatus;
use crate::ffi::tensor::TbTensorInfo;
use crate::layout::TbLayout;
use std::ffi::c_char;
use std::mem::{offset_of, size_of};

/// One row of the layout table: struct, field (`""` for the struct itself), offset, size.
type Row = (&'static str, &'static str, usize, usize);

macro_rules! rows {
    ($($struct:ident { $($field:ident : $ty:ty),* $(,)? })*) => {
        &[$(
            (stringify!($struct), "", 0, size_of::<$struct>()),
            $((stringify!($struct), stringify!($field), offset_of!($struct, $field),
               size_of::<$ty>()),)*
        )*]
    };
}

/// Every struct of the header with every field.
const LAYOUT: &[Row] = rows! {
    TbDataType { code: u8, bits: u8, lanes: u16 }
    TbDevice { device_type: i32, device_id: i32 }
    TbLayout { labels: [c_char; 16] }
    TbTensorInfo {
        data: *mut u8, device: TbDevice, dtype: TbDataType, rank: i32, shape: [i64; 15],
        strides: [i64; 15], layout: TbLayout, readonly: bool, contiguous: bool,
        element_count: i64, nbytes: i64,
    }
    TbArrayInterface {
        version: i32, data: *mut u8, readonly: bool, typestr: [c_char; 16], rank: i32,
        shape: [i64; 15], strides: [i64; 15], has_strides: bool, stream: u64, has_stream: bool,
        has_mask: bool,
    }
    TbDLTensor {
        data: *mut u8, device: TbDevice, ndim: i32, dtype: TbDataType, shape: *mut i64,
        strides: *mut i64, byte_offset: u64,
    }
    TbDLManagedTensor { dl_tensor: TbDLTensor, manager_ctx: *mut u8, deleter: usize }
    TbDLPackVersion { major: u32, minor: u32 }
    TbAllocator { context: *mut u8, allocate: usize, free: usize }
    TbDLPackExchangeAPIHeader { version: TbDLPackVersion, prev_api: *mut u8 }
    TbDLPackExchangeAPI {
        header: TbDLPackExchangeAPIHeader, managed_tensor_allocator: usize,
        managed_tensor_from_py_object_no_sync: usize, managed_tensor_to_py_object_no_sync: usize,
        dltensor_from_py_object_no_sync: usize, current_work_stream: usize,
    }
    TbDLManagedTensorVersioned {
        version: TbDLPackVersion, manager_ctx: *mut u8, deleter: usize, flags: u64,
        dl_tensor: TbDLTensor,
    }
    TbFrameFormat { pixel_format: i32, standard: i32, range: i32, bgr: bool }
    TbIpcTensor { bytes: [u8; 512] }
};

/// The offset and size of `field` of `struct_name` (offset 0 and the struct's size for `""`).
fn lookup(struct_name: &str, field: &str) -> Result<(usize, usize)> {
    if !LAYOUT.iter().any(|row| row.0 == struct_name) {
        return Err(Error::invalid_argument(format!(
            "struct_name \"{struct_name}\" is not a struct of the C ABI"
        )));
    }
    LAYOUT
        .iter()
        .find(|row| row.0 == struct_name && row.1 == field)
        .map(|row| (row.2, row.3))
        .ok_or_else(|| {
            Error::invalid_argument(format!("struct {struct_name} has no field \"{field}\""))
        })
}

/// Describes the memory layout of one struct of this header as the library was compiled.
///
/// \param[in] struct_name  the struct's name as in the header, such as `"TbTensorInfo"`.
/// \param[in] field        a field name, or NULL / `""` for the struct itself.
/// \param[out] offset      the field's byte offset (0 for the struct itself).
/// \param[out] size        the field's size in bytes, or the struct's `sizeof`.
/// \retval TB_SUCCESS                 both outputs written.
/// \retval TB_ERROR_INVALID_ARGUMENT  NULL `struct_name`, `offset` or `size`, a name that is not
///                                    UTF-8, or an unknown struct or field.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_abi_layout(
    struct_name: *const c_char,
    field: *const c_char,
    offset: *mut usize,
    size: *mut usize,
) -> TbStatus {
    boundary("tb_abi_layout", || {
        let name = read_required_str(struct_name, "struct_name")?;
        let field = read_str(field, "field")?.unwrap_or("");
        let (at, bytes) = lookup(name, field)?;
        write_out(offset, at, "offset")?;
        write_out(size, bytes, "size")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_struct_row_is_followed_by_fields_that_fit_inside_it() {
        let mut current = ("", 0usize);
        for &(name, field, offset, size) in LAYOUT {
            if field.is_empty() {
                current = (name, size);
                continue;
            }
            assert_eq!(name, current.0, "{name}.{field} out of order");
            assert!(offset + size <= current.1, "{name}.{field} exceeds the struct");
        }
    }

    #[test]
    fn lookups_name_what_is_unknown() {
        assert_eq!(lookup("TbDevice", "device_id").unwrap(), (4, 4));
        assert_eq!(lookup("TbTensorInfo", "").unwrap().1, size_of::<TbTensorInfo>());
        assert!(lookup("Stream", "").unwrap_err().message.contains("not a struct"));
        assert!(lookup("TbDevice", "id").unwrap_err().message.contains("no field \"id\""));
    }
}
