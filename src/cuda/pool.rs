//! Stream-ordered device memory from each device's current memory pool — the pool that
//! `cudaMallocAsync` users (the CUDA runtime, CuPy, PyTorch's async backend) share — so that
//! allocating and freeing never wait for other streams: `cuMemAllocFromPoolAsync` on the stream
//! the memory is first used on, `cuMemFreeAsync` after the last work on it, never `cuMemFree`
//! (which waits for the whole device).
//!
//! The pool's release threshold is raised once (when it is still the driver's default of 0), so
//! freed memory stays in the pool for reuse instead of going back to the driver at every
//! synchronisation; `trim` gives it back. Each device also gets two private non-blocking streams:
//! allocations that must be usable on any stream at once are made on the first and waited for,
//! and frees are enqueued on the second after it has been made to wait (on the device) for the
//! memory's last uses. Those synchronous allocations come from a private pool that may not reuse
//! memory by making the allocating stream wait for a pending free (the shared pool may, which
//! would make that wait reach, through the free, a busy stream of somebody else's).

use super::context::ContextScope;
use super::driver::{During, device};
use super::stream::{raw, wait_for_uses};
use crate::error::{Error, Result};
use crate::storage::Use;
use crate::stream::Stream;
use cudarc::driver::result::{self as driver, mem_pool};
use cudarc::driver::sys::{self, CUmemPool_attribute};
use std::sync::OnceLock;

/// Devices whose pool state can be kept (ordinals above this still work, uncached).
const CACHED_DEVICES: usize = 64;

/// A device's pool and quiet stream, kept for the life of the process; stored as addresses so
/// the table is `Sync`.
#[derive(Clone, Copy)]
struct DevicePool {
    /// The device's current pool, shared with `cudaMallocAsync` users.
    pool: usize,
    /// Whether tensorbridge's own pool was created shareable (POSIX file descriptors).
    shareable: bool,
    /// tensorbridge's own pool for synchronous allocations.
    own: usize,
    allocations: usize,
    frees: usize,
}

/// Sets a pool attribute whose value is a u64 or an int (passed as the driver expects).
fn set_attribute<T>(
    pool: sys::CUmemoryPool,
    attribute: CUmemPool_attribute,
    mut value: T,
) -> Result<()> {
    // SAFETY: a valid pool; the caller passes the attribute's value type.
    unsafe { mem_pool::set_attribute(pool, attribute, &mut value as *mut T as *mut _) }
        .during("cuMemPoolSetAttribute")
}

/// A pool attribute whose value is a u64 (the release threshold, the byte counters).
fn u64_attribute(pool: sys::CUmemoryPool, attribute: CUmemPool_attribute) -> Result<u64> {
    let mut value: u64 = 0;
    // SAFETY: a valid pool; the attribute's value is a u64.
    unsafe { mem_pool::get_attribute(pool, attribute, &mut value as *mut u64 as *mut _) }
        .during("cuMemPoolGetAttribute")?;
    Ok(value)
}

/// The handle type that makes a pool's memory exportable to other processes (a POSIX file
/// descriptor, sent with `SCM_RIGHTS`).
pub(crate) const SHAREABLE: sys::CUmemAllocationHandleType =
    sys::CUmemAllocationHandleType::CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;

/// Whether device `device` can export pool memory as POSIX file descriptors (the handle types
/// its memory pools support, a bit mask).
fn supports_shareable_pools(device: sys::CUdevice) -> bool {
    let attribute = sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MEMPOOL_SUPPORTED_HANDLE_TYPES;
    // SAFETY: a device from cuDeviceGet.
    let supported = unsafe { driver::device::get_attribute(device, attribute) };
    supported.is_ok_and(|mask| mask as u32 & SHAREABLE.0 != 0)
}

/// A pool of device `ordinal`'s memory that keeps freed memory and never reuses it by making an
/// allocating stream wait for a pending free. Its memory is exportable to other processes
/// (`cuda::ipc`) where the device supports POSIX file descriptor handles.
fn create_own_pool(ordinal: i32, shareable: bool) -> Result<sys::CUmemoryPool> {
    // SAFETY: all-zero is a valid CUmemPoolProps (no handle types, no limits).
    let mut props: sys::CUmemPoolProps = unsafe { std::mem::zeroed() };
    props.allocType = sys::CUmemAllocationType::CU_MEM_ALLOCATION_TYPE_PINNED;
    props.location.type_ = sys::CUmemLocationType::CU_MEM_LOCATION_TYPE_DEVICE;
    props.location.id = ordinal;
    if shareable {
        props.handleTypes = SHAREABLE;
    }
    // SAFETY: props is a valid CUmemPoolProps.
    let pool = unsafe { mem_pool::create(&props) }.during("cuMemPoolCreate")?;
    set_attribute(pool, CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, u64::MAX)?;
    let internal = CUmemPool_attribute::CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES;
    set_attribute(pool, internal, 0i32)?;
    Ok(pool)
}

fn cached(ordinal: i32) -> Option<&'static OnceLock<DevicePool>> {
    static TABLE: OnceLock<Vec<OnceLock<DevicePool>>> = OnceLock::new();
    let table = TABLE.get_or_init(|| (0..CACHED_DEVICES).map(|_| OnceLock::new()).collect());
    usize::try_from(ordinal).ok().and_then(|index| table.get(index))
}

fn open(ordinal: i32) -> Result<DevicePool> {
    let device = device(ordinal)?;
    // SAFETY: the device came from cuDeviceGet.
    let pool = unsafe { driver::device::get_mem_pool(device) }.during("cuDeviceGetMemPool")?;
    let attribute = CUmemPool_attribute::CU_MEMPOOL_ATTR_RELEASE_THRESHOLD;
    if u64_attribute(pool, attribute)? == 0 {
        set_attribute(pool, attribute, u64::MAX)?;
    }
    let shareable = supports_shareable_pools(device);
    let own = create_own_pool(ordinal, shareable)?;
    let create =
        || driver::stream::create(driver::stream::StreamKind::NonBlocking).during("cuStreamCreate");
    let (allocations, frees) = (create()?, create()?);
    Ok(DevicePool {
        pool: pool as usize,
        shareable,
        own: own as usize,
        allocations: allocations as usize,
        frees: frees as usize,
    })
}

/// The device's pool state; the caller has entered the device's context.
fn device_pool(ordinal: i32) -> Result<DevicePool> {
    let Some(slot) = cached(ordinal) else {
        return open(ordinal);
    };
    if let Some(state) = slot.get() {
        return Ok(*state);
    }
    let state = open(ordinal)?;
    // A racing thread may have stored its own: keep the first (the shared pool is the same; the
    // loser's own pool and two streams are leaked, once per device at most).
    Ok(*slot.get_or_init(|| state))
}

/// tensorbridge's own pool of device `ordinal` (synchronous allocations: the memory that other
/// processes can import); the caller has entered the device's context.
pub(crate) fn own_pool(ordinal: i32) -> Result<sys::CUmemoryPool> {
    Ok(device_pool(ordinal)?.own as sys::CUmemoryPool)
}

/// Lets device `accessor` read and write the memory of device `owner`'s pools (the shared one and
/// tensorbridge's own). Peer access between contexts (`cuCtxEnablePeerAccess`) does not extend
/// to stream-ordered pool memory: each pool grants it (`cuMemPoolSetAccess`). Idempotent; asked
/// of the driver once per pair.
pub(crate) fn grant_access(owner: i32, accessor: i32) -> Result<()> {
    static GRANTED: std::sync::Mutex<Vec<(i32, i32)>> = std::sync::Mutex::new(Vec::new());
    let mut granted = GRANTED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if granted.contains(&(owner, accessor)) {
        return Ok(());
    }
    let _scope = ContextScope::enter(owner)?;
    let state = device_pool(owner)?;
    for pool in [state.pool, state.own] {
        allow_read_write(pool as sys::CUmemoryPool, accessor)?;
    }
    granted.push((owner, accessor));
    Ok(())
}

/// Lets device `accessor` read and write the memory of `pool` (one of this process's or one
/// imported from another), unless it can already.
pub(crate) fn allow_read_write(pool: sys::CUmemoryPool, accessor: i32) -> Result<()> {
    let mut location = sys::CUmemLocation {
        type_: sys::CUmemLocationType::CU_MEM_LOCATION_TYPE_DEVICE,
        id: accessor,
    };
    let read_write = sys::CUmemAccess_flags::CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    let mut flags = std::mem::MaybeUninit::uninit();
    // SAFETY: valid pointers and a valid pool.
    let got = unsafe { sys::cuMemPoolGetAccess(flags.as_mut_ptr(), pool, &mut location) }.result();
    // SAFETY: written when the call succeeded.
    if got.is_ok() && unsafe { flags.assume_init() } == read_write {
        return Ok(());
    }
    let access = sys::CUmemAccessDesc { location, flags: read_write };
    // SAFETY: a valid pool and one valid access descriptor.
    unsafe { sys::cuMemPoolSetAccess(pool, &access, 1) }.result().during("cuMemPoolSetAccess")
}

/// Whether `own_pool(ordinal)` was created shareable; the caller has entered the context.
pub(crate) fn own_pool_is_shareable(ordinal: i32) -> Result<bool> {
    Ok(device_pool(ordinal)?.shareable)
}

fn out_of_memory(bytes: usize, ordinal: i32, error: Error) -> Error {
    Error {
        message: format!("cannot allocate {bytes} bytes on cuda:{ordinal}: {}", error.message),
        ..error
    }
}

/// Allocates `bytes` (at least 1) of device memory on `ordinal` from its pool, ordered on
/// `stream`: usable on `stream` at once and on other streams once ordered after it. With
/// `stream = None` the memory is usable on every stream when this returns (it is allocated on
/// the private allocation stream, which is waited for: it holds nothing else).
pub(crate) fn allocate(ordinal: i32, bytes: usize, stream: Option<Stream>) -> Result<u64> {
    let size = bytes.max(1);
    if let Some(ptr) = stream.and_then(|stream| reuse(ordinal, stream, size)) {
        return Ok(ptr);
    }
    let _scope = ContextScope::enter(ordinal)?;
    let state = device_pool(ordinal)?;
    let (pool, target) = match stream {
        Some(stream) => (state.pool, raw(stream)),
        None => (state.own, state.allocations as sys::CUstream),
    };
    crate::fault::driver_allocation("cuMemAllocFromPoolAsync")
        .map_err(|e| out_of_memory(size, ordinal, e))?;
    // SAFETY: a valid pool and stream; the memory is handed to a tensor that frees it once.
    let ptr = unsafe { mem_pool::alloc_async(pool as sys::CUmemoryPool, size, target) }
        .during("cuMemAllocFromPoolAsync")
        .map_err(|error| out_of_memory(size, ordinal, error))?;
    if stream.is_none() {
        let synchronized = crate::fault::driver_call("cuStreamSynchronize").and_then(|()| {
            // SAFETY: the allocation stream lives for the process.
            unsafe { driver::stream::synchronize(target) }.during("cuStreamSynchronize")
        });
        if let Err(error) = synchronized {
            // The block is nobody's yet: give it back in the allocation stream's order.
            // SAFETY: ptr came from the allocation above and is freed once, here.
            let _ = unsafe { driver::free_async(ptr, target) };
            return Err(error);
        }
    }
    Ok(ptr)
}

/// The private stream on which the memory of `uses` may be freed: made to wait (on the device)
/// for every use first. Never blocks the host.
pub(crate) fn free_stream_after(ordinal: i32, uses: &[Use]) -> Result<Stream> {
    let _scope = ContextScope::enter(ordinal)?;
    let frees = Stream(device_pool(ordinal)?.frees as u64);
    wait_for_uses(ordinal, frees, uses)?;
    Ok(frees)
}

/// A block freed in the order of a default stream, kept for the next allocation of the same size
/// on the same stream: stream order makes the reuse safe, and it saves the driver's allocate and
/// free calls in the common loop that allocates an output per call.
struct Cached {
    ordinal: i32,
    stream: Stream,
    size: usize,
    ptr: u64,
}

/// Bytes kept in the same-stream cache at most (per process).
const MAX_CACHED_BYTES: usize = 1 << 30;

fn cache() -> std::sync::MutexGuard<'static, Vec<Cached>> {
    static CACHE: std::sync::Mutex<Vec<Cached>> = std::sync::Mutex::new(Vec::new());
    CACHE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A cached block of exactly `size` bytes last freed on `stream`, if any.
fn reuse(ordinal: i32, stream: Stream, size: usize) -> Option<u64> {
    if !stream.is_default() {
        return None;
    }
    let mut cached = cache();
    let index = cached
        .iter()
        .rposition(|c| c.ordinal == ordinal && c.stream == stream && c.size == size)?;
    Some(cached.swap_remove(index).ptr)
}

/// Keeps a block freed in `stream`'s order for reuse; false when the cache is full.
fn keep(ordinal: i32, stream: Stream, size: usize, ptr: u64) -> bool {
    let mut cached = cache();
    let total: usize = cached.iter().map(|c| c.size).sum();
    if total + size > MAX_CACHED_BYTES {
        return false;
    }
    cached.push(Cached { ordinal, stream, size, ptr });
    true
}

/// Bytes of device `ordinal` held in the same-stream cache.
fn cached_bytes(ordinal: i32) -> u64 {
    cache().iter().filter(|c| c.ordinal == ordinal).map(|c| c.size as u64).sum()
}

/// Gives `ptr` (of `size` bytes) back after every one of `uses` (see `free_stream_after`).
/// Memory used on one default stream only (which cannot have been destroyed) is freed in that
/// stream's order: kept for reuse there, or given back to the pool on it.
pub(crate) fn free(ordinal: i32, ptr: u64, size: usize, uses: &[Use]) -> Result<()> {
    let frees = match uses {
        [only] if only.stream.is_default() => {
            wait_for_uses(ordinal, only.stream, uses)?;
            if keep(ordinal, only.stream, size.max(1), ptr) {
                return Ok(());
            }
            only.stream
        }
        _ => free_stream_after(ordinal, uses)?,
    };
    free_on(ordinal, ptr, frees)
}

/// Gives `ptr` back to the pool in the order of `stream`, after the work enqueued there so far
/// (the caller knows the memory's last use is on `stream`, and that `stream` exists).
pub(crate) fn free_on(ordinal: i32, ptr: u64, stream: Stream) -> Result<()> {
    let _scope = ContextScope::enter(ordinal)?;
    // SAFETY: ptr came from `allocate` and is freed once, after the work on `stream`.
    unsafe { driver::free_async(ptr, raw(stream)) }.during("cuMemFreeAsync")
}

/// Gives the pool's unused memory back to the driver, keeping at least `keep_bytes` reserved.
pub(crate) fn trim(ordinal: i32, keep_bytes: usize) -> Result<()> {
    let _scope = ContextScope::enter(ordinal)?;
    let state = device_pool(ordinal)?;
    let kept: Vec<Cached> = {
        let mut cached = cache();
        let (mine, others) = cached.drain(..).partition(|c| c.ordinal == ordinal);
        *cached = others;
        mine
    };
    for block in kept {
        free_on(ordinal, block.ptr, block.stream)?;
    }
    for pool in [state.pool, state.own] {
        // SAFETY: a valid pool.
        unsafe { mem_pool::trim_to(pool as sys::CUmemoryPool, keep_bytes) }
            .during("cuMemPoolTrimTo")?;
    }
    Ok(())
}

/// Bytes of the device's pools in use now (tensorbridge's own, and the shared one by everyone
/// sharing it), not counting freed memory kept for reuse (by the pools or tensorbridge's
/// same-stream cache): a diagnostic for leak checks.
pub(crate) fn used_bytes(ordinal: i32) -> Result<u64> {
    let _scope = ContextScope::enter(ordinal)?;
    let state = device_pool(ordinal)?;
    let attribute = CUmemPool_attribute::CU_MEMPOOL_ATTR_USED_MEM_CURRENT;
    let total = u64_attribute(state.pool as sys::CUmemoryPool, attribute)?
        + u64_attribute(state.own as sys::CUmemoryPool, attribute)?;
    Ok(total.saturating_sub(cached_bytes(ordinal)))
}
