//! Library-wide functions: statuses, error messages, version, CUDA presence.

use super::{boundary, handle, last_error_ptr, write_out};
use crate::error::TbStatus;
use std::ffi::{CStr, c_char};

/// Major version of this library (semantic versioning: the ABI changes only with it).
pub const TB_VERSION_MAJOR: u32 = 0;
/// Minor version.
pub const TB_VERSION_MINOR: u32 = 1;
/// Patch version.
pub const TB_VERSION_PATCH: u32 = 0;

const VERSION_STRING: &CStr = c"0.1.0";

/// The library's version as `major * 10000 + minor * 100 + patch` (0.1.0 → 100). Compare with
/// `TB_VERSION_MAJOR` & co. from the header to detect a header/library mismatch.
#[unsafe(no_mangle)]
pub extern "C" fn tb_version() -> u32 {
    TB_VERSION_MAJOR * 10000 + TB_VERSION_MINOR * 100 + TB_VERSION_PATCH
}

/// The library's version as a static NUL-terminated string such as `"0.1.0"`. Never NULL; do
/// not free.
#[unsafe(no_mangle)]
pub extern "C" fn tb_version_string() -> *const c_char {
    VERSION_STRING.as_ptr()
}

/// The name of a status code as a static string (`"TB_ERROR_OVERFLOW"`), or
/// `"TB_UNKNOWN_STATUS"` for a value that is not a `TbStatus`. Never NULL; do not free.
#[unsafe(no_mangle)]
pub extern "C" fn tb_status_name(status: i32) -> *const c_char {
    let name = TbStatus::from_code(status).map_or(c"TB_UNKNOWN_STATUS", TbStatus::c_name);
    name.as_ptr()
}

/// The short name of a device type code as a static string: `"cpu"`, `"cuda"`, `"cuda_host"`,
/// `"cuda_managed"`, or `"unknown"` for a code tensorbridge does not support. Never NULL; do not
/// free.
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
#[unsafe(no_mangle)]
pub extern "C" fn tb_last_error_message() -> *const c_char {
    last_error_ptr()
}

/// Number of CUDA devices, in `*count`. Returns `TB_ERROR_CUDA_UNAVAILABLE` (and sets `*count`
/// to 0) when the driver cannot be loaded or reports no device; never crashes without a GPU.
#[unsafe(no_mangle)]
pub extern "C" fn tb_cuda_device_count(count: *mut i32) -> TbStatus {
    boundary("tb_cuda_device_count", || {
        write_out(count, 0, "count")?;
        write_out(count, crate::cuda::driver::device_count()?, "count")
    })
}

/// Number of `TbTensor` handles alive in this process, in `*count`: a diagnostic for leak
/// checks in tests (a program that released everything sees 0).
#[unsafe(no_mangle)]
pub extern "C" fn tb_tensor_live_count(count: *mut i64) -> TbStatus {
    boundary("tb_tensor_live_count", || write_out(count, handle::live_count() as i64, "count"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
