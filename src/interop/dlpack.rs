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
/// `flags` bit: sub-byte elements (float6, float4) are padded, one to a byte. Set on
/// tensorbridge's versioned exports of padded float6/float4 tensors; on imports it selects the
/// padded form (without it DLPack's sub-byte elements are packed). `float4_e2m1fn_x2` (lanes 2)
/// is packed by definition: exported without this flag, and refused with it.
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
        if tensor.dtype().is_padded_sub_byte() { TB_DLPACK_FLAG_IS_SUBBYTE_TYPE_PADDED } else { 0 };
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
    /// The fields in the form tensorbridge holds, given whether the producer marked sub-byte
    /// elements padded (only a versioned tensor can; DLPack's default is packed):
    /// - padded float6/float4 (lanes 1) and anything not sub-byte: unchanged;
    /// - packed float4_e2m1fn (bits 4, lanes 1): viewed as `float4_e2m1fn_x2` pairs along the
    ///   last dimension (see `float4_as_pairs`), or refused where a pair would straddle bytes;
    /// - packed float6: refused (four elements span three bytes; no byte addresses them);
    /// - `float4_e2m1fn_x2` marked padded: refused (a pair fills its byte: "padded" would mean a
    ///   layout DLPack does not define, and guessing could misread memory).
    pub(crate) fn sub_byte_resolved(self, padded: bool) -> Result<DlTensorFields> {
        let Ok(dtype) = DataType::from_raw(self.dtype) else {
            return Ok(self); // into_desc names the unsupported dtype
        };
        if dtype == DataType::F4_E2M1FN_X2 && padded {
            return Err(Error::not_supported(
                "dtype float4_e2m1fn_x2 (code 17, bits 4, lanes 2) arrives with \
                 DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED, but a pair of float4 fills its byte: \
                 export it without the flag (as PyTorch does), or as lanes 1 with the flag for one \
                 float4 per byte",
            ));
        }
        if !dtype.is_padded_sub_byte() || padded {
            return Ok(self);
        }
        if dtype == DataType::F4_E2M1FN {
            return self.float4_as_pairs();
        }
        Err(Error::not_supported(format!(
            "dtype {dtype} arrives packed (DLPack's default for sub-byte types, and the only form \
             a legacy or bare DLTensor can describe); tensorbridge holds float6 padded only, one \
             element per byte: export it with DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED"
        )))
    }

    /// Packed float4 (bits 4, lanes 1: two elements per byte, element `2k` in the low nibble as
    /// DLPack's little bit-endian rule says) viewed as `float4_e2m1fn_x2` pairs: the last extent
    /// halves, its stride becomes 1 pair, every other stride halves. The same bytes, the same
    /// nibbles: element `[..., j]` is lane `j % 2` of pair `[..., j / 2]`. Possible only when
    /// every pair lies in one byte: the last extent is even and its stride is 1 element, and every
    /// other dimension steps by whole bytes (an even stride). A scalar, an odd last extent and
    /// other strides are refused (`TB_ERROR_NOT_SUPPORTED`) with the reason; strides of
    /// dimensions that are never stepped (extent 1, or a tensor with no elements) do not matter.
    fn float4_as_pairs(mut self) -> Result<DlTensorFields> {
        let refuse = |why: String| {
            Error::not_supported(format!(
                "packed float4_e2m1fn (code 17, bits 4, lanes 1, two per byte): {why}; \
                 tensorbridge holds packed float4 as float4_e2m1fn_x2 pairs along the last \
                 dimension (PyTorch's torch.float4_e2m1fn_x2)"
            ))
        };
        let Some(last) = self.shape.len().checked_sub(1) else {
            return Err(refuse("a scalar (rank 0) is half a byte".into()));
        };
        if let Some(dim) = self.shape.iter().position(|&extent| extent < 0) {
            // Refused as for any dtype, naming the producer's extent, not a halved one.
            return Err(Error::invalid_argument(format!(
                "shape[{dim}] = {} is negative; extents must be >= 0",
                self.shape[dim]
            )));
        }
        let extent = self.shape[last];
        if extent % 2 != 0 {
            return Err(refuse(format!(
                "shape[{last}] = {extent} is odd, so rows do not end on a byte boundary"
            )));
        }
        let empty = self.shape.contains(&0);
        let stepped = |dim: usize| !empty && self.shape[dim] > 1;
        if let Some(strides) = &mut self.strides {
            if stepped(last) && strides[last] != 1 {
                return Err(refuse(format!(
                    "strides[{last}] = {} elements: the last dimension must be contiguous \
                     (stride 1) so that each pair shares a byte",
                    strides[last]
                )));
            }
            strides[last] = 1;
            for dim in 0..last {
                if stepped(dim) && strides[dim] % 2 != 0 {
                    return Err(refuse(format!(
                        "strides[{dim}] = {} elements is odd, so that dimension steps by half a \
                         byte",
                        strides[dim]
                    )));
                }
                strides[dim] /= 2;
            }
        }
        self.shape[last] = extent / 2;
        self.dtype = DataType::F4_E2M1FN_X2.to_raw();
        Ok(self)
    }

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

    /// A shape and optional strides, in elements.
    type Geometry<'a> = (&'a [i64], Option<&'a [i64]>);

    fn float4(shape: &[i64], strides: Option<&[i64]>) -> DlTensorFields {
        DlTensorFields {
            dtype: DataType::F4_E2M1FN.to_raw(),
            shape: shape.into(),
            strides: strides.map(Into::into),
            byte_offset: 0,
            ..fields()
        }
    }

    /// Packed float4 (lanes 1, DLPack's default) becomes a float4_e2m1fn_x2 view of the same
    /// bytes: the last extent halves, the other strides halve, data and offset stay.
    #[test]
    fn packed_float4_is_viewed_as_pairs_along_the_last_dimension() {
        let cases: [(Geometry, Geometry); 6] = [
            ((&[3, 8], None), (&[3, 4], None)),
            ((&[3, 8], Some(&[8, 1])), (&[3, 4], Some(&[4, 1]))),
            ((&[2, 3, 4], Some(&[40, 12, 1])), (&[2, 3, 2], Some(&[20, 6, 1]))), // padded rows
            ((&[3, 4], Some(&[-8, 1])), (&[3, 2], Some(&[-4, 1]))),              // reversed rows
            ((&[1, 2], Some(&[7, 1])), (&[1, 1], Some(&[3, 1]))), // extent 1: stride unused
            ((&[0, 6], Some(&[3, 5])), (&[0, 3], Some(&[1, 1]))), // no elements: strides unused
        ];
        for ((shape, strides), (pairs, pair_strides)) in cases {
            let got = float4(shape, strides).sub_byte_resolved(false).unwrap();
            assert_eq!(got.dtype, DataType::F4_E2M1FN_X2.to_raw(), "{shape:?}");
            assert_eq!((&got.shape[..], got.strides.as_deref()), (pairs, pair_strides));
            assert_eq!((got.data, got.byte_offset), (0x10000, 0));
        }
        let desc = float4(&[3, 8], Some(&[8, 1])).sub_byte_resolved(false).unwrap();
        let desc = desc.into_desc(Layout::NONE).unwrap();
        assert_eq!(
            (desc.dtype, desc.strides.as_deref()),
            (DataType::F4_E2M1FN_X2, Some(&[4, 1][..]))
        );
    }

    /// Where a pair would straddle two bytes, packed float4 is refused, saying why.
    #[test]
    fn packed_float4_that_pairs_cannot_describe_is_refused() {
        let cases: [(Geometry, &str); 5] = [
            ((&[], None), "a scalar (rank 0) is half a byte"),
            ((&[3, 3], None), "shape[1] = 3 is odd"),
            ((&[4, 2], Some(&[1, 4])), "strides[1] = 4 elements: the last dimension must be"),
            ((&[4, 2], Some(&[2, -1])), "strides[1] = -1 elements"),
            ((&[3, 4], Some(&[5, 1])), "strides[0] = 5 elements is odd"),
        ];
        for ((shape, strides), fragment) in cases {
            let err = float4(shape, strides).sub_byte_resolved(false).unwrap_err();
            assert_eq!(err.kind, crate::error::ErrorKind::NotSupported);
            assert!(err.message.contains(fragment), "{shape:?}: {}", err.message);
            assert!(err.message.contains("float4_e2m1fn_x2 pairs"), "{}", err.message);
        }
    }

    #[test]
    fn padded_flag_selects_padded_float4_and_refuses_pairs_and_packed_float6() {
        let padded = float4(&[3, 3], None).sub_byte_resolved(true).unwrap();
        assert_eq!((padded.dtype, &padded.shape[..]), (DataType::F4_E2M1FN.to_raw(), &[3, 3][..]));
        let pairs = DlTensorFields { dtype: DataType::F4_E2M1FN_X2.to_raw(), ..float4(&[3], None) };
        assert_eq!(pairs.clone().sub_byte_resolved(false).unwrap().shape[..], [3]);
        let negative = float4(&[2, -4], None).sub_byte_resolved(false).unwrap_err();
        assert_eq!(negative.kind, crate::error::ErrorKind::InvalidArgument);
        assert!(negative.message.contains("shape[1] = -4 is negative"), "{}", negative.message);
        let err = pairs.sub_byte_resolved(true).unwrap_err();
        assert!(err.message.contains("a pair of float4 fills its byte"), "{}", err.message);
        let float6 = TbDataType { code: 16, bits: 6, lanes: 1 };
        let err = DlTensorFields { dtype: float6, ..float4(&[4], None) }
            .sub_byte_resolved(false)
            .unwrap_err();
        assert!(err.message.contains("float6_e3m2fn arrives packed"), "{}", err.message);
        let f32 = fields().sub_byte_resolved(false).unwrap();
        assert_eq!(f32.dtype, DataType::F32.to_raw());
    }

    /// float4_e2m1fn_x2 exports as PyTorch's does: lanes 2, strides in pairs (bytes), no
    /// padded flag; padded float4 carries the flag.
    #[test]
    fn float4_pairs_export_without_the_padded_flag() {
        let desc = TensorDesc {
            data: 0x10000,
            device: Device::CPU,
            dtype: DataType::F4_E2M1FN_X2,
            shape: [4, 3].into(),
            strides: Some([8, 1].into()),
            layout: Layout::NONE,
            readonly: false,
        };
        let t = Tensor::new(desc.clone(), &Storage::with_release(None)).unwrap();
        let back = DlTensorFields::describe(&t).unwrap();
        assert_eq!(back.dtype, TbDataType { code: 17, bits: 4, lanes: 2 });
        assert_eq!(back.strides.as_deref(), Some(&[8, 1][..]));
        assert_eq!(export_flags(&t, 0).unwrap(), 0);
        let padded = TensorDesc { dtype: DataType::F4_E2M1FN, ..desc };
        let t = Tensor::new(padded, &Storage::with_release(None)).unwrap();
        assert_eq!(export_flags(&t, 0).unwrap(), TB_DLPACK_FLAG_IS_SUBBYTE_TYPE_PADDED);
    }

    #[test]
    fn stride_overflow_is_reported() {
        let f = DlTensorFields { strides: Some([i64::MAX / 2, 1].into()), ..fields() };
        assert_eq!(f.into_desc(Layout::NONE).unwrap_err().kind, crate::error::ErrorKind::Overflow);
    }
}
