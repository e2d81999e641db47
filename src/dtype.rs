//! Element types in DLPack's (code, bits, lanes) encoding, and their NumPy typestr spelling.

use crate::error::{Error, Result};
use std::ffi::CStr;

/// DLPack type-code values (`DLDataTypeCode`), used in `TbDataType::code`.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TbDataTypeCode {
    /// Signed two's-complement integer.
    TB_DTYPE_CODE_INT = 0,
    /// Unsigned integer.
    TB_DTYPE_CODE_UINT = 1,
    /// IEEE-754 binary floating point (16, 32, 64 bits).
    TB_DTYPE_CODE_FLOAT = 2,
    /// Opaque handle (DLPack `kDLOpaqueHandle`): never supported as a tensor element.
    #[allow(dead_code)] // a value of the C enum; Rust never makes one
    TB_DTYPE_CODE_OPAQUE_HANDLE = 3,
    /// bfloat16 (16 bits).
    TB_DTYPE_CODE_BFLOAT = 4,
    /// Complex number of two IEEE floats; `bits` counts both parts (64 or 128).
    TB_DTYPE_CODE_COMPLEX = 5,
    /// Boolean stored in one byte (0 or 1).
    TB_DTYPE_CODE_BOOL = 6,
    /// float8, 3 exponent and 4 mantissa bits (DLPack 1.1 `kDLFloat8_e3m4`).
    TB_DTYPE_CODE_FLOAT8_E3M4 = 7,
    /// float8, 4 exponent and 3 mantissa bits, IEEE-like with infinities (`kDLFloat8_e4m3`).
    TB_DTYPE_CODE_FLOAT8_E4M3 = 8,
    /// float8 e4m3, exponent bias 11, finite, NaN only as 0x80 (`kDLFloat8_e4m3b11fnuz`).
    TB_DTYPE_CODE_FLOAT8_E4M3B11FNUZ = 9,
    /// float8 e4m3, finite (no infinities), one NaN per sign (`kDLFloat8_e4m3fn`; PyTorch
    /// `float8_e4m3fn`).
    TB_DTYPE_CODE_FLOAT8_E4M3FN = 10,
    /// float8 e4m3, finite, NaN only as 0x80 (`kDLFloat8_e4m3fnuz`).
    TB_DTYPE_CODE_FLOAT8_E4M3FNUZ = 11,
    /// float8, 5 exponent and 2 mantissa bits, IEEE-like (`kDLFloat8_e5m2`; PyTorch `float8_e5m2`).
    TB_DTYPE_CODE_FLOAT8_E5M2 = 12,
    /// float8 e5m2, finite, NaN only as 0x80 (`kDLFloat8_e5m2fnuz`).
    TB_DTYPE_CODE_FLOAT8_E5M2FNUZ = 13,
    /// float8, 8 exponent bits and no mantissa: a power-of-two scale (`kDLFloat8_e8m0fnu`).
    TB_DTYPE_CODE_FLOAT8_E8M0FNU = 14,
    /// float6 e2m3, finite (`kDLFloat6_e2m3fn`, 6 bits), held padded: one element per byte.
    TB_DTYPE_CODE_FLOAT6_E2M3FN = 15,
    /// float6 e3m2, finite (`kDLFloat6_e3m2fn`, 6 bits), held padded: one element per byte.
    TB_DTYPE_CODE_FLOAT6_E3M2FN = 16,
    /// float4 e2m1, finite (`kDLFloat4_e2m1fn`, 4 bits): with `lanes` 1 held padded, one element
    /// per byte (`float4_e2m1fn`); with `lanes` 2 two values packed in one byte, the first in bits
    /// 0–3 (`float4_e2m1fn_x2`, PyTorch's `torch.float4_e2m1fn_x2`).
    TB_DTYPE_CODE_FLOAT4_E2M1FN = 17,
}

/// An element type as C passes it, ABI-identical to DLPack's `DLDataType`: `code` is a
/// `TbDataTypeCode` value, `bits` the size of one lane in bits, `lanes` the vector width. Any bit
/// pattern can arrive here; tensorbridge supports `lanes == 1` and these combinations: bool8,
/// int8/16/32/64, uint8/16/32/64, float16/32/64, bfloat16, complex64/128, DLPack 1.1's eight
/// float8 formats (codes 7–14, 8 bits), and its sub-byte float6_e2m3fn, float6_e3m2fn (6 bits)
/// and float4_e2m1fn (4 bits, codes 15–17), which tensorbridge holds *padded*: one element per
/// byte, as DLPack's `DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED` describes. One vector type is
/// supported too: `float4_e2m1fn_x2` (code 17, bits 4, **lanes 2**), two float4 values packed in
/// one byte — lane 0 in bits 0–3, lane 1 in bits 4–7, DLPack's little bit-endian order — as
/// PyTorch exchanges `torch.float4_e2m1fn_x2` through DLPack. Its item size is 1 byte: shapes,
/// strides and views count pairs (bytes), exactly as PyTorch's shapes do.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TbDataType {
    /// Type code: a `TbDataTypeCode` value.
    pub code: u8,
    /// Bits per lane (8, 16, 32, 64 or 128).
    pub bits: u8,
    /// Number of lanes: 1, or 2 for `float4_e2m1fn_x2` (code 17, bits 4).
    pub lanes: u16,
}

/// A supported element type: the core's validated form of `TbDataType`. Its fields are private,
/// so every value names a row of the table above; `from_raw` checks a C value, `to_raw` gives it
/// back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct DataType {
    code: TbDataTypeCode,
    bits: u8,
    lanes: u16,
}

/// A row: code, bits, lanes, name, NumPy typestr (None: NumPy and the CUDA Array Interface have
/// none).
type Entry = (TbDataTypeCode, u8, u16, &'static CStr, Option<&'static CStr>);

const SUPPORTED: [Entry; 27] = [
    (TbDataTypeCode::TB_DTYPE_CODE_BOOL, 8, 1, c"bool", Some(c"|b1")),
    (TbDataTypeCode::TB_DTYPE_CODE_INT, 8, 1, c"int8", Some(c"|i1")),
    (TbDataTypeCode::TB_DTYPE_CODE_INT, 16, 1, c"int16", Some(c"<i2")),
    (TbDataTypeCode::TB_DTYPE_CODE_INT, 32, 1, c"int32", Some(c"<i4")),
    (TbDataTypeCode::TB_DTYPE_CODE_INT, 64, 1, c"int64", Some(c"<i8")),
    (TbDataTypeCode::TB_DTYPE_CODE_UINT, 8, 1, c"uint8", Some(c"|u1")),
    (TbDataTypeCode::TB_DTYPE_CODE_UINT, 16, 1, c"uint16", Some(c"<u2")),
    (TbDataTypeCode::TB_DTYPE_CODE_UINT, 32, 1, c"uint32", Some(c"<u4")),
    (TbDataTypeCode::TB_DTYPE_CODE_UINT, 64, 1, c"uint64", Some(c"<u8")),
    (TbDataTypeCode::TB_DTYPE_CODE_FLOAT, 16, 1, c"float16", Some(c"<f2")),
    (TbDataTypeCode::TB_DTYPE_CODE_FLOAT, 32, 1, c"float32", Some(c"<f4")),
    (TbDataTypeCode::TB_DTYPE_CODE_FLOAT, 64, 1, c"float64", Some(c"<f8")),
    (TbDataTypeCode::TB_DTYPE_CODE_BFLOAT, 16, 1, c"bfloat16", Some(c"<V2")),
    (TbDataTypeCode::TB_DTYPE_CODE_COMPLEX, 64, 1, c"complex64", Some(c"<c8")),
    (TbDataTypeCode::TB_DTYPE_CODE_COMPLEX, 128, 1, c"complex128", Some(c"<c16")),
    (TbDataTypeCode::TB_DTYPE_CODE_FLOAT8_E3M4, 8, 1, c"float8_e3m4", None),
    (TbDataTypeCode::TB_DTYPE_CODE_FLOAT8_E4M3, 8, 1, c"float8_e4m3", None),
    (TbDataTypeCode::TB_DTYPE_CODE_FLOAT8_E4M3B11FNUZ, 8, 1, c"float8_e4m3b11fnuz", None),
    (TbDataTypeCode::TB_DTYPE_CODE_FLOAT8_E4M3FN, 8, 1, c"float8_e4m3fn", None),
    (TbDataTypeCode::TB_DTYPE_CODE_FLOAT8_E4M3FNUZ, 8, 1, c"float8_e4m3fnuz", None),
    (TbDataTypeCode::TB_DTYPE_CODE_FLOAT8_E5M2, 8, 1, c"float8_e5m2", None),
    (TbDataTypeCode::TB_DTYPE_CODE_FLOAT8_E5M2FNUZ, 8, 1, c"float8_e5m2fnuz", None),
    (TbDataTypeCode::TB_DTYPE_CODE_FLOAT8_E8M0FNU, 8, 1, c"float8_e8m0fnu", None),
    (TbDataTypeCode::TB_DTYPE_CODE_FLOAT6_E2M3FN, 6, 1, c"float6_e2m3fn", None),
    (TbDataTypeCode::TB_DTYPE_CODE_FLOAT6_E3M2FN, 6, 1, c"float6_e3m2fn", None),
    (TbDataTypeCode::TB_DTYPE_CODE_FLOAT4_E2M1FN, 4, 1, c"float4_e2m1fn", None),
    (TbDataTypeCode::TB_DTYPE_CODE_FLOAT4_E2M1FN, 4, 2, c"float4_e2m1fn_x2", None),
];

impl std::fmt::Display for TbDataType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let known = SUPPORTED
            .iter()
            .find(|e| e.0 as u8 == self.code && e.1 == self.bits && e.2 == self.lanes);
        match known {
            Some(entry) => f.write_str(entry.3.to_str().unwrap_or_default()),
            None => write!(f, "(code={}, bits={}, lanes={})", self.code, self.bits, self.lanes),
        }
    }
}

impl std::fmt::Display for DataType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl DataType {
    /// A scalar row of the table (lanes 1); only called with rows that exist.
    const fn new(code: TbDataTypeCode, bits: u8) -> Self {
        DataType { code, bits, lanes: 1 }
    }

    /// The type of a row.
    const fn of(entry: &Entry) -> Self {
        DataType { code: entry.0, bits: entry.1, lanes: entry.2 }
    }

    /// `uint8`.
    pub(crate) const U8: Self = Self::new(TbDataTypeCode::TB_DTYPE_CODE_UINT, 8);
    /// `uint16`.
    pub(crate) const U16: Self = Self::new(TbDataTypeCode::TB_DTYPE_CODE_UINT, 16);
    /// `int8`.
    pub(crate) const I8: Self = Self::new(TbDataTypeCode::TB_DTYPE_CODE_INT, 8);
    /// `int16`.
    pub(crate) const I16: Self = Self::new(TbDataTypeCode::TB_DTYPE_CODE_INT, 16);
    /// `float16`.
    pub(crate) const F16: Self = Self::new(TbDataTypeCode::TB_DTYPE_CODE_FLOAT, 16);
    /// `bfloat16`.
    pub(crate) const BF16: Self = Self::new(TbDataTypeCode::TB_DTYPE_CODE_BFLOAT, 16);
    /// `float32`.
    pub(crate) const F32: Self = Self::new(TbDataTypeCode::TB_DTYPE_CODE_FLOAT, 32);
    /// `int32`.
    #[cfg(test)]
    pub(crate) const I32: Self = Self::new(TbDataTypeCode::TB_DTYPE_CODE_INT, 32);
    /// `float64`.
    #[cfg(test)]
    pub(crate) const F64: Self = Self::new(TbDataTypeCode::TB_DTYPE_CODE_FLOAT, 64);
    /// `complex64`.
    #[cfg(test)]
    pub(crate) const C64: Self = Self::new(TbDataTypeCode::TB_DTYPE_CODE_COMPLEX, 64);
    /// `bool` (one byte).
    #[cfg(test)]
    pub(crate) const BOOL: Self = Self::new(TbDataTypeCode::TB_DTYPE_CODE_BOOL, 8);
    /// `float8_e4m3fn` (PyTorch's `torch.float8_e4m3fn`).
    pub(crate) const F8_E4M3FN: Self = Self::new(TbDataTypeCode::TB_DTYPE_CODE_FLOAT8_E4M3FN, 8);
    /// `float8_e5m2` (PyTorch's `torch.float8_e5m2`).
    pub(crate) const F8_E5M2: Self = Self::new(TbDataTypeCode::TB_DTYPE_CODE_FLOAT8_E5M2, 8);
    /// `float4_e2m1fn`, padded: one value in the low bits of each byte.
    pub(crate) const F4_E2M1FN: Self = Self::new(TbDataTypeCode::TB_DTYPE_CODE_FLOAT4_E2M1FN, 4);
    /// `float4_e2m1fn_x2` (PyTorch's `torch.float4_e2m1fn_x2`): two values packed in one byte.
    pub(crate) const F4_E2M1FN_X2: Self =
        DataType { code: TbDataTypeCode::TB_DTYPE_CODE_FLOAT4_E2M1FN, bits: 4, lanes: 2 };

    /// Every supported type, in a fixed order (bool, signed, unsigned, floats, complex).
    pub(crate) fn all() -> impl Iterator<Item = Self> {
        SUPPORTED.iter().map(Self::of)
    }

    fn entry(self) -> &'static Entry {
        SUPPORTED
            .iter()
            .find(|e| Self::of(e) == self)
            .expect("a DataType is always a row of SUPPORTED")
    }

    /// Checks a C value: tensorbridge must be able to hold elements of this type. The message
    /// names the value.
    pub(crate) fn from_raw(raw: TbDataType) -> Result<Self> {
        let float4 = Self::F4_E2M1FN.to_raw();
        if raw.code == float4.code && raw.bits == float4.bits && !matches!(raw.lanes, 1 | 2) {
            return Err(Error::not_supported(format!(
                "dtype {raw}: lanes = {} (float4_e2m1fn takes lanes 1, padded one per byte, or \
                 2, two packed in a byte: float4_e2m1fn_x2)",
                raw.lanes
            )));
        }
        if raw.lanes != 1 && (raw.code, raw.bits) != (float4.code, float4.bits) {
            return Err(Error::not_supported(format!(
                "dtype {raw}: lanes = {} (vector types are not supported; lanes must be 1, or 2 \
                 for float4_e2m1fn_x2 only)",
                raw.lanes
            )));
        }
        SUPPORTED
            .iter()
            .find(|(code, bits, lanes, _, _)| {
                *code as u8 == raw.code && *bits == raw.bits && *lanes == raw.lanes
            })
            .map(Self::of)
            .ok_or_else(|| {
                Error::not_supported(format!(
                    "dtype {raw} (code {}, bits {}) is not a supported element type",
                    raw.code, raw.bits
                ))
            })
    }

    /// The C value.
    pub(crate) fn to_raw(self) -> TbDataType {
        TbDataType { code: self.code as u8, bits: self.bits, lanes: self.lanes }
    }

    /// Whether each element has fewer than 8 bits and is held padded, one per byte (float6,
    /// float4). Not `float4_e2m1fn_x2`, whose two lanes fill their byte.
    pub(crate) fn is_padded_sub_byte(self) -> bool {
        self.bits < 8 && self.lanes == 1
    }

    /// Bytes per element (1 for the padded sub-byte types and for `float4_e2m1fn_x2`).
    pub(crate) fn item_size(self) -> i64 {
        (i64::from(self.bits) * i64::from(self.lanes) + 7) / 8
    }

    /// Required alignment of an element's address in bytes: the size of one scalar component
    /// (a complex number is aligned like its real part, as in C and NumPy).
    pub(crate) fn alignment(self) -> i64 {
        match self.code {
            TbDataTypeCode::TB_DTYPE_CODE_COMPLEX => self.item_size() / 2,
            _ => self.item_size(),
        }
    }

    /// The canonical name (`"float32"`, `"bfloat16"` …).
    pub(crate) fn name(self) -> &'static str {
        self.c_name().to_str().unwrap_or_default()
    }

    /// `Self::name` as a static C string.
    pub(crate) fn c_name(self) -> &'static CStr {
        self.entry().3
    }

    /// Looks a type up by its canonical name (`"uint8"`, `"float16"`, `"complex128"` …).
    pub(crate) fn from_name(name: &str) -> Result<Self> {
        SUPPORTED
            .iter()
            .find(|e| e.3.to_bytes() == name.as_bytes())
            .map(Self::of)
            .ok_or_else(|| Error::invalid_argument(format!("dtype name \"{name}\" is not known")))
    }

    /// NumPy's little-endian typestr (`"|u1"`, `"<f4"`, `"<c8"`). bfloat16 has none in NumPy and
    /// is spelled `"<V2"` (two raw bytes) as ml_dtypes and JAX do in the array interfaces. The
    /// float8, float6 and float4 types (`float4_e2m1fn_x2` too) have none (a `"|V1"` would lose
    /// which format it is): `TB_ERROR_NOT_SUPPORTED`.
    pub(crate) fn to_typestr(self) -> Result<&'static str> {
        Ok(self.c_typestr()?.to_str().unwrap_or_default())
    }

    /// `Self::to_typestr` as a static C string.
    pub(crate) fn c_typestr(self) -> Result<&'static CStr> {
        self.entry().4.ok_or_else(|| {
            Error::not_supported(format!(
                "dtype {self} has no NumPy typestr: the NumPy array interface and the CUDA Array \
                 Interface cannot describe it; exchange it through DLPack"
            ))
        })
    }

    /// Parses a NumPy array-interface typestr: a byte-order character (`<`, `|`, or `=` on this
    /// little-endian machine), a kind (`b i u f c`) and a size in bytes. `<V2` is read as
    /// bfloat16, the only two-byte raw type the interfaces exchange.
    ///
    /// A malformed typestr (empty, an unknown byte-order character, no kind, a letter that is not
    /// a NumPy kind, a size that is not a number) is `InvalidArgument`; a well-formed one this
    /// library cannot hold (big-endian data, kinds with no tensor meaning `O U S a M m`, a size
    /// no supported type has, however large) is `NotSupported`.
    pub(crate) fn from_typestr(typestr: &str) -> Result<Self> {
        let malformed =
            |why: String| Error::invalid_argument(format!("typestr \"{typestr}\": {why}"));
        let bad = |why: &str| Error::not_supported(format!("typestr \"{typestr}\": {why}"));
        let mut chars = typestr.chars();
        let order = chars.next().ok_or_else(|| Error::invalid_argument("typestr is empty"))?;
        if !matches!(order, '<' | '>' | '|' | '=') {
            return Err(malformed(format!(
                "byte order '{order}' is not one of '<', '>', '|', '='"
            )));
        }
        let kind = chars.next().ok_or_else(|| malformed("missing the kind character".into()))?;
        let size_text = chars.as_str();
        let code = match kind {
            'b' => TbDataTypeCode::TB_DTYPE_CODE_BOOL,
            'i' => TbDataTypeCode::TB_DTYPE_CODE_INT,
            'u' => TbDataTypeCode::TB_DTYPE_CODE_UINT,
            'f' => TbDataTypeCode::TB_DTYPE_CODE_FLOAT,
            'c' => TbDataTypeCode::TB_DTYPE_CODE_COMPLEX,
            'V' => TbDataTypeCode::TB_DTYPE_CODE_BFLOAT,
            'O' => return Err(bad("Python objects ('O') have no tensor representation")),
            'U' | 'S' | 'a' => return Err(bad("strings have no tensor representation")),
            'M' | 'm' => return Err(bad("datetimes and timedeltas are not supported")),
            _ => {
                return Err(malformed(format!(
                    "kind '{kind}' is not a NumPy array-interface kind (b i u f c V O S U a M m)"
                )));
            }
        };
        let size: u32 = size_text
            .parse()
            .map_err(|_| malformed(format!("size \"{size_text}\" is not a byte count")))?;
        if order == '>' {
            return Err(bad("big-endian data is not supported (byte-swap it first)"));
        }
        let bits =
            size.checked_mul(8).and_then(|bits| u8::try_from(bits).ok()).ok_or_else(|| {
                bad(&format!("element size {size} bytes is larger than any supported type"))
            })?;
        Self::from_raw(TbDataType { code: code as u8, bits, lanes: 1 })
            .map_err(|_| bad("unsupported element size"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn every_supported_type_round_trips_through_its_typestr_and_name() {
        for entry in SUPPORTED.iter() {
            let (name, typestr) = (entry.3, entry.4);
            let dt = DataType::of(entry);
            assert_eq!(DataType::from_name(name.to_str().unwrap()).unwrap(), dt);
            let Some(typestr) = typestr else {
                let error = dt.to_typestr().unwrap_err();
                assert_eq!(error.kind, ErrorKind::NotSupported);
                assert!(error.message.contains("exchange it through DLPack"), "{}", error.message);
                continue;
            };
            let typestr = typestr.to_str().unwrap();
            assert_eq!(DataType::from_typestr(typestr).unwrap(), dt, "{typestr}");
            assert_eq!(dt.to_typestr().unwrap(), typestr);
        }
    }

    #[test]
    fn sizes_and_alignments() {
        assert_eq!(DataType::C64.item_size(), 8);
        assert_eq!(DataType::C64.alignment(), 4);
        assert_eq!(DataType::BF16.item_size(), 2);
        assert_eq!(DataType::BOOL.item_size(), 1);
    }

    #[test]
    fn native_order_and_unaligned_spellings() {
        assert_eq!(DataType::from_typestr("=f4").unwrap(), DataType::F32);
        assert_eq!(DataType::from_typestr("|u1").unwrap(), DataType::U8);
        assert_eq!(DataType::from_typestr("<u1").unwrap(), DataType::U8);
    }

    /// Each `(typestr, message fragment)` fails with `kind` and a message holding the fragment.
    fn assert_rejected(kind: ErrorKind, cases: &[(&str, &str)]) {
        for (typestr, fragment) in cases {
            let err = DataType::from_typestr(typestr).unwrap_err();
            assert_eq!(err.kind, kind, "{typestr}: {}", err.message);
            assert!(err.message.contains(fragment), "{typestr}: {}", err.message);
        }
    }

    #[test]
    fn unrepresentable_typestrs_are_rejected_with_reason() {
        let cases = [
            (">f4", "big-endian"),
            ("|O8", "Python objects"),
            ("<U4", "strings"),
            ("<M8[ns]", "datetimes"),
            ("<f3", "unsupported element size"),
            ("<f536870912", "element size 536870912 bytes is larger than any supported type"),
            ("<u536870913", "larger than any supported type"), // wrapped to uint8 before
            ("<f4294967295", "element size 4294967295 bytes"),
            ("<f0", "unsupported element size"),
            ("<c32", "larger than any supported type"),
            ("<c4", "unsupported element size"),
        ];
        assert_rejected(ErrorKind::NotSupported, &cases);
    }

    /// Regression: malformed typestrs (no kind, a letter that is no kind) were `NotSupported`
    /// although the C ABI documents `TB_ERROR_INVALID_ARGUMENT` for them, and `size * 8` was
    /// unchecked (a panic in debug builds, a wrap in release ones).
    #[test]
    fn malformed_typestrs_are_invalid_arguments() {
        let cases = [
            ("", "typestr is empty"),
            ("<", "missing the kind character"),
            ("|", "missing the kind character"),
            ("<z4", "kind 'z' is not a NumPy array-interface kind"),
            ("<q8", "kind 'q'"),
            ("<4f", "kind '4'"),
            ("xf4", "byte order 'x'"),
            ("<i", "size \"\" is not a byte count"),
            ("<f-4", "size \"-4\" is not a byte count"),
            ("<f4x", "size \"4x\""),
            ("<f4294967296", "size \"4294967296\" is not a byte count"),
        ];
        assert_rejected(ErrorKind::InvalidArgument, &cases);
    }

    #[test]
    fn vector_lanes_are_not_supported() {
        let dt = TbDataType { lanes: 4, ..DataType::F32.to_raw() };
        let err = DataType::from_raw(dt).unwrap_err();
        assert!(err.message.contains("lanes = 4"));
        let dt = TbDataType { lanes: 2, ..DataType::F8_E4M3FN.to_raw() };
        let err = DataType::from_raw(dt).unwrap_err();
        assert!(err.message.contains("2 for float4_e2m1fn_x2 only"), "{}", err.message);
    }

    /// PyTorch's `torch.float4_e2m1fn_x2` through DLPack is (code 17, bits 4, lanes 2): one byte
    /// holding two float4 values, a vector type of its own next to the padded float4 (lanes 1).
    #[test]
    fn float4_pairs_are_lanes_two_of_code_17_and_one_byte() {
        let raw = TbDataType { code: 17, bits: 4, lanes: 2 };
        let pair = DataType::from_raw(raw).unwrap();
        assert_eq!(pair, DataType::F4_E2M1FN_X2);
        assert_eq!(pair.to_raw(), raw);
        assert_eq!((pair.name(), pair.item_size(), pair.alignment()), ("float4_e2m1fn_x2", 1, 1));
        assert!(!pair.is_padded_sub_byte());
        assert_eq!(raw.to_string(), "float4_e2m1fn_x2");
        assert_eq!(DataType::from_name("float4_e2m1fn_x2").unwrap(), pair);
        let padded = DataType::from_raw(TbDataType { lanes: 1, ..raw }).unwrap();
        assert_eq!((padded, padded.item_size()), (DataType::F4_E2M1FN, 1));
        assert!(padded.is_padded_sub_byte());
        for lanes in [0, 3, 4] {
            let err = DataType::from_raw(TbDataType { lanes, ..raw }).unwrap_err();
            assert_eq!(err.kind, ErrorKind::NotSupported);
            assert!(err.message.contains(&format!("lanes = {lanes} (float4_e2m1fn takes lanes 1")));
        }
        let err = pair.to_typestr().unwrap_err();
        assert!(err.message.contains("float4_e2m1fn_x2 has no NumPy typestr"), "{}", err.message);
        assert_eq!(DataType::all().filter(|t| *t == pair).count(), 1);
    }
}
