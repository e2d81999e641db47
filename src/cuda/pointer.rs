//! What the driver knows about a pointer: which device it belongs to and what kind of memory it
//! is. Used to check descriptors that claim CUDA memory instead of trusting them.

use super::calls;
use super::driver::{During, available};
use crate::device::{Device, DeviceType};
use crate::error::{Error, Result};
use cudarc::driver::sys::{self, CUpointer_attribute};

/// The device and memory kind of CUDA memory at `address`, from the driver's pointer attributes.
/// A pointer the driver does not know (ordinary host memory, or garbage) is an error.
pub(crate) fn classify(address: u64) -> Result<Device> {
    available()?;
    let mut attributes = [
        CUpointer_attribute::CU_POINTER_ATTRIBUTE_MEMORY_TYPE,
        CUpointer_attribute::CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL,
        CUpointer_attribute::CU_POINTER_ATTRIBUTE_IS_MANAGED,
    ];
    // Each value is written as a 4-byte int or a 1-byte bool; zeroed 8-byte slots read either.
    let mut values = [0u64; 3];
    let mut slots = values.each_mut().map(|v| v as *mut u64 as *mut std::ffi::c_void);
    crate::fault::driver_call("cuPointerGetAttributes")?;
    // SAFETY: three attributes, three writable 8-byte slots (each value is 4 bytes or 1).
    unsafe { calls::pointer_attributes(&mut attributes, &mut slots, address) }
        .during("cuPointerGetAttributes")?;
    let memory_type = values[0] as u32;
    let ordinal = values[1] as u32 as i32;
    let managed = values[2] as u8 != 0;
    let kind = if managed {
        DeviceType::TB_DEVICE_CUDA_MANAGED
    } else if memory_type == sys::CUmemorytype::CU_MEMORYTYPE_DEVICE as u32 {
        DeviceType::TB_DEVICE_CUDA
    } else if memory_type == sys::CUmemorytype::CU_MEMORYTYPE_HOST as u32 {
        DeviceType::TB_DEVICE_CUDA_HOST
    } else {
        return Err(Error::invalid_argument(format!(
            "pointer {address:#x} is not CUDA memory (the driver does not know it: ordinary host \
             memory described as CUDA memory?)"
        )));
    };
    Ok(Device { kind, ordinal: ordinal.max(0) })
}

/// The device of the calling thread's current context, or 0 when none is current.
pub(crate) fn current_ordinal() -> Result<i32> {
    available()?;
    Ok(calls::current_device().unwrap_or(0))
}
