//! Where tensorbridge's own memory comes from. Every allocation the library makes (tensors it
//! allocates, operation outputs, clones) goes through an `Allocator`, given the device, the
//! size and the stream the memory's first use is ordered on; the release action it returns runs
//! when the last tensor over the memory goes.

use crate::device::Device;
use crate::error::{Error, Result};
use crate::storage::{ReleaseFn, allocate_host};
use crate::stream::Stream;

/// What an allocation is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Request {
    /// The memory kind and device.
    pub device: Device,
    /// Bytes needed (≥ 0; a zero-byte request still gets a distinct address).
    pub bytes: i64,
    /// The stream on which the memory will first be used.
    pub stream: Stream,
}

/// Memory handed out by an allocator: its address and the action that gives it back.
pub(crate) struct Allocation {
    /// Address of the first byte.
    pub data: u64,
    /// Gives the memory back; runs exactly once.
    pub release: ReleaseFn,
}

/// A source of memory for tensors.
pub(crate) trait Allocator: Send + Sync {
    /// Allocates `request.bytes` bytes of `request.device`'s kind of memory.
    fn allocate(&self, request: &Request) -> Result<Allocation>;
}

/// The built-in allocator: aligned, zeroed host memory for `TB_DEVICE_CPU`, the CUDA driver for
/// the CUDA kinds.
pub(crate) struct DefaultAllocator;

impl Allocator for DefaultAllocator {
    fn allocate(&self, request: &Request) -> Result<Allocation> {
        if request.bytes < 0 {
            return Err(Error::invalid_argument(format!(
                "allocation size {} is negative",
                request.bytes
            )));
        }
        let (data, release) = match request.device.is_cuda() {
            false => allocate_host(request.bytes)?,
            true => crate::cuda::memory::allocate(request.device, request.bytes)?,
        };
        Ok(Allocation { data, release })
    }
}

/// The allocator tensorbridge uses for `device`.
pub(crate) fn for_device(_device: Device) -> &'static dyn Allocator {
    &DefaultAllocator
}
