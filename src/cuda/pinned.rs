//! Page-locked host memory without stalls: `cuMemFreeHost` waits for the whole device, so freed
//! pinned blocks are kept in a cache instead, each with an event recorded after the last work
//! on it, and handed out again once that event has completed. Blocks come in power-of-two size
//! classes (at least 4 KiB) so they can be reused; `trim` frees the idle ones (and may wait).

use super::context::ContextScope;
use super::driver::During;
use super::stream::{destroy_marker, record_marker};
use crate::error::Result;
use crate::storage::Use;
use cudarc::driver::result::{self as driver, event};
use cudarc::driver::sys;
use std::ffi::c_void;
use std::sync::{Mutex, MutexGuard};

/// `CU_MEMHOSTALLOC_PORTABLE`: usable from every context, like `cudaMallocHost`.
const HOST_ALLOC_PORTABLE: u32 = 0x01;
/// The smallest size class.
const MIN_CLASS: usize = 4096;
/// Idle bytes kept at most; a block freed beyond this goes back to the driver.
const MAX_CACHED: usize = 4 << 30;

/// A freed block: its address, size class, and the event after its last use (None: no GPU work).
struct Idle {
    ptr: usize,
    class: usize,
    ordinal: i32,
    ready: Option<usize>,
}

fn cache() -> MutexGuard<'static, Vec<Idle>> {
    static CACHE: Mutex<Vec<Idle>> = Mutex::new(Vec::new());
    CACHE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn class_of(bytes: usize) -> usize {
    bytes.max(MIN_CLASS).next_power_of_two()
}

/// Whether the work before `ready` is done.
fn is_ready(ready: Option<usize>) -> bool {
    // SAFETY: the event was recorded by `free` and is given up only by `allocate`, `free` and
    // `trim`, after the block left the cache.
    ready.is_none_or(|e| unsafe { event::query(e as sys::CUevent) }.is_ok())
}

fn destroy_event(ready: Option<usize>) {
    if let Some(e) = ready {
        // SAFETY: created by `free`, destroyed once.
        let _ = unsafe { event::destroy(e as sys::CUevent) };
    }
}

/// Page-locked memory of at least `bytes` for a tensor on device `ordinal`: an idle cached
/// block whose last use is done, or a new one. Returns the address and the block's size class.
pub(crate) fn allocate(ordinal: i32, bytes: usize) -> Result<(u64, usize)> {
    let class = class_of(bytes);
    let reused = {
        let mut idle = cache();
        let index = idle.iter().position(|b| b.class == class && is_ready(b.ready));
        index.map(|index| idle.swap_remove(index))
    };
    if let Some(block) = reused {
        // The event is a marker from `free` (`record_marker`): give it back as a spare, as every
        // marker is. Destroying it cost the spare markers one event per reuse, so that once they
        // ran out a later operation had to create one.
        if let Some(ready) = block.ready {
            destroy_marker(block.ordinal, ready as u64);
        }
        return Ok((block.ptr as u64, class));
    }
    let _scope = ContextScope::enter(ordinal)?;
    crate::fault::driver_allocation("cuMemHostAlloc")?;
    // SAFETY: a context is current; the block is freed once, through `free`.
    let ptr =
        unsafe { driver::malloc_host(class, HOST_ALLOC_PORTABLE) }.during("cuMemHostAlloc")?;
    Ok((ptr as u64, class))
}

/// Returns a block from `allocate` to the cache, to be reused after every one of `uses`. Never
/// blocks the host, unless the cache is full.
pub(crate) fn free(ordinal: i32, ptr: u64, class: usize, uses: &[Use]) -> Result<()> {
    let _scope = ContextScope::enter(ordinal)?;
    let ready = match uses.is_empty() {
        true => None,
        false => {
            let frees = super::pool::free_stream_after(ordinal, uses)?;
            Some(record_marker(ordinal, frees, None)? as usize)
        }
    };
    let mut idle = cache();
    let cached: usize = idle.iter().map(|b| b.class).sum();
    if cached + class <= MAX_CACHED {
        idle.push(Idle { ptr: ptr as usize, class, ordinal, ready });
        return Ok(());
    }
    drop(idle);
    // Over the cap: wait for the block's last use, then give it back.
    if let Some(e) = ready {
        // SAFETY: created above.
        unsafe { event::synchronize(e as sys::CUevent) }.during("cuEventSynchronize")?;
    }
    destroy_event(ready);
    // SAFETY: the block came from cuMemHostAlloc, its last use is done, and it is freed once.
    unsafe { driver::free_host(ptr as *mut c_void) }.during("cuMemFreeHost")
}

/// Gives every idle block whose last use is done back to the driver (this may wait for the
/// device, as `cuMemFreeHost` does). Returns the bytes freed.
pub(crate) fn trim() -> usize {
    let ready: Vec<Idle> = {
        let mut idle = cache();
        let (done, busy): (Vec<Idle>, Vec<Idle>) =
            idle.drain(..).partition(|block| is_ready(block.ready));
        *idle = busy;
        done
    };
    let mut freed = 0;
    for block in ready {
        destroy_event(block.ready);
        if let Ok(_scope) = ContextScope::enter(block.ordinal) {
            // SAFETY: an idle block from cuMemHostAlloc whose last use is done; freed once.
            if unsafe { driver::free_host(block.ptr as *mut c_void) }.is_ok() {
                freed += block.class;
            }
        }
    }
    freed
}
