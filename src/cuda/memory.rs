//! CUDA allocations: device, page-locked host and managed memory, each returned with the action
//! that frees it (run from whatever thread drops the last tensor over it).

use super::context::ContextScope;
use super::driver::check;
use crate::device::{Device, DeviceType};
use crate::error::{Error, Result};
use crate::storage::ReleaseFn;
use crate::stream::Stream;
use cudarc::driver::sys;
use std::ffi::c_void;

/// Allocates `bytes` (at least 1) of `device`'s kind of CUDA memory. Returns the address and the
/// action that frees it inside the same device's primary context.
pub(crate) fn allocate(device: Device, bytes: i64) -> Result<(u64, ReleaseFn)> {
    let size = usize::try_from(bytes.max(1))
        .map_err(|_| Error::invalid_argument(format!("allocation size {bytes} is negative")))?;
    let ordinal = device.ordinal;
    let _scope = ContextScope::enter(ordinal)?;
    match device.kind {
        DeviceType::TB_DEVICE_CUDA => {
            let mut ptr = 0;
            // SAFETY: the context is current; ptr is a valid out-pointer.
            check(unsafe { sys::cuMemAlloc_v2(&mut ptr, size) }, "cuMemAlloc")?;
            Ok((ptr, release(ordinal, move || unsafe { sys::cuMemFree_v2(ptr) })))
        }
        DeviceType::TB_DEVICE_CUDA_MANAGED => {
            let mut ptr = 0;
            let global = sys::CUmemAttach_flags::CU_MEM_ATTACH_GLOBAL as u32;
            // SAFETY: the context is current; ptr is a valid out-pointer.
            check(unsafe { sys::cuMemAllocManaged(&mut ptr, size, global) }, "cuMemAllocManaged")?;
            Ok((ptr, release(ordinal, move || unsafe { sys::cuMemFree_v2(ptr) })))
        }
        DeviceType::TB_DEVICE_CUDA_HOST => {
            let mut ptr: *mut c_void = std::ptr::null_mut();
            // Portable: usable from every context, like cudaMallocHost in the runtime.
            let flags = 0x01; // CU_MEMHOSTALLOC_PORTABLE
            // SAFETY: the context is current; ptr is a valid out-pointer.
            check(unsafe { sys::cuMemHostAlloc(&mut ptr, size, flags) }, "cuMemHostAlloc")?;
            let address = ptr as u64;
            Ok((
                address,
                release(ordinal, move || unsafe { sys::cuMemFreeHost(address as *mut c_void) }),
            ))
        }
        DeviceType::TB_DEVICE_CPU => Err(Error::internal("cuda::memory::allocate called for CPU")),
    }
}

/// Wraps a driver free call so it runs inside the device's primary context; a failure to free
/// (which the caller can no longer observe) is ignored.
fn release(ordinal: i32, free: impl FnOnce() -> sys::CUresult + Send + 'static) -> ReleaseFn {
    Box::new(move || {
        if let Ok(_scope) = ContextScope::enter(ordinal) {
            let _ = free();
        }
    })
}

/// Allocates `bytes` of device memory on `ordinal`, ordered on `stream` (stream-ordered
/// allocator): for staging buffers freed with [`free_async`] on the same stream.
pub(crate) fn allocate_async(ordinal: i32, bytes: i64, stream: Stream) -> Result<u64> {
    let _scope = ContextScope::enter(ordinal)?;
    let mut ptr = 0;
    let size =
        usize::try_from(bytes.max(1)).map_err(|_| Error::internal("negative staging size"))?;
    // SAFETY: the context is current; ptr is a valid out-pointer; the stream is the caller's.
    check(
        unsafe { sys::cuMemAllocAsync(&mut ptr, size, stream.0 as sys::CUstream) },
        "cuMemAllocAsync",
    )?;
    Ok(ptr)
}

/// Frees memory from [`allocate_async`] once the work queued on `stream` before it is done.
pub(crate) fn free_async(ordinal: i32, ptr: u64, stream: Stream) -> Result<()> {
    let _scope = ContextScope::enter(ordinal)?;
    // SAFETY: ptr came from allocate_async and is freed once.
    check(unsafe { sys::cuMemFreeAsync(ptr, stream.0 as sys::CUstream) }, "cuMemFreeAsync")
}

/// Copies `bytes` between any two addresses the driver knows or host memory (unified
/// addressing infers the direction), ordered on `stream`. From or to pageable host memory the
/// call returns only when the host buffer may be reused.
pub(crate) fn copy_bytes(
    ordinal: i32,
    dst: u64,
    src: u64,
    bytes: i64,
    stream: Stream,
) -> Result<()> {
    let _scope = ContextScope::enter(ordinal)?;
    let size = usize::try_from(bytes).map_err(|_| Error::internal("negative copy size"))?;
    // SAFETY: both ranges are valid for `size` bytes (staging buffers or validated tensors).
    check(unsafe { sys::cuMemcpyAsync(dst, src, size, stream.0 as sys::CUstream) }, "cuMemcpyAsync")
}
