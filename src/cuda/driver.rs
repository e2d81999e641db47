//! Loading the CUDA driver: whether it is there, and turning its errors into ours. Every driver
//! call goes through `cudarc::driver::result` (or, for the few it lacks, `super::calls`), and
//! every `DriverError` becomes an `Error` through `During::during`, which names the operation.

use crate::error::{Error, Result};
use cudarc::driver::result::{self as driver, DriverError};
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
    // The library is present, so cudarc's loader will not panic.
    match driver::init() {
        Ok(()) => Ok(()),
        Err(DriverError(CUresult::CUDA_ERROR_NO_DEVICE)) => {
            Err("CUDA unavailable: the driver reports no CUDA device".to_string())
        }
        Err(other) => Err(format!("CUDA unavailable: cuInit failed with {}", name_of(other))),
    }
}

/// `Ok` when the driver is loaded and initialised; otherwise `ErrorKind::CudaUnavailable` with
/// a message that says what was missing. Cheap after the first call.
pub(crate) fn available() -> Result<()> {
    AVAILABILITY.get_or_init(probe).clone().map_err(Error::cuda_unavailable)
}

/// The driver's name for an error, such as `"CUDA_ERROR_INVALID_VALUE"`.
fn name_of(error: DriverError) -> String {
    match error.error_name() {
        Ok(name) => name.to_string_lossy().into_owned(),
        Err(_) => format!("CUDA error {}", error.0 as i32),
    }
}

/// Turns a driver error into ours, naming the operation: out of memory keeps its own kind.
fn convert(error: DriverError, what: &str) -> Error {
    match error.0 {
        CUresult::CUDA_ERROR_OUT_OF_MEMORY => {
            Error::out_of_memory(format!("{what}: CUDA_ERROR_OUT_OF_MEMORY"))
        }
        _ => Error::cuda(format!("{what} failed: {}", name_of(error))),
    }
}

/// Names the operation of a driver result, converting its error.
pub(crate) trait During<T> {
    /// `Ok` unchanged; an error becomes ours, with `what` in the message.
    fn during(self, what: &str) -> Result<T>;
}

impl<T> During<T> for std::result::Result<T, DriverError> {
    fn during(self, what: &str) -> Result<T> {
        self.map_err(|error| convert(error, what))
    }
}

/// Number of CUDA devices (0 never: no device makes the driver unavailable).
pub(crate) fn device_count() -> Result<i32> {
    available()?;
    driver::device::get_count().during("cuDeviceGetCount")
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

/// The driver's handle of device `ordinal`, after checking that it exists.
pub(crate) fn device(ordinal: i32) -> Result<sys::CUdevice> {
    check_ordinal(ordinal)?;
    driver::device::get(ordinal).during("cuDeviceGet")
}
