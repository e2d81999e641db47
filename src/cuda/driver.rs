//! Loading the CUDA driver: whether it is there, and turning its status codes into errors.

use crate::error::{Error, Result};
use cudarc::driver::sys::{self, CUresult};
use std::sync::OnceLock;

/// Whether libcuda could be loaded and initialised, decided once per process.
static AVAILABILITY: OnceLock<std::result::Result<(), String>> = OnceLock::new();

fn probe() -> std::result::Result<(), String> {
    // SAFETY: is_culib_present only tries to dlopen the candidate library names.
    if !unsafe { sys::is_culib_present() } {
        return Err("CUDA unavailable: the CUDA driver library (libcuda.so.1) could not be \
                    loaded; is an NVIDIA driver installed?"
            .to_string());
    }
    // SAFETY: the library is present, so cudarc's loader will not panic.
    let status = unsafe { sys::cuInit(0) };
    match status {
        CUresult::CUDA_SUCCESS => Ok(()),
        CUresult::CUDA_ERROR_NO_DEVICE => {
            Err("CUDA unavailable: the driver reports no CUDA device".to_string())
        }
        other => Err(format!("CUDA unavailable: cuInit failed with {}", error_name(other))),
    }
}

/// `Ok` when the driver is loaded and initialised; otherwise `TB_ERROR_CUDA_UNAVAILABLE` with
/// a message that says what was missing. Cheap after the first call.
pub(crate) fn available() -> Result<()> {
    AVAILABILITY.get_or_init(probe).clone().map_err(Error::cuda_unavailable)
}

/// The driver's name for a status, such as `"CUDA_ERROR_INVALID_VALUE"`.
pub(crate) fn error_name(status: CUresult) -> String {
    let mut name: *const std::os::raw::c_char = std::ptr::null();
    // SAFETY: only called once the driver is loaded; cuGetErrorName writes a static string.
    let found = unsafe { sys::cuGetErrorName(status, &mut name) };
    if found != CUresult::CUDA_SUCCESS || name.is_null() {
        return format!("CUDA error {}", status as i32);
    }
    // SAFETY: the driver returned a NUL-terminated static string.
    unsafe { std::ffi::CStr::from_ptr(name) }.to_string_lossy().into_owned()
}

/// Turns a driver status into a result; `what` names the operation for the message.
pub(crate) fn check(status: CUresult, what: &str) -> Result<()> {
    match status {
        CUresult::CUDA_SUCCESS => Ok(()),
        CUresult::CUDA_ERROR_OUT_OF_MEMORY => {
            Err(Error::out_of_memory(format!("{what}: CUDA_ERROR_OUT_OF_MEMORY")))
        }
        other => Err(Error::cuda(format!("{what} failed: {}", error_name(other)))),
    }
}

/// Number of CUDA devices (0 never: no device makes the driver unavailable).
pub(crate) fn device_count() -> Result<i32> {
    available()?;
    let mut count = 0;
    // SAFETY: the driver is loaded and initialised; count is a valid out-pointer.
    check(unsafe { sys::cuDeviceGetCount(&mut count) }, "cuDeviceGetCount")?;
    Ok(count)
}

/// Checks that `ordinal` names an existing CUDA device.
pub(crate) fn check_ordinal(ordinal: i32) -> Result<()> {
    let count = device_count()?;
    if !(0..count).contains(&ordinal) {
        return Err(Error::invalid_argument(format!(
            "CUDA device ordinal {ordinal} does not exist ({count} device(s) present)"
        )));
    }
    Ok(())
}
