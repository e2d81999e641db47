//! Tensors shared between processes (CUDA IPC): the descriptor one process sends another, and the
//! export and import that fill and read it.
//!
//! The descriptor is `DESCRIPTOR_BYTES` plain bytes, little-endian, that any channel can carry
//! (pipe, socket, shared-memory file, message queue):
//!
//! | bytes | field |
//! | --- | --- |
//! | 0–7 | magic `TBIPC\0\0\0` |
//! | 8–11, 12–15 | format version (1), descriptor size (512) |
//! | 16–19 | handle kind: 1 legacy `cuIpcGetMemHandle`, 2 pool pointer (`cuMemPoolExportPointer`) |
//! | 20–23 | flags: bit 0 read-only, bit 1 event (absent: the exporter's stream was done), bit 2 lease |
//! | 24–39 | the exporting GPU's UUID |
//! | 40–103, 104–167 | memory handle or pool export data, event handle (the importer waits on it) |
//! | 168–175, 176–183 | tensor offset in the allocation, allocation size (bytes) |
//! | 184–187, 188–191 | dtype (code, bits, lanes as u16), rank |
//! | 192–207 | layout labels (NUL-padded) |
//! | 208–327, 328–447 | shape, strides in bytes (15 × i64 each, unused entries 0) |
//! | 448–451, 452–459 | exporting process id, exporting process nonce |
//! | 460–463, 464–467 | lease slot and generation (`interop::lease`) |
//! | 468–475 | the pool's address in the exporting process (kind 2; names it, with the nonce) |
//! | 504–511 | checksum: `fnv::fnv1a` of bytes 0–503 |
//!
//! Import checks all of it before touching the driver: magic, version, size, checksum, that the
//! descriptor comes from another process that still runs, that the GPU is one of this process's
//! devices, and that the tensor's bytes lie inside the allocation. The exporter holds the tensor
//! until the import is released (a lease, `interop::lease`): the exporting application may drop
//! its own references as soon as the descriptor is sent.

use super::lease::{self, Lease};
use crate::cuda::ipc::{self as driver_ipc, ExportedMemory, HANDLE_BYTES, Memory};
use crate::device::{Device, DeviceType};
use crate::dims::Dims;
use crate::dtype::{DataType, TbDataType};
use crate::error::{Error, Result};
use crate::fnv::fnv1a;
use crate::layout::{Layout, TbLayout};
use crate::stream::Stream;
use crate::tensor::{Tensor, TensorDesc, byte_extent};
use std::ffi::c_char;

/// Bytes of a descriptor.
pub(crate) const DESCRIPTOR_BYTES: usize = 512;
const MAGIC: &[u8; 8] = b"TBIPC\0\0\0";
const VERSION: u32 = 1;
const LEGACY_HANDLE: u32 = 1;
const POOL_POINTER: u32 = 2;
const READ_ONLY: u32 = 1;
const HAS_EVENT: u32 = 2;
const HAS_LEASE: u32 = 4;
const MAX_RANK: usize = 15;
const CHECKSUMMED: usize = 504;

/// A descriptor's contents.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Shared {
    pub memory: ExportedMemory,
    pub readonly: bool,
    pub dtype: DataType,
    pub layout: Layout,
    pub shape: Dims,
    pub strides: Dims,
    /// The exporting process's id and nonce.
    pub process: u32,
    pub nonce: u64,
    /// What the import claims, so that the exporter holds the memory until it is released.
    pub lease: Option<Lease>,
}

/// Little-endian field writer over the descriptor.
struct Writer<'a>(&'a mut [u8; DESCRIPTOR_BYTES]);

impl Writer<'_> {
    fn put(&mut self, at: usize, bytes: &[u8]) {
        self.0[at..at + bytes.len()].copy_from_slice(bytes);
    }
}

fn read<const N: usize>(bytes: &[u8; DESCRIPTOR_BYTES], at: usize) -> [u8; N] {
    bytes[at..at + N].try_into().expect("in range")
}

fn u32_at(bytes: &[u8; DESCRIPTOR_BYTES], at: usize) -> u32 {
    u32::from_le_bytes(read(bytes, at))
}

fn u64_at(bytes: &[u8; DESCRIPTOR_BYTES], at: usize) -> u64 {
    u64::from_le_bytes(read(bytes, at))
}

impl Shared {
    /// The descriptor's bytes.
    pub(crate) fn encode(&self) -> [u8; DESCRIPTOR_BYTES] {
        let mut bytes = [0u8; DESCRIPTOR_BYTES];
        let mut w = Writer(&mut bytes);
        w.put(0, MAGIC);
        w.put(8, &VERSION.to_le_bytes());
        w.put(12, &(DESCRIPTOR_BYTES as u32).to_le_bytes());
        let (kind, handle, pool) = match self.memory.memory {
            Memory::Legacy(handle) => (LEGACY_HANDLE, handle, 0),
            Memory::Pool { pool, data, .. } => (POOL_POINTER, data, pool),
        };
        w.put(16, &kind.to_le_bytes());
        let flags = if self.readonly { READ_ONLY } else { 0 }
            | if self.memory.event.is_some() { HAS_EVENT } else { 0 }
            | if self.lease.is_some() { HAS_LEASE } else { 0 };
        w.put(20, &flags.to_le_bytes());
        w.put(24, &self.memory.uuid);
        w.put(40, &handle);
        w.put(104, &self.memory.event.unwrap_or([0; HANDLE_BYTES]));
        w.put(168, &self.memory.offset.to_le_bytes());
        w.put(176, &self.memory.allocation_bytes.to_le_bytes());
        let dtype = self.dtype.to_raw();
        w.put(184, &[dtype.code, dtype.bits]);
        w.put(186, &dtype.lanes.to_le_bytes());
        w.put(188, &(self.shape.len() as u32).to_le_bytes());
        w.put(192, &self.layout.as_bytes());
        for (i, (extent, stride)) in self.shape.iter().zip(self.strides.iter()).enumerate() {
            w.put(208 + 8 * i, &extent.to_le_bytes());
            w.put(328 + 8 * i, &stride.to_le_bytes());
        }
        w.put(448, &self.process.to_le_bytes());
        w.put(452, &self.nonce.to_le_bytes());
        if let Some(lease) = self.lease {
            w.put(460, &lease.slot.to_le_bytes());
            w.put(464, &lease.generation.to_le_bytes());
        }
        w.put(468, &pool.to_le_bytes());
        let checksum = fnv1a(&[&bytes[..CHECKSUMMED]]);
        bytes[CHECKSUMMED..].copy_from_slice(&checksum.to_le_bytes());
        bytes
    }

    /// Reads and checks a descriptor (no driver call).
    pub(crate) fn decode(bytes: &[u8; DESCRIPTOR_BYTES]) -> Result<Shared> {
        if &bytes[..8] != MAGIC {
            return Err(Error::invalid_argument(
                "not a tensorbridge IPC descriptor (its first 8 bytes are not \"TBIPC\\0\\0\\0\")",
            ));
        }
        let version = u32_at(bytes, 8);
        if version != VERSION {
            return Err(Error::invalid_argument(format!(
                "IPC descriptor format version {version}; this library reads version {VERSION}"
            )));
        }
        let size = u32_at(bytes, 12);
        if size as usize != DESCRIPTOR_BYTES {
            return Err(Error::invalid_argument(format!(
                "IPC descriptor of {size} bytes; version {VERSION} descriptors have {DESCRIPTOR_BYTES}"
            )));
        }
        if u64_at(bytes, CHECKSUMMED) != fnv1a(&[&bytes[..CHECKSUMMED]]) {
            return Err(Error::invalid_argument(
                "IPC descriptor checksum mismatch: the bytes were changed or cut on the way",
            ));
        }
        let nonce = u64_at(bytes, 452);
        let handle = read::<HANDLE_BYTES>(bytes, 40);
        let memory = match u32_at(bytes, 16) {
            LEGACY_HANDLE => Memory::Legacy(handle),
            POOL_POINTER => Memory::Pool { owner: nonce, pool: u64_at(bytes, 468), data: handle },
            kind => {
                return Err(Error::not_supported(format!(
                    "IPC handle kind {kind}; this library imports kinds {LEGACY_HANDLE} (legacy \
                     CUDA IPC) and {POOL_POINTER} (pool memory)"
                )));
            }
        };
        let flags = u32_at(bytes, 20);
        let [code, bits] = read::<2>(bytes, 184);
        let lanes = u16::from_le_bytes(read(bytes, 186));
        let dtype = DataType::from_raw(TbDataType { code, bits, lanes })?;
        let rank = u32_at(bytes, 188) as usize;
        if rank > MAX_RANK {
            return Err(Error::invalid_argument(format!(
                "IPC descriptor rank {rank} exceeds {MAX_RANK}"
            )));
        }
        let labels: [u8; 16] = read(bytes, 192);
        let layout = Layout::from_raw(TbLayout { labels: labels.map(|b| b as c_char) })?;
        let shape: Dims = (0..rank).map(|i| u64_at(bytes, 208 + 8 * i) as i64).collect();
        let strides: Dims = (0..rank).map(|i| u64_at(bytes, 328 + 8 * i) as i64).collect();
        let lease = (flags & HAS_LEASE != 0)
            .then(|| Lease { slot: u32_at(bytes, 460), generation: u32_at(bytes, 464) });
        Ok(Shared {
            memory: ExportedMemory {
                memory,
                offset: u64_at(bytes, 168),
                allocation_bytes: u64_at(bytes, 176),
                uuid: read(bytes, 24),
                event: (flags & HAS_EVENT != 0).then(|| read::<HANDLE_BYTES>(bytes, 104)),
            },
            readonly: flags & READ_ONLY != 0,
            dtype,
            layout,
            shape,
            strides,
            process: u32_at(bytes, 448),
            nonce,
            lease,
        })
    }
}

/// Exports `tensor` (CUDA device memory from `cudaMalloc`/`cuMemAlloc` or tensorbridge's own
/// pool) for another process, with an event recorded on `stream` after the work queued there:
/// the importer's stream waits on it. The tensor is held (leased) until the import is released.
pub(crate) fn export(tensor: &Tensor, stream: Stream) -> Result<[u8; DESCRIPTOR_BYTES]> {
    let device = tensor.device();
    if device.kind != DeviceType::TB_DEVICE_CUDA {
        return Err(Error::not_supported(format!(
            "only CUDA device memory is shared through CUDA IPC; this tensor is on {device} \
             (copy it to the GPU first)"
        )));
    }
    if tensor.element_count() == 0 {
        return Err(Error::invalid_argument("an empty tensor has no memory to share"));
    }
    // The lowest byte the tensor touches is what the handle's offset must reach.
    let (low, _) = byte_extent(tensor.shape(), tensor.strides(), tensor.dtype().item_size())?;
    let first = (tensor.data() as i64 + low) as u64;
    let allocated = tensor.storage().allocation();
    let mut memory = driver_ipc::export(first, device.ordinal, stream, allocated)?;
    memory.offset = (memory.offset as i64 - low) as u64; // back to element (0, …, 0)
    let shared = Shared {
        memory,
        readonly: tensor.is_readonly(),
        dtype: tensor.dtype(),
        layout: tensor.layout(),
        shape: tensor.shape().iter().copied().collect(),
        strides: tensor.strides().iter().copied().collect(),
        process: std::process::id(),
        nonce: driver_ipc::process_nonce(),
        lease: Some(lease::grant(tensor)?),
    };
    Ok(shared.encode())
}

/// Reads a descriptor this process exported (for `pool_fd` and `revoke`).
fn own_export(bytes: &[u8; DESCRIPTOR_BYTES]) -> Result<Shared> {
    let shared = Shared::decode(bytes)?;
    if shared.nonce != driver_ipc::process_nonce() {
        return Err(Error::invalid_argument(format!(
            "the descriptor was exported by process {}, not this one",
            shared.process
        )));
    }
    Ok(shared)
}

/// A new file descriptor for the memory pool of a descriptor this process exported, to send with
/// it (`SCM_RIGHTS`); `None` for memory that needs none (legacy handles).
pub(crate) fn pool_fd(bytes: &[u8; DESCRIPTOR_BYTES]) -> Result<Option<i32>> {
    let shared = own_export(bytes)?;
    match shared.memory.memory {
        Memory::Legacy(_) => Ok(None),
        Memory::Pool { .. } => {
            driver_ipc::pool_fd(driver_ipc::ordinal_of(&shared.memory.uuid)?).map(Some)
        }
    }
}

/// Ends the lease of a descriptor this process exported that was not imported (lost, or its
/// consumer gave up): the tensor is no longer held for it, and its import is refused.
pub(crate) fn revoke(bytes: &[u8; DESCRIPTOR_BYTES]) -> Result<()> {
    match own_export(bytes)?.lease {
        Some(lease) => lease::revoke(lease),
        None => Err(Error::invalid_argument("the descriptor holds no lease")),
    }
}

/// Imports a descriptor from another process as a tensor over the same memory, zero-copy, with
/// `stream` ordered after the exporter's event; pool memory needs the exporter's pool as
/// `pool_fd` the first time. The import is released with the last reference to the tensor (and
/// its views), after the work queued on it: then the mapping may close and the exporter's lease
/// ends.
pub(crate) fn import(
    bytes: &[u8; DESCRIPTOR_BYTES],
    pool_fd: Option<i32>,
    stream: Stream,
) -> Result<Tensor> {
    let shared = Shared::decode(bytes)?;
    if shared.nonce == driver_ipc::process_nonce() {
        return Err(Error::invalid_argument(
            "a process cannot import its own export (use the tensor itself)",
        ));
    }
    let item = shared.dtype.item_size();
    let (low, high) = byte_extent(&shared.shape, &shared.strides, item)?;
    let offset = shared.memory.offset as i64;
    let inside = offset.checked_add(low).is_some_and(|start| start >= 0)
        && offset.checked_add(high).is_some_and(|end| end as u64 <= shared.memory.allocation_bytes);
    if !inside {
        return Err(Error::invalid_argument(format!(
            "IPC descriptor: the tensor's bytes [{}, {}) lie outside the {}-byte allocation",
            offset.saturating_add(low),
            offset.saturating_add(high),
            shared.memory.allocation_bytes
        )));
    }
    let ordinal = driver_ipc::ordinal_of(&shared.memory.uuid)?;
    let lease = match shared.lease {
        Some(lease) => Some(lease::claim(shared.process, shared.nonce, lease)?),
        None => None,
    };
    let end_lease = || {
        if let Some(word) = lease {
            word.fetch_and(!lease::STATE_BITS, std::sync::atomic::Ordering::AcqRel);
        }
    };
    let memory = shared.memory.memory;
    let base = driver_ipc::open(&memory, ordinal, pool_fd).map_err(|error| {
        end_lease();
        Error {
            message: format!("{} (exporting process {})", error.message, shared.process),
            ..error
        }
    })?;
    if let Some(event) = &shared.memory.event
        && let Err(error) = driver_ipc::wait(event, ordinal, stream)
    {
        driver_ipc::close(&memory, &[], lease);
        return Err(error);
    }
    let desc = TensorDesc {
        data: base + shared.memory.offset,
        device: Device::cuda(ordinal),
        dtype: shared.dtype,
        shape: shared.shape,
        strides: Some(shared.strides),
        layout: shared.layout,
        readonly: shared.readonly,
    };
    // An invalid desc drops the release without running it: close the mapping here then.
    Tensor::adopt_ordered(desc, Box::new(move |uses| driver_ipc::close(&memory, uses, lease)))
        .inspect_err(|_| driver_ipc::close(&memory, &[], lease))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Shared {
        Shared {
            memory: ExportedMemory {
                memory: Memory::Pool { owner: 77, pool: 0x7f00_1234, data: [7; HANDLE_BYTES] },
                offset: 4096,
                allocation_bytes: 1 << 20,
                uuid: [9; 16],
                event: Some([3; HANDLE_BYTES]),
            },
            readonly: true,
            dtype: DataType::F32,
            layout: Layout::parse("NCHW").unwrap(),
            shape: [2, 3, 4, 5].into_iter().collect(),
            strides: [240, 80, 20, 4].into_iter().collect(),
            process: 1234,
            nonce: 77,
            lease: Some(Lease { slot: 12, generation: 3 }),
        }
    }

    #[test]
    fn descriptors_round_trip() {
        let shared = sample();
        assert_eq!(Shared::decode(&shared.encode()).unwrap(), shared);
        let mut idle = sample(); // the exporter's stream had finished: no event to wait on
        idle.memory.event = None;
        idle.lease = None;
        idle.memory.memory = Memory::Legacy([5; HANDLE_BYTES]);
        assert_eq!(Shared::decode(&idle.encode()).unwrap(), idle);
    }

    #[test]
    fn every_changed_byte_is_refused() {
        let bytes = sample().encode();
        for at in 0..DESCRIPTOR_BYTES {
            let mut changed = bytes;
            changed[at] ^= 0x40;
            assert!(Shared::decode(&changed).is_err(), "byte {at} changed and accepted");
        }
    }

    #[test]
    fn refusals_say_why() {
        let message = |bytes: &[u8; DESCRIPTOR_BYTES]| Shared::decode(bytes).unwrap_err().message;
        assert!(message(&[0; DESCRIPTOR_BYTES]).contains("not a tensorbridge IPC descriptor"));
        let mut newer = sample().encode();
        newer[8] = 2;
        assert!(message(&newer).contains("format version 2"));
        let mut cut = sample().encode();
        cut[300] ^= 1;
        assert!(message(&cut).contains("checksum mismatch"));
    }
}
