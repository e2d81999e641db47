//! CUDA allocations of every kind, each returned with the action that gives it back (run from
//! whatever thread drops the last tensor over it), and copies.

use super::context::ContextScope;
use super::driver::During;
use super::stream::raw;
use super::{calls, pinned, pool};
use crate::device::{Device, DeviceType};
use crate::error::{Error, Result};
use crate::storage::{ReleaseFn, Use};
use crate::stream::Stream;
use cudarc::driver::result as driver;
use cudarc::driver::sys;

fn size_of_request(bytes: i64) -> Result<usize> {
    usize::try_from(bytes.max(1))
        .map_err(|_| Error::invalid_argument(format!("allocation size {bytes} is negative")))
}

/// Allocates `bytes` (at least 1) of `device`'s kind of CUDA memory, ordered on `stream` (`None`:
/// usable on every stream when this returns). Returns the address and the action that gives it
/// back after the last work on it, without blocking the host: device memory comes from the
/// device's stream-ordered pool (`cuda::pool`), page-locked memory from the pinned cache
/// (`cuda::pinned`). Managed memory is allocated and freed directly (`cuMemFree` of managed
/// memory waits for the device).
pub(crate) fn allocate(
    device: Device,
    bytes: i64,
    stream: Option<Stream>,
) -> Result<(u64, ReleaseFn)> {
    let size = size_of_request(bytes)?;
    let ordinal = device.ordinal;
    match device.kind {
        DeviceType::TB_DEVICE_CUDA => {
            let ptr = pool::allocate(ordinal, size, stream)?;
            Ok((
                ptr,
                Box::new(move |uses: &[Use]| {
                    let _ = pool::free(ordinal, ptr, size, uses);
                }),
            ))
        }
        DeviceType::TB_DEVICE_CUDA_HOST => {
            let (ptr, class) = pinned::allocate(ordinal, size)?;
            Ok((
                ptr,
                Box::new(move |uses: &[Use]| {
                    let _ = pinned::free(ordinal, ptr, class, uses);
                }),
            ))
        }
        DeviceType::TB_DEVICE_CUDA_MANAGED => {
            let _scope = ContextScope::enter(ordinal)?;
            let global = sys::CUmemAttach_flags::CU_MEM_ATTACH_GLOBAL;
            crate::fault::driver_allocation("cuMemAllocManaged")?;
            // SAFETY: the context is current.
            let ptr =
                unsafe { driver::malloc_managed(size, global) }.during("cuMemAllocManaged")?;
            Ok((
                ptr,
                Box::new(move |uses: &[Use]| {
                    for marker in uses.iter().filter_map(|u| u.marker) {
                        super::stream::destroy_marker(ordinal, marker);
                    }
                    if let Ok(_scope) = ContextScope::enter(ordinal) {
                        // SAFETY: ptr came from cuMemAllocManaged and is freed once.
                        let _ = unsafe { driver::free_sync(ptr) };
                    }
                }),
            ))
        }
        DeviceType::TB_DEVICE_CPU => Err(Error::internal("cuda::memory::allocate called for CPU")),
    }
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
    crate::fault::driver_call("cuMemcpyAsync")?;
    // SAFETY: both ranges are valid for `size` bytes (staging buffers or validated tensors).
    unsafe { calls::copy_async(dst, src, size, raw(stream)) }.during("cuMemcpyAsync")
}
