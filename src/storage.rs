//! Who owns a tensor's memory: `Storage` runs the memory's release action exactly once, when the
//! last tensor over it goes, and remembers the streams its memory was used on, so that consumers
//! on other streams are ordered after that work and a stream-ordered free comes after all of it.
//! Host allocations are made here too (the CUDA kinds come from `crate::cuda`).

use crate::error::{Error, Result};
use crate::stream::Stream;
use std::sync::{Arc, Mutex};

/// The action that gives memory back: a caller's cleanup callback or a deallocation. It receives
/// the streams the memory was used on since the host last waited for it, oldest first (empty when
/// no GPU work is known), so a stream-ordered free can be ordered after all of that work.
pub(crate) type ReleaseFn = Box<dyn FnOnce(&[Stream]) + Send>;

/// Owner of a tensor's memory. Its release action runs exactly once, when the last tensor that
/// shares it is dropped. Memory the caller wrapped without a cleanup has no release action.
/// It also remembers the streams on which work on the memory was enqueued (the producer's stream
/// from a CUDA Array Interface, tensorbridge's operations, every stream a consumer named), oldest
/// first: the last is the pending stream that the next consumer must wait for.
pub(crate) struct Storage {
    release: Mutex<Option<ReleaseFn>>,
    streams: Mutex<Vec<Stream>>,
}

impl Storage {
    /// A storage that runs `release` when the last tensor over it goes.
    pub(crate) fn with_release(release: Option<ReleaseFn>) -> Arc<Storage> {
        Arc::new(Storage { release: Mutex::new(release), streams: Mutex::new(Vec::new()) })
    }

    fn streams_lock(&self) -> std::sync::MutexGuard<'_, Vec<Stream>> {
        self.streams.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The stream on which work on the memory was last enqueued, if any.
    pub(crate) fn pending_stream(&self) -> Option<Stream> {
        self.streams_lock().last().copied()
    }

    /// Every stream the memory was used on since the host last waited for it, oldest first.
    pub(crate) fn streams(&self) -> Vec<Stream> {
        self.streams_lock().clone()
    }

    /// Records that work on the memory was enqueued on `stream`, which becomes the pending stream.
    pub(crate) fn record_use(&self, stream: Stream) {
        let mut streams = self.streams_lock();
        streams.retain(|&s| s != stream);
        streams.push(stream);
    }

    /// Forgets every stream: the host has waited for all work on the memory.
    pub(crate) fn clear_streams(&self) {
        self.streams_lock().clear();
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
            let streams = std::mem::take(match self.streams.get_mut() {
                Ok(streams) => streams,
                Err(poisoned) => poisoned.into_inner(),
            });
            release(&streams);
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
