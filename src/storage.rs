//! Who owns a tensor's memory: `Storage` runs the memory's release action exactly once, when the
//! last tensor over it goes, and remembers the stream whose work on the memory is still pending.
//! Host allocations are made here too (the CUDA kinds come from `crate::cuda::memory`).

use crate::error::{Error, Result};
use crate::stream::Stream;
use std::sync::{Arc, Mutex};

/// The action that gives memory back: a caller's cleanup callback or a deallocation.
pub(crate) type ReleaseFn = Box<dyn FnOnce() + Send>;

/// Owner of a tensor's memory. Its release action runs exactly once, when the last tensor that
/// shares it is dropped. Memory the caller wrapped without a cleanup has no release action.
/// It also remembers the stream on which work writing the memory was last enqueued (the
/// producer's stream from a CUDA Array Interface, or the stream of tensorbridge's last
/// operation), so consumers on other streams can be ordered after it.
pub(crate) struct Storage {
    release: Mutex<Option<ReleaseFn>>,
    pending: Mutex<Option<Stream>>,
}

impl Storage {
    /// A storage that runs `release` when the last tensor over it goes.
    pub(crate) fn with_release(release: Option<ReleaseFn>) -> Arc<Storage> {
        Arc::new(Storage { release: Mutex::new(release), pending: Mutex::new(None) })
    }

    /// The stream on which the memory's pending work was last enqueued, if any.
    pub(crate) fn pending_stream(&self) -> Option<Stream> {
        *self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records the stream on which work on the memory was last enqueued (`None`: no pending work).
    pub(crate) fn set_pending_stream(&self, stream: Option<Stream>) {
        *self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = stream;
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
            release();
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
    Ok((address, Box::new(move || drop(memory))))
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
        release();
    }
}
