//! Where tensorbridge's own memory comes from. Every allocation the library makes (tensors it
//! allocates, operation outputs, clones, copies to another device) goes through the `Allocator`
//! installed for the device kind — the built-in one, or one the application installed (RMM, its
//! own pool, PyTorch's caching allocator) — given the device, size, alignment and the stream
//! the memory is first used on. The release action it returns runs when the last tensor over the
//! memory goes, given the streams the memory was used on.

use crate::device::{Device, DeviceType};
use crate::error::{Error, Result};
use crate::storage::{ReleaseFn, TB_HOST_ALIGNMENT, allocate_host};
use crate::stream::Stream;
use std::sync::{Arc, RwLock};

/// Alignment of device memory from the built-in allocator (the pools give at least this).
pub(crate) const DEVICE_ALIGNMENT: i64 = 256;

/// What an allocation is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Request {
    /// The memory kind and device.
    pub device: Device,
    /// Bytes needed (≥ 0; a zero-byte request still gets a distinct address).
    pub bytes: i64,
    /// Required alignment of the address, in bytes (a power of two).
    pub alignment: i64,
    /// The stream on which the memory will first be used; `None`: usable on every stream as soon
    /// as the allocation returns.
    pub stream: Option<Stream>,
}

impl Request {
    /// A request for `bytes` on `device`, aligned as the built-in allocator aligns that kind.
    pub(crate) fn new(device: Device, bytes: i64, stream: Option<Stream>) -> Request {
        let alignment = match device.kind {
            DeviceType::TB_DEVICE_CUDA => DEVICE_ALIGNMENT,
            _ => TB_HOST_ALIGNMENT as i64,
        };
        Request { device, bytes, alignment, stream }
    }
}

/// Memory handed out by an allocator: its address and the action that gives it back.
pub(crate) struct Allocation {
    /// Address of the first byte.
    pub data: u64,
    /// Gives the memory back; runs exactly once.
    pub release: ReleaseFn,
}

/// A source of memory for tensors.
pub(crate) trait Allocator: Send + Sync + 'static {
    /// Allocates `request.bytes` bytes of `request.device`'s kind of memory.
    fn allocate(&self, request: &Request) -> Result<Allocation>;

    /// The allocator as `Any`, so the layer that installed it can recognise its own kind.
    fn as_any(&self) -> &dyn std::any::Any;
}

/// The built-in allocator: aligned, zeroed host memory for `TB_DEVICE_CPU`; the device's
/// stream-ordered pool, the pinned-memory cache or managed memory for the CUDA kinds.
pub(crate) struct BuiltIn;

impl Allocator for BuiltIn {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn allocate(&self, request: &Request) -> Result<Allocation> {
        if request.bytes < 0 {
            return Err(Error::invalid_argument(format!(
                "allocation size {} is negative",
                request.bytes
            )));
        }
        let (data, release) = match request.device.is_cuda() {
            false => allocate_host(request.bytes)?,
            true => crate::cuda::memory::allocate(request.device, request.bytes, request.stream)?,
        };
        Ok(Allocation { data, release })
    }
}

/// The device kinds an allocator can be installed for, in table order.
const KINDS: [DeviceType; 4] = [
    DeviceType::TB_DEVICE_CPU,
    DeviceType::TB_DEVICE_CUDA,
    DeviceType::TB_DEVICE_CUDA_HOST,
    DeviceType::TB_DEVICE_CUDA_MANAGED,
];

type Installed = [Option<Arc<dyn Allocator>>; KINDS.len()];

fn installed() -> &'static RwLock<Installed> {
    static INSTALLED: RwLock<Installed> = RwLock::new([None, None, None, None]);
    &INSTALLED
}

fn slot(kind: DeviceType) -> usize {
    KINDS.iter().position(|&k| k == kind).unwrap_or(0)
}

/// Installs `allocator` for every device of `kind` (`None` restores the built-in one). Memory
/// already allocated is given back to the allocator that made it.
pub(crate) fn install(kind: DeviceType, allocator: Option<Arc<dyn Allocator>>) {
    let mut table = installed().write().unwrap_or_else(|poisoned| poisoned.into_inner());
    table[slot(kind)] = allocator;
}

/// The allocator installed for `kind`, if the application installed one.
pub(crate) fn installed_for(kind: DeviceType) -> Option<Arc<dyn Allocator>> {
    let table = installed().read().unwrap_or_else(|poisoned| poisoned.into_inner());
    table[slot(kind)].clone()
}

/// Allocates `request` with the allocator installed for its device kind, or the built-in one.
pub(crate) fn allocate(request: &Request) -> Result<Allocation> {
    crate::fault::check("allocation")?;
    match installed_for(request.device.kind) {
        Some(allocator) => allocator.allocate(request),
        None => BuiltIn.allocate(request),
    }
}
