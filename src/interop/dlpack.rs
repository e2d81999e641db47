//! DLPack in safe Rust terms: a `DLTensor`'s fields to a `TensorDesc` (strides in elements →
//! bytes, `byte_offset` applied), and a `Tensor` back to element strides.

use crate::device::{Device, TbDevice};
use crate::dims::Dims;
use crate::dtype::{DataType, TbDataType};
use crate::error::{Error, Result, checked_mul};
use crate::layout::Layout;
use crate::tensor::{Tensor, TensorDesc};

/// The DLPack major version this library implements; a larger major version is refused.
pub const TB_DLPACK_MAJOR_VERSION: u32 = 1;
/// The DLPack minor version this library writes into the versioned tensors it exports.
pub const TB_DLPACK_MINOR_VERSION: u32 = 1;

/// `flags` bit: the tensor is read-only (DLPack's `DLPACK_FLAG_BITMASK_READ_ONLY`).
pub const TB_DLPACK_FLAG_READ_ONLY: u64 = 1 << 0;
/// `flags` bit: the producer made a copy, which the consumer owns alone.
pub const TB_DLPACK_FLAG_IS_COPIED: u64 = 1 << 1;
/// `flags` bit: sub-byte elements (float6, float4) are padded, one to a byte — the only form
/// tensorbridge holds: set on its versioned exports of such tensors, required on imports.
pub const TB_DLPACK_FLAG_IS_SUBBYTE_TYPE_PADDED: u64 = 1 << 2;

/// Checks a versioned managed tensor's version: a newer major version is refused
/// (`TB_ERROR_NOT_SUPPORTED`), and 0.x has no versioned struct at all.
pub(crate) fn check_import_version(major: u32, minor: u32) -> Result<()> {
    if major > TB_DLPACK_MAJOR_VERSION {
        return Err(Error::not_supported(format!(
            "DLPack version {major}.{minor} is newer than the supported major version \
             {TB_DLPACK_MAJOR_VERSION}"
        )));
    }
    if major == 0 {
        return Err(Error::invalid_argument(
            "DLPack version 0.x has no versioned managed tensor; use tb_tensor_from_dlpack",
        ));
    }
    Ok(())
}

/// What an import's flags say: read-only, and sub-byte elements padded (a legacy tensor and a
/// bare `DLTensor` have no flags: writable, and packed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ImportFlags {
    /// `TB_DLPACK_FLAG_READ_ONLY`.
    pub readonly: bool,
    /// `TB_DLPACK_FLAG_IS_SUBBYTE_TYPE_PADDED`.
    pub padded: bool,
}

impl ImportFlags {
    /// The flags of a versioned tensor.
    pub(crate) fn of(flags: u64) -> ImportFlags {
        ImportFlags {
            readonly: flags & TB_DLPACK_FLAG_READ_ONLY != 0,
            padded: flags & TB_DLPACK_FLAG_IS_SUBBYTE_TYPE_PADDED != 0,
        }
    }
}

/// Refuses packed sub-byte elements (two float4 to a byte): tensorbridge addresses elements by
/// bytes, so it holds float6/float4 padded only.
pub(crate) fn check_sub_byte(dtype: TbDataType, padded: bool) -> Result<()> {
    match DataType::from_raw(dtype) {
        Ok(known) if known.is_sub_byte() && !padded => Err(Error::not_supported(format!(
            "dtype {known} arrives packed (DLPack's default for sub-byte types, and the only \
             form a legacy or bare DLTensor can describe); tensorbridge holds sub-byte elements \
             padded, one per byte: export them with DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED"
        ))),
        _ => Ok(()),
    }
}

/// The flags of a versioned export of `tensor`: read-only when the tensor is, plus the flags the
/// caller asks for, of which only `TB_DLPACK_FLAG_IS_COPIED` may be (the caller made a copy that
/// the consumer will own alone).
pub(crate) fn export_flags(tensor: &Tensor, requested: u64) -> Result<u64> {
    if requested & !TB_DLPACK_FLAG_IS_COPIED != 0 {
        return Err(Error::invalid_argument(format!(
            "flags = {requested:#x}: only TB_DLPACK_FLAG_IS_COPIED may be requested; read-only \
             follows the tensor"
        )));
    }
    let readonly = if tensor.is_readonly() { TB_DLPACK_FLAG_READ_ONLY } else { 0 };
    let padded =
        if tensor.dtype().is_sub_byte() { TB_DLPACK_FLAG_IS_SUBBYTE_TYPE_PADDED } else { 0 };
    Ok(requested | readonly | padded)
}

/// The fields of a `DLTensor`, copied out of the C struct.
#[derive(Clone, Debug)]
pub(crate) struct DlTensorFields {
    /// `data`.
    pub data: u64,
    /// `device`.
    pub device: TbDevice,
    /// `dtype`, as the producer wrote it (validated by `into_desc`).
    pub dtype: TbDataType,
    /// `shape[0..ndim)`.
    pub shape: Dims,
    /// `strides[0..ndim)` in elements, or `None` for compact row-major.
    pub strides: Option<Dims>,
    /// `byte_offset`.
    pub byte_offset: u64,
    /// From the versioned flags' read-only bit (legacy tensors are writable).
    pub readonly: bool,
}

impl DlTensorFields {
    /// The tensor these fields describe (their shape and strides move into it).
    pub(crate) fn into_desc(self, layout: Layout) -> Result<TensorDesc> {
        let device = Device::from_raw(self.device)?;
        let dtype = DataType::from_raw(self.dtype)?;
        let item_size = dtype.item_size();
        let offset = i64::try_from(self.byte_offset).map_err(|_| {
            Error::overflow(format!("byte_offset {} does not fit int64", self.byte_offset))
        })?;
        let data = self.data.checked_add(offset as u64).ok_or_else(|| {
            Error::overflow(format!(
                "data {:#x} + byte_offset {} overflows the address space",
                self.data, self.byte_offset
            ))
        })?;
        let mut strides = self.strides;
        if let Some(strides) = &mut strides {
            // Element strides become byte strides in place.
            for (dim, stride) in strides.iter_mut().enumerate() {
                *stride = checked_mul(*stride, item_size, format_args!("strides[{dim}] in bytes"))?;
            }
        }
        let data = if self.shape.contains(&0) && self.data == 0 { 0 } else { data };
        Ok(TensorDesc {
            data,
            device,
            dtype,
            shape: self.shape,
            strides,
            layout,
            readonly: self.readonly,
        })
    }

    /// Describes `tensor` for DLPack: `byte_offset` 0 and strides always present, in elements.
    /// A byte stride that is not a multiple of the item size cannot be expressed and is refused.
    pub(crate) fn describe(tensor: &Tensor) -> Result<DlTensorFields> {
        let item_size = tensor.dtype().item_size();
        let strides = tensor
            .strides()
            .iter()
            .zip(tensor.shape())
            .enumerate()
            .map(|(dim, (&stride, &extent))| {
                if stride % item_size == 0 {
                    Ok(stride / item_size)
                } else if extent <= 1 {
                    Ok(0)
                } else {
                    Err(Error::not_supported(format!(
                        "strides[{dim}] = {stride} bytes is not a multiple of the item size \
                         {item_size} of {}; DLPack strides count elements",
                        tensor.dtype()
                    )))
                }
            })
            .collect::<Result<Dims>>()?;
        Ok(DlTensorFields {
            data: tensor.data(),
            device: tensor.device().to_raw(),
            dtype: tensor.dtype().to_raw(),
            shape: tensor.shape().into(),
            strides: Some(strides),
            byte_offset: 0,
            readonly: tensor.is_readonly(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Storage;

    fn fields() -> DlTensorFields {
        DlTensorFields {
            data: 0x10000,
            device: Device::CPU.to_raw(),
            dtype: DataType::F32.to_raw(),
            shape: [3, 4].into(),
            strides: Some([1, 3].into()),
            byte_offset: 16,
            readonly: true,
        }
    }

    #[test]
    fn element_strides_and_byte_offset_are_applied() {
        let desc = fields().into_desc(Layout::NONE).unwrap();
        assert_eq!(desc.data, 0x10010);
        assert_eq!(desc.strides.as_deref(), Some(&[4, 12][..]));
        let t = Tensor::new(desc, &Storage::with_release(None)).unwrap();
        let back = DlTensorFields::describe(&t).unwrap();
        assert_eq!(back.strides.as_deref(), Some(&[1, 3][..]));
        assert_eq!(back.data, 0x10010);
        assert!(back.readonly);
    }

    #[test]
    fn byte_strides_that_split_an_element_cannot_be_exported() {
        let desc = TensorDesc {
            data: 0x10000,
            device: Device::CPU,
            dtype: DataType::C64,
            shape: [2].into(),
            strides: Some([12].into()),
            layout: Layout::NONE,
            readonly: false,
        };
        let t = Tensor::new(desc, &Storage::with_release(None)).unwrap();
        let err = DlTensorFields::describe(&t).unwrap_err();
        assert!(err.message.contains("strides[0] = 12 bytes is not a multiple"), "{}", err.message);
    }

    #[test]
    fn stride_overflow_is_reported() {
        let f = DlTensorFields { strides: Some([i64::MAX / 2, 1].into()), ..fields() };
        assert_eq!(f.into_desc(Layout::NONE).unwrap_err().kind, crate::error::ErrorKind::Overflow);
    }
}
