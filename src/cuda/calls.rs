//! The driver calls that `cudarc::driver::result` does not wrap, each wrapped once here in the
//! same shape: raw handles in, `Result<_, DriverError>` out, and a `# Safety` contract.

use cudarc::driver::result::DriverError;
use cudarc::driver::sys;
use std::mem::MaybeUninit;

/// Pushes `ctx` onto the calling thread's context stack.
///
/// # Safety
/// `ctx` must be a valid context for as long as it stays pushed.
pub(crate) unsafe fn push_current(ctx: sys::CUcontext) -> Result<(), DriverError> {
    // SAFETY: forwarded contract.
    unsafe { sys::cuCtxPushCurrent_v2(ctx) }.result()
}

/// Pops the calling thread's current context.
///
/// # Safety
/// The caller pushed the context it pops.
pub(crate) unsafe fn pop_current() -> Result<sys::CUcontext, DriverError> {
    let mut popped = MaybeUninit::uninit();
    // SAFETY: popped is a valid out-pointer; forwarded contract.
    unsafe {
        sys::cuCtxPopCurrent_v2(popped.as_mut_ptr()).result()?;
        Ok(popped.assume_init())
    }
}

/// The device of the calling thread's current context.
pub(crate) fn current_device() -> Result<sys::CUdevice, DriverError> {
    let mut device = MaybeUninit::uninit();
    // SAFETY: device is a valid out-pointer; no context is required (an error says none is).
    unsafe {
        sys::cuCtxGetDevice(device.as_mut_ptr()).result()?;
        Ok(device.assume_init())
    }
}

/// Whether device `from` can access device `to`'s memory directly.
///
/// # Safety
/// Both must be devices returned by `cuDeviceGet`.
pub(crate) unsafe fn can_access_peer(
    from: sys::CUdevice,
    to: sys::CUdevice,
) -> Result<bool, DriverError> {
    let mut can = 0;
    // SAFETY: valid out-pointer; forwarded contract.
    unsafe { sys::cuDeviceCanAccessPeer(&mut can, from, to) }.result()?;
    Ok(can != 0)
}

/// Lets the current context access `peer`'s memory.
///
/// # Safety
/// A context is current and `peer` is a valid context of another device.
pub(crate) unsafe fn enable_peer_access(peer: sys::CUcontext) -> Result<(), DriverError> {
    // SAFETY: forwarded contract.
    unsafe { sys::cuCtxEnablePeerAccess(peer, 0) }.result()
}

/// Copies `bytes` between two addresses of any kind that unified addressing knows (the driver
/// infers the direction), ordered on `stream`.
///
/// # Safety
/// Both ranges are valid for `bytes` bytes until the copy is done; `stream` is valid.
pub(crate) unsafe fn copy_async(
    dst: sys::CUdeviceptr,
    src: sys::CUdeviceptr,
    bytes: usize,
    stream: sys::CUstream,
) -> Result<(), DriverError> {
    // SAFETY: forwarded contract.
    unsafe { sys::cuMemcpyAsync(dst, src, bytes, stream) }.result()
}

/// Reads pointer attributes of `address` into `values` (one writable slot per attribute).
///
/// # Safety
/// Each slot is large enough for its attribute's value.
pub(crate) unsafe fn pointer_attributes(
    attributes: &mut [sys::CUpointer_attribute],
    values: &mut [*mut std::ffi::c_void],
    address: sys::CUdeviceptr,
) -> Result<(), DriverError> {
    assert_eq!(attributes.len(), values.len(), "one slot per attribute");
    // SAFETY: as many attributes as slots; forwarded contract.
    unsafe {
        sys::cuPointerGetAttributes(
            attributes.len() as u32,
            attributes.as_mut_ptr(),
            values.as_mut_ptr(),
            address,
        )
    }
    .result()
}
