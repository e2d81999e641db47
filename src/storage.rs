//! Who owns a tensor's memory: `Storage` runs the memory's release action exactly once, when the
//! last tensor over it goes, and remembers the streams its memory was used on, so that consumers
//! on other streams are ordered after that work and a stream-ordered free comes after all of it.
//! Host allocations are made here too (the CUDA kinds come from `crate::cuda`).

use crate::error::{Error, Result};
use crate::stream::Stream;
use std::sync::{Arc, Mutex};

/// The action that gives memory back: a caller's cleanup callback or a deallocation. It receives
/// the memory's uses since the host last waited for it, oldest first (empty when no GPU work is
/// known), so a stream-ordered free can be ordered after all of that work.
pub(crate) type ReleaseFn = Box<dyn FnOnce(&[Use]) + Send>;

/// One stream the memory was used on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Use {
    /// The stream.
    pub stream: Stream,
    /// A CUDA event (its address) recorded after tensorbridge's last work on the memory on this
    /// stream, for memory whose free must be ordered after that work; events stay valid after the
    /// stream is destroyed.
    pub marker: Option<u64>,
    /// Whether a consumer named this stream (`tb_tensor_sync`, an export's stream, an import's
    /// producer stream): work of its own may follow on it, which a marker cannot cover.
    pub named: bool,
}

/// Owner of a tensor's memory. Its release action runs exactly once, when the last tensor that
/// shares it is dropped. Memory the caller wrapped without a cleanup has no release action.
/// It also remembers the streams on which work on the memory was enqueued (the producer's stream
/// from a CUDA Array Interface, tensorbridge's operations, every stream a consumer named), oldest
/// first: the last is the pending stream that the next consumer must wait for. Memory that
/// tensorbridge allocated also keeps a completion marker per stream, so its free can be ordered
/// after its last use without touching streams that may be gone by then.
pub(crate) struct Storage {
    release: Mutex<Option<ReleaseFn>>,
    uses: Mutex<Vec<Use>>,
    ordered_free: bool,
    /// For memory tensorbridge allocated: the allocation (first byte, bytes).
    allocation: Option<(u64, u64)>,
}

impl Storage {
    /// A storage that runs `release` when the last tensor over it goes.
    pub(crate) fn with_release(release: Option<ReleaseFn>) -> Arc<Storage> {
        Arc::new(Storage {
            release: Mutex::new(release),
            uses: Mutex::new(Vec::new()),
            ordered_free: false,
            allocation: None,
        })
    }

    /// A storage whose `release` is a stream-ordered free: operations leave completion markers.
    /// `allocation` is the allocation's (first byte, bytes) when tensorbridge made it.
    pub(crate) fn with_ordered_free(
        release: ReleaseFn,
        allocation: Option<(u64, u64)>,
    ) -> Arc<Storage> {
        Arc::new(Storage {
            release: Mutex::new(Some(release)),
            uses: Mutex::new(Vec::new()),
            ordered_free: true,
            allocation,
        })
    }

    /// The allocation (first byte, bytes) of memory tensorbridge allocated; `None` otherwise.
    pub(crate) fn allocation(&self) -> Option<(u64, u64)> {
        self.allocation
    }

    /// Whether operations should leave completion markers (see `Use::marker`).
    pub(crate) fn wants_markers(&self) -> bool {
        self.ordered_free
    }

    fn uses_lock(&self) -> std::sync::MutexGuard<'_, Vec<Use>> {
        self.uses.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The stream on which work on the memory was last enqueued, if any.
    pub(crate) fn pending_stream(&self) -> Option<Stream> {
        self.uses_lock().last().map(|u| u.stream)
    }

    /// Every use since the host last waited for the memory, oldest first.
    pub(crate) fn uses(&self) -> Vec<Use> {
        self.uses_lock().clone()
    }

    /// Records that work on the memory is enqueued on `stream` (by a consumer when `named`), which
    /// becomes the pending stream. A stream's marker is kept.
    pub(crate) fn record_use(&self, stream: Stream, named: bool) {
        let mut uses = self.uses_lock();
        let earlier = uses.iter().position(|u| u.stream == stream).map(|i| uses.remove(i));
        let marker = earlier.and_then(|u| u.marker);
        let named = named || earlier.is_some_and(|u| u.named);
        uses.push(Use { stream, marker, named });
    }

    /// The completion marker of `stream`'s use, if it has one.
    pub(crate) fn marker_of(&self, stream: Stream) -> Option<u64> {
        self.uses_lock().iter().find(|u| u.stream == stream).and_then(|u| u.marker)
    }

    /// Stores the completion marker of `stream`'s use; returns the marker it replaces, if any.
    pub(crate) fn set_marker(&self, stream: Stream, marker: u64) -> Option<u64> {
        let mut uses = self.uses_lock();
        match uses.iter_mut().find(|u| u.stream == stream) {
            Some(found) => found.marker.replace(marker).filter(|&old| old != marker),
            None => {
                uses.push(Use { stream, marker: Some(marker), named: false });
                None
            }
        }
    }

    /// Forgets every use (the host has waited for all work on the memory); returns them so their
    /// markers can be destroyed.
    pub(crate) fn clear_uses(&self) -> Vec<Use> {
        std::mem::take(&mut *self.uses_lock())
    }
}

impl Storage {
    /// Takes the release action out without running it: for a wrap that failed validation, whose
    /// memory still belongs to the caller.
    pub(crate) fn disarm(&self) -> Option<ReleaseFn> {
        self.release.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take()
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        let release = match self.release.get_mut() {
            Ok(slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(release) = release {
            let uses = std::mem::take(match self.uses.get_mut() {
                Ok(uses) => uses,
                Err(poisoned) => poisoned.into_inner(),
            });
            // A release reports to no one: fault injection does not fail it (src/fault.rs).
            let _release = crate::fault::suspend();
            release(&uses);
        }
    }
}

/// A block of host memory aligned to `TB_HOST_ALIGNMENT` bytes.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct AlignedBlock([u8; 64]);

/// Alignment of host memory allocated by tensorbridge (a cache line; enough for any dtype and SIMD).
pub const TB_HOST_ALIGNMENT: usize = 64;

/// Allocates zeroed, aligned host memory; returns its address and the action that frees it.
pub(crate) fn allocate_host(bytes: i64) -> Result<(u64, ReleaseFn)> {
    let blocks = usize::try_from(bytes)
        .map_err(|_| Error::invalid_argument(format!("allocation size {bytes} is negative")))?
        .div_ceil(TB_HOST_ALIGNMENT)
        .max(1);
    let mut memory: Vec<AlignedBlock> = Vec::new();
    memory.try_reserve_exact(blocks).map_err(|_| {
        Error::out_of_memory(format!("cannot allocate {bytes} bytes of host memory"))
    })?;
    memory.resize(blocks, AlignedBlock([0; 64]));
    let address = memory.as_mut_ptr() as u64;
    Ok((address, Box::new(move |_| drop(memory))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_allocation_is_aligned_and_zeroed() {
        // Dirty the heap first so that zeroes cannot come from fresh pages by chance.
        for _ in 0..64 {
            drop(vec![0xa5u8; 4096]);
        }
        let (address, release) = allocate_host(100).unwrap();
        assert_eq!(address % TB_HOST_ALIGNMENT as u64, 0);
        // SAFETY: allocate_host returned 100 readable bytes at address.
        let bytes = unsafe { std::slice::from_raw_parts(address as *const u8, 100) };
        assert!(bytes.iter().all(|&b| b == 0), "host allocation is not zeroed");
        release(&[]);
    }
}
