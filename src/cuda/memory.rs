//! CUDA allocations: device, page-locked host and managed memory, each returned with the action
//! that frees it (run from whatever thread drops the last tensor over it), and copies.

use super::calls;
use super::context::ContextScope;
use super::driver::During;
use super::stream::raw;
use crate::device::{Device, DeviceType};
use crate::error::{Error, Result};
use crate::storage::ReleaseFn;
use crate::stream::Stream;
use cudarc::driver::result as driver;
use cudarc::driver::sys;
use std::ffi::c_void;

/// `CU_MEMHOSTALLOC_PORTABLE`: pinned memory usable from every context, like `cudaMallocHost`.
const HOST_ALLOC_PORTABLE: u32 = 0x01;

fn size_of_request(bytes: i64) -> Result<usize> {
    usize::try_from(bytes.max(1))
        .map_err(|_| Error::invalid_argument(format!("allocation size {bytes} is negative")))
}

/// Allocates `bytes` (at least 1) of `device`'s kind of CUDA memory. Returns the address and the
/// action that frees it inside the same device's primary context.
pub(crate) fn allocate(device: Device, bytes: i64) -> Result<(u64, ReleaseFn)> {
    let size = size_of_request(bytes)?;
    let ordinal = device.ordinal;
    let _scope = ContextScope::enter(ordinal)?;
    match device.kind {
        DeviceType::TB_DEVICE_CUDA => {
            // SAFETY: the context is current.
            let ptr = unsafe { driver::malloc_sync(size) }.during("cuMemAlloc")?;
            // SAFETY: ptr came from cuMemAlloc and is freed once, by this release action.
            Ok((ptr, release(ordinal, move || unsafe { driver::free_sync(ptr) })))
        }
        DeviceType::TB_DEVICE_CUDA_MANAGED => {
            let global = sys::CUmemAttach_flags::CU_MEM_ATTACH_GLOBAL;
            // SAFETY: the context is current.
            let ptr =
                unsafe { driver::malloc_managed(size, global) }.during("cuMemAllocManaged")?;
            // SAFETY: ptr came from cuMemAllocManaged and is freed once.
            Ok((ptr, release(ordinal, move || unsafe { driver::free_sync(ptr) })))
        }
        DeviceType::TB_DEVICE_CUDA_HOST => {
            // SAFETY: the context is current.
            let ptr = unsafe { driver::malloc_host(size, HOST_ALLOC_PORTABLE) }
                .during("cuMemHostAlloc")? as u64;
            // SAFETY: ptr came from cuMemHostAlloc and is freed once.
            let free = move || unsafe { driver::free_host(ptr as *mut c_void) };
            Ok((ptr, release(ordinal, free)))
        }
        DeviceType::TB_DEVICE_CPU => Err(Error::internal("cuda::memory::allocate called for CPU")),
    }
}

/// Wraps a driver free call so it runs inside the device's primary context; a failure to free
/// (which the caller can no longer observe) is ignored.
fn release<E>(
    ordinal: i32,
    free: impl FnOnce() -> std::result::Result<(), E> + Send + 'static,
) -> ReleaseFn {
    Box::new(move || {
        if let Ok(_scope) = ContextScope::enter(ordinal) {
            let _ = free();
        }
    })
}

/// Allocates `bytes` of device memory on `ordinal`, ordered on `stream` (stream-ordered
/// allocator): for staging buffers freed with [`free_async`] on the same stream.
pub(crate) fn allocate_async(ordinal: i32, bytes: i64, stream: Stream) -> Result<u64> {
    let size = size_of_request(bytes)?;
    let _scope = ContextScope::enter(ordinal)?;
    // SAFETY: the context is current; the stream is the caller's.
    unsafe { driver::malloc_async(raw(stream), size) }.during("cuMemAllocAsync")
}

/// Frees memory from [`allocate_async`] once the work queued on `stream` before it is done.
pub(crate) fn free_async(ordinal: i32, ptr: u64, stream: Stream) -> Result<()> {
    let _scope = ContextScope::enter(ordinal)?;
    // SAFETY: ptr came from allocate_async and is freed once.
    unsafe { driver::free_async(ptr, raw(stream)) }.during("cuMemFreeAsync")
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
    unsafe { calls::copy_async(dst, src, size, raw(stream)) }.during("cuMemcpyAsync")
}
