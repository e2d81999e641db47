//! The error model: one status code per kind of failure, plus a message that names the offending
//! argument and value. The C ABI turns the kind into a `TbStatus` and keeps the message per
//! thread for `tb_last_error_message()`.

use std::fmt;

/// What kind of failure an `Error` is. The C ABI maps each kind to one `TbStatus` (in
/// `ffi::status`); the core never sees C's status codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ErrorKind {
    /// An argument was missing, out of range or inconsistent with another argument.
    InvalidArgument,
    /// Well formed, but this version does not support it (a dtype, device or flag).
    NotSupported,
    /// A host or device allocation failed.
    OutOfMemory,
    /// The CUDA driver or NVRTC could not be loaded, or no CUDA device is present.
    CudaUnavailable,
    /// A CUDA driver or NVRTC call failed.
    Cuda,
    /// Tensors that must share a device do not.
    DeviceMismatch,
    /// A write through a read-only tensor.
    ReadOnly,
    /// A size, stride or offset computation overflowed 64-bit arithmetic.
    Overflow,
    /// A bug in tensorbridge: a caught panic or a broken invariant.
    Internal,
}

impl ErrorKind {
    /// Every kind.
    pub(crate) const ALL: [ErrorKind; 9] = [
        ErrorKind::InvalidArgument,
        ErrorKind::NotSupported,
        ErrorKind::OutOfMemory,
        ErrorKind::CudaUnavailable,
        ErrorKind::Cuda,
        ErrorKind::DeviceMismatch,
        ErrorKind::ReadOnly,
        ErrorKind::Overflow,
        ErrorKind::Internal,
    ];
}

/// A failure: its kind and a human-readable message naming the argument and the bad value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) struct Error {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// What was wrong, with the offending value.
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

/// Result type of the safe core.
pub(crate) type Result<T> = std::result::Result<T, Error>;

macro_rules! constructor {
    ($fn_name:ident, $kind:ident) => {
        #[doc = concat!("An error of kind `", stringify!($kind), "`.")]
        pub(crate) fn $fn_name(message: impl Into<String>) -> Error {
            Error { kind: ErrorKind::$kind, message: message.into() }
        }
    };
}

impl Error {
    constructor!(invalid_argument, InvalidArgument);
    constructor!(not_supported, NotSupported);
    constructor!(out_of_memory, OutOfMemory);
    constructor!(cuda_unavailable, CudaUnavailable);
    constructor!(cuda, Cuda);
    constructor!(device_mismatch, DeviceMismatch);
    constructor!(read_only, ReadOnly);
    constructor!(overflow, Overflow);
    constructor!(internal, Internal);
}

/// Checked 64-bit arithmetic that reports overflow as `TB_ERROR_OVERFLOW`, naming what was computed.
/// `what` is formatted only on overflow: a name with context (`format_args!("strides[{dim}]")`)
/// costs nothing on success.
pub(crate) fn checked_mul(a: i64, b: i64, what: impl fmt::Display) -> Result<i64> {
    a.checked_mul(b).ok_or_else(|| Error::overflow(format!("{what}: {a} * {b} overflows int64")))
}

/// See `checked_mul`.
pub(crate) fn checked_add(a: i64, b: i64, what: impl fmt::Display) -> Result<i64> {
    a.checked_add(b).ok_or_else(|| Error::overflow(format!("{what}: {a} + {b} overflows int64")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_arithmetic_names_the_quantity() {
        let err = checked_mul(i64::MAX, 2, "shape product").unwrap_err();
        assert_eq!(err.kind, ErrorKind::Overflow);
        assert!(err.message.contains("shape product"));
        assert_eq!(checked_add(1, 2, "x").unwrap(), 3);
    }
}
