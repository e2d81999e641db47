//! The error model: one status code per kind of failure, plus a message that names the offending
//! argument and value. Every fallible function of the C ABI returns a `TbStatus`; the message is
//! kept per thread and read with `tb_last_error_message()`.

use std::ffi::CStr;
use std::fmt;

/// Result code of every fallible tensorbridge function. `TB_SUCCESS` is 0; every other value is an
/// error whose details are in `tb_last_error_message()` on the same thread.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TbStatus {
    /// The call succeeded.
    TB_SUCCESS = 0,
    /// An argument was NULL, out of range or inconsistent with another argument.
    TB_ERROR_INVALID_ARGUMENT = 1,
    /// The request is well formed but this version does not support it (a dtype, device or flag).
    TB_ERROR_NOT_SUPPORTED = 2,
    /// A host or device allocation failed.
    TB_ERROR_OUT_OF_MEMORY = 3,
    /// The CUDA driver (libcuda) or NVRTC could not be loaded, or no CUDA device is present.
    TB_ERROR_CUDA_UNAVAILABLE = 4,
    /// A CUDA driver or NVRTC call failed; the message holds the CUDA error name.
    TB_ERROR_CUDA = 5,
    /// Tensors that must share a device do not, or a pointer lives on another device than declared.
    TB_ERROR_DEVICE_MISMATCH = 6,
    /// A write was requested through a read-only tensor.
    TB_ERROR_READ_ONLY = 7,
    /// A size, stride or offset computation overflowed 64-bit arithmetic.
    TB_ERROR_OVERFLOW = 8,
    /// A bug in tensorbridge (a caught panic, a broken invariant). Please report it.
    TB_ERROR_INTERNAL = 9,
}

impl TbStatus {
    /// Every status, in code order (for tests and `tb_status_name`).
    pub(crate) const ALL: [TbStatus; 10] = [
        TbStatus::TB_SUCCESS,
        TbStatus::TB_ERROR_INVALID_ARGUMENT,
        TbStatus::TB_ERROR_NOT_SUPPORTED,
        TbStatus::TB_ERROR_OUT_OF_MEMORY,
        TbStatus::TB_ERROR_CUDA_UNAVAILABLE,
        TbStatus::TB_ERROR_CUDA,
        TbStatus::TB_ERROR_DEVICE_MISMATCH,
        TbStatus::TB_ERROR_READ_ONLY,
        TbStatus::TB_ERROR_OVERFLOW,
        TbStatus::TB_ERROR_INTERNAL,
    ];

    /// The enumerator's name as written in the C header, e.g. `c"TB_ERROR_OVERFLOW"`.
    pub(crate) const fn c_name(self) -> &'static CStr {
        match self {
            TbStatus::TB_SUCCESS => c"TB_SUCCESS",
            TbStatus::TB_ERROR_INVALID_ARGUMENT => c"TB_ERROR_INVALID_ARGUMENT",
            TbStatus::TB_ERROR_NOT_SUPPORTED => c"TB_ERROR_NOT_SUPPORTED",
            TbStatus::TB_ERROR_OUT_OF_MEMORY => c"TB_ERROR_OUT_OF_MEMORY",
            TbStatus::TB_ERROR_CUDA_UNAVAILABLE => c"TB_ERROR_CUDA_UNAVAILABLE",
            TbStatus::TB_ERROR_CUDA => c"TB_ERROR_CUDA",
            TbStatus::TB_ERROR_DEVICE_MISMATCH => c"TB_ERROR_DEVICE_MISMATCH",
            TbStatus::TB_ERROR_READ_ONLY => c"TB_ERROR_READ_ONLY",
            TbStatus::TB_ERROR_OVERFLOW => c"TB_ERROR_OVERFLOW",
            TbStatus::TB_ERROR_INTERNAL => c"TB_ERROR_INTERNAL",
        }
    }

    /// The enumerator's name as a Rust string.
    pub(crate) fn name(self) -> &'static str {
        self.c_name().to_str().unwrap_or("TB_UNKNOWN_STATUS")
    }

    /// The status with code `code`, if there is one.
    pub(crate) fn from_code(code: i32) -> Option<TbStatus> {
        usize::try_from(code).ok().and_then(|index| Self::ALL.get(index).copied())
    }
}

/// A failure: its status and a human-readable message naming the argument and the bad value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) struct Error {
    /// What kind of failure (never `TB_SUCCESS`).
    pub status: TbStatus,
    /// What was wrong, with the offending value.
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status.name(), self.message)
    }
}

/// Result type of the safe core.
pub(crate) type Result<T> = std::result::Result<T, Error>;

macro_rules! constructor {
    ($fn_name:ident, $status:ident) => {
        #[doc = concat!("An error with status `", stringify!($status), "`.")]
        pub(crate) fn $fn_name(message: impl Into<String>) -> Error {
            Error { status: TbStatus::$status, message: message.into() }
        }
    };
}

impl Error {
    constructor!(invalid_argument, TB_ERROR_INVALID_ARGUMENT);
    constructor!(not_supported, TB_ERROR_NOT_SUPPORTED);
    constructor!(out_of_memory, TB_ERROR_OUT_OF_MEMORY);
    constructor!(cuda_unavailable, TB_ERROR_CUDA_UNAVAILABLE);
    constructor!(cuda, TB_ERROR_CUDA);
    constructor!(device_mismatch, TB_ERROR_DEVICE_MISMATCH);
    constructor!(read_only, TB_ERROR_READ_ONLY);
    constructor!(overflow, TB_ERROR_OVERFLOW);
    constructor!(internal, TB_ERROR_INTERNAL);
}

/// Checked 64-bit arithmetic that reports overflow as `TB_ERROR_OVERFLOW`, naming what was computed.
pub(crate) fn checked_mul(a: i64, b: i64, what: &str) -> Result<i64> {
    a.checked_mul(b).ok_or_else(|| Error::overflow(format!("{what}: {a} * {b} overflows int64")))
}

/// See `checked_mul`.
pub(crate) fn checked_add(a: i64, b: i64, what: &str) -> Result<i64> {
    a.checked_add(b).ok_or_else(|| Error::overflow(format!("{what}: {a} + {b} overflows int64")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_are_dense_and_named() {
        for (code, status) in TbStatus::ALL.iter().enumerate() {
            assert_eq!(*status as usize, code);
            assert!(status.name().starts_with("TB_"));
        }
    }

    #[test]
    fn checked_arithmetic_names_the_quantity() {
        let err = checked_mul(i64::MAX, 2, "shape product").unwrap_err();
        assert_eq!(err.status, TbStatus::TB_ERROR_OVERFLOW);
        assert!(err.message.contains("shape product"));
        assert_eq!(checked_add(1, 2, "x").unwrap(), 3);
    }
}
