//! Library-wide functions: statuses, error messages, version, CUDA presence.

use super::{boundary, handle, last_error_ptr, write_out};
use crate::error::ErrorKind;
use std::ffi::{CStr, c_char};

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

    #[cfg(test)]
    /// The enumerator's name as a Rust string.
    pub(crate) fn name(self) -> &'static str {
        self.c_name().to_str().unwrap_or("TB_UNKNOWN_STATUS")
    }

    /// The status with code `code`, if there is one.
    pub(crate) fn from_code(code: i32) -> Option<TbStatus> {
        usize::try_from(code).ok().and_then(|index| Self::ALL.get(index).copied())
    }
}

/// The core's error kind for a status a C callback returned (`None` for `TB_SUCCESS`).
pub(crate) fn kind_of(status: TbStatus) -> Option<ErrorKind> {
    ErrorKind::ALL.into_iter().find(|&kind| status_of(kind) == status)
}

/// The status C callers see for each kind of core error: the one place where the core's error
/// model meets C's.
pub(crate) fn status_of(kind: ErrorKind) -> TbStatus {
    match kind {
        ErrorKind::InvalidArgument => TbStatus::TB_ERROR_INVALID_ARGUMENT,
        ErrorKind::NotSupported => TbStatus::TB_ERROR_NOT_SUPPORTED,
        ErrorKind::OutOfMemory => TbStatus::TB_ERROR_OUT_OF_MEMORY,
        ErrorKind::CudaUnavailable => TbStatus::TB_ERROR_CUDA_UNAVAILABLE,
        ErrorKind::Cuda => TbStatus::TB_ERROR_CUDA,
        ErrorKind::DeviceMismatch => TbStatus::TB_ERROR_DEVICE_MISMATCH,
        ErrorKind::ReadOnly => TbStatus::TB_ERROR_READ_ONLY,
        ErrorKind::Overflow => TbStatus::TB_ERROR_OVERFLOW,
        ErrorKind::Internal => TbStatus::TB_ERROR_INTERNAL,
    }
}

/// Major version of this library (semantic versioning: the ABI changes only with it).
pub const TB_VERSION_MAJOR: u32 = 0;
/// Minor version.
pub const TB_VERSION_MINOR: u32 = 1;
/// Patch version.
pub const TB_VERSION_PATCH: u32 = 0;

const VERSION_STRING: &CStr = c"0.1.0";

/// The library's version as `major * 10000 + minor * 100 + patch` (0.1.0 → 100). Compare with
/// `TB_VERSION_MAJOR` & co. from the header to detect a header/library mismatch.
///
/// \return `TB_VERSION_MAJOR` * 10000 + `TB_VERSION_MINOR` * 100 + `TB_VERSION_PATCH` of the loaded
///         library.
#[unsafe(no_mangle)]
pub extern "C" fn tb_version() -> u32 {
    TB_VERSION_MAJOR * 10000 + TB_VERSION_MINOR * 100 + TB_VERSION_PATCH
}

/// The library's version as a static NUL-terminated string such as `"0.1.0"`. Never NULL; do
/// not free.
///
/// \return a static string, never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn tb_version_string() -> *const c_char {
    VERSION_STRING.as_ptr()
}

/// The name of a status code as a static string (`"TB_ERROR_OVERFLOW"`), or
/// `"TB_UNKNOWN_STATUS"` for a value that is not a `TbStatus`. Never NULL; do not free.
///
/// \param[in] status  any integer; `TbStatus` values are named.
/// \return a static string, never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn tb_status_name(status: i32) -> *const c_char {
    let name = TbStatus::from_code(status).map_or(c"TB_UNKNOWN_STATUS", TbStatus::c_name);
    name.as_ptr()
}

/// The short name of a device type code as a static string: `"cpu"`, `"cuda"`, `"cuda_host"`,
/// `"cuda_managed"`, or `"unknown"` for a code tensorbridge does not support. Never NULL; do not
/// free.
///
/// \param[in] device_type  any integer; supported `TbDeviceType` values are named.
/// \return a static string, never NULL.
#[unsafe(no_mangle)]
pub extern "C" fn tb_device_type_name(device_type: i32) -> *const c_char {
    crate::device::DeviceType::from_code(device_type)
        .map_or(c"unknown", crate::device::DeviceType::c_name)
        .as_ptr()
}

/// The message of the last failed tensorbridge call on the calling thread: the function, the
/// argument and the offending value (`"tb_tensor_wrap: shape[1] = -3 is negative; …"`). Empty
/// when no call has failed on this thread. Successful calls leave it unchanged. Never NULL; the
/// text stays valid until the thread's next failing call; do not free.
///
/// \return this thread's message, never NULL (`""` before the first failure).
#[unsafe(no_mangle)]
pub extern "C" fn tb_last_error_message() -> *const c_char {
    last_error_ptr()
}

/// Number of CUDA devices, in `*count`. Returns `TB_ERROR_CUDA_UNAVAILABLE` (and sets `*count`
/// to 0) when the driver cannot be loaded or reports no device; never crashes without a GPU.
///
/// \param[out] count  receives the number of CUDA devices, 0 on failure; not NULL.
/// \retval TB_SUCCESS                 `*count` ≥ 1.
/// \retval TB_ERROR_INVALID_ARGUMENT  `count` is NULL.
/// \retval TB_ERROR_CUDA_UNAVAILABLE  the CUDA driver cannot be loaded, `cuInit` fails or there is
///                                    no device.
/// \retval TB_ERROR_CUDA              `cuDeviceGetCount` failed.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_cuda_device_count(count: *mut i32) -> TbStatus {
    boundary("tb_cuda_device_count", || {
        write_out(count, 0, "count")?;
        write_out(count, crate::cuda::driver::device_count()?, "count")
    })
}

/// Number of `TbTensor` handles alive in this process, in `*count`: a diagnostic for leak
/// checks in tests (a program that released everything sees 0).
///
/// \param[out] count  receives the number of live handles; not NULL.
/// \retval TB_SUCCESS                 `*count` written.
/// \retval TB_ERROR_INVALID_ARGUMENT  `count` is NULL.
/// \retval TB_ERROR_INTERNAL          a bug (caught panic); please report it.
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_live_count(count: *mut i64) -> TbStatus {
    boundary("tb_tensor_live_count", || write_out(count, handle::live_count() as i64, "count"))
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
    fn every_status_has_its_header_name() {
        for status in TbStatus::ALL {
            // SAFETY: tb_status_name returns a static C string.
            let name = unsafe { CStr::from_ptr(tb_status_name(status as i32)) };
            assert_eq!(name.to_str().unwrap(), status.name());
        }
        for bad in [-1, 10, i32::MAX, i32::MIN] {
            // SAFETY: as above.
            let name = unsafe { CStr::from_ptr(tb_status_name(bad)) };
            assert_eq!(name.to_str().unwrap(), "TB_UNKNOWN_STATUS");
        }
    }

    #[test]
    fn version_agrees_with_the_crate() {
        // SAFETY: static C string.
        let text = unsafe { CStr::from_ptr(tb_version_string()) }.to_str().unwrap();
        assert_eq!(text, env!("CARGO_PKG_VERSION"));
        assert_eq!(tb_version(), 100);
    }
}
