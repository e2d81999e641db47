//! CUDA IPC through the driver's legacy handles: a device allocation's `cuIpcGetMemHandle`
//! handle and an interprocess event that orders the importer after the exporter's stream.
//!
//! Exporting: the handle names the whole allocation (`cuMemGetAddressRange`), so a tensor inside
//! it is sent as the handle plus an offset. The event comes from a per-device ring of
//! interprocess events, recorded on the exporter's stream: an importer that waits on an event
//! re-recorded since waits for later work as well — never less — so reuse is safe.
//!
//! Importing: a process may open a given handle only once (the driver refuses a second
//! `cuIpcOpenMemHandle` with `CUDA_ERROR_ALREADY_MAPPED`), so mappings are shared per handle and
//! counted; the last release closes the mapping.

use super::context::ContextScope;
use super::driver::{During, available, device};
use super::stream::raw;
use crate::error::{Error, Result};
use crate::stream::Stream;
use cudarc::driver::sys::{self, CUipcEventHandle, CUipcMemHandle};
use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::sync::{Mutex, MutexGuard, OnceLock};

/// Bytes of a driver IPC handle (memory or event).
pub(crate) const HANDLE_BYTES: usize = 64;

/// What an importer needs of an exported allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ExportedMemory {
    /// `cuIpcGetMemHandle` of the allocation.
    pub memory: [u8; HANDLE_BYTES],
    /// The tensor's address minus the allocation's base.
    pub offset: u64,
    /// Bytes of the whole allocation.
    pub allocation_bytes: u64,
    /// The exporting device's UUID.
    pub uuid: [u8; 16],
    /// `cuIpcGetEventHandle` of an event recorded on the exporter's stream.
    pub event: [u8; HANDLE_BYTES],
}

/// Interprocess events per device, reused round robin.
const EVENT_RING: usize = 64;

struct EventRing {
    events: Vec<usize>,
    next: usize,
}

fn rings() -> MutexGuard<'static, HashMap<i32, EventRing>> {
    static RINGS: OnceLock<Mutex<HashMap<i32, EventRing>>> = OnceLock::new();
    RINGS.get_or_init(Default::default).lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An open mapping of an imported allocation: base address, device, references.
#[derive(Clone, Copy)]
struct Mapping {
    base: u64,
    ordinal: i32,
    references: usize,
}

/// Open mappings of imported allocations, by handle bytes.
type Mappings = HashMap<[u8; HANDLE_BYTES], Mapping>;

fn mappings() -> MutexGuard<'static, Mappings> {
    static MAPPINGS: OnceLock<Mutex<Mappings>> = OnceLock::new();
    MAPPINGS.get_or_init(Default::default).lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn to_bytes<const N: usize>(raw: &[std::ffi::c_char; N]) -> [u8; N] {
    raw.map(|c| c as u8)
}

fn from_bytes<const N: usize>(bytes: &[u8; N]) -> [std::ffi::c_char; N] {
    bytes.map(|b| b as std::ffi::c_char)
}

/// The UUID of device `ordinal`.
pub(crate) fn uuid_of(ordinal: i32) -> Result<[u8; 16]> {
    let dev = device(ordinal)?;
    let mut uuid = MaybeUninit::<sys::CUuuid>::uninit();
    // SAFETY: a valid out-pointer and a device from cuDeviceGet.
    unsafe { sys::cuDeviceGetUuid_v2(uuid.as_mut_ptr(), dev) }
        .result()
        .during("cuDeviceGetUuid")?;
    // SAFETY: written by the successful call above.
    Ok(to_bytes(&unsafe { uuid.assume_init() }.bytes))
}

/// The ordinal of the local device whose UUID is `uuid`.
pub(crate) fn ordinal_of(uuid: &[u8; 16]) -> Result<i32> {
    let count = super::driver::device_count()?;
    for ordinal in 0..count {
        if uuid_of(ordinal)? == *uuid {
            return Ok(ordinal);
        }
    }
    let hex: String = uuid.iter().map(|b| format!("{b:02x}")).collect();
    Err(Error::invalid_argument(format!(
        "the descriptor's GPU (UUID {hex}) is not a device of this process ({count} device(s) \
         visible): it comes from another machine, or CUDA_VISIBLE_DEVICES hides that GPU here"
    )))
}

/// An interprocess event of device `ordinal` (the current context's), from the ring.
fn ring_event(ordinal: i32) -> Result<sys::CUevent> {
    let mut rings = rings();
    let ring = rings.entry(ordinal).or_insert_with(|| EventRing { events: Vec::new(), next: 0 });
    if ring.events.len() < EVENT_RING {
        let mut event = MaybeUninit::uninit();
        let flags = sys::CUevent_flags_enum::CU_EVENT_DISABLE_TIMING as u32
            | sys::CUevent_flags_enum::CU_EVENT_INTERPROCESS as u32;
        // SAFETY: valid out-pointer; the device's context is current (the caller's scope).
        unsafe { sys::cuEventCreate(event.as_mut_ptr(), flags) }
            .result()
            .during("cuEventCreate (interprocess)")?;
        // SAFETY: written by the successful call above.
        ring.events.push(unsafe { event.assume_init() } as usize);
        return Ok(*ring.events.last().expect("just pushed") as sys::CUevent);
    }
    let event = ring.events[ring.next];
    ring.next = (ring.next + 1) % EVENT_RING;
    Ok(event as sys::CUevent)
}

/// Exports the allocation holding device address `address` of device `ordinal`, with an event
/// recorded on `stream` after the work queued there so far.
pub(crate) fn export(address: u64, ordinal: i32, stream: Stream) -> Result<ExportedMemory> {
    available()?;
    let _scope = ContextScope::enter(ordinal)?;
    let (mut base, mut size) = (0 as sys::CUdeviceptr, 0usize);
    // SAFETY: valid out-pointers; the address is checked by the driver.
    unsafe { sys::cuMemGetAddressRange_v2(&mut base, &mut size, address) }
        .result()
        .during("cuMemGetAddressRange")?;
    let mut handle = MaybeUninit::<CUipcMemHandle>::uninit();
    // SAFETY: valid out-pointer; base is the start of a device allocation.
    let got = unsafe { sys::cuIpcGetMemHandle(handle.as_mut_ptr(), base) }.result();
    if let Err(error) = got {
        return Err(Error::not_supported(format!(
            "cuIpcGetMemHandle refused the allocation at {base:#x} ({error:?}): memory from a \
             stream-ordered pool (tensorbridge's own allocations, cudaMallocAsync, PyTorch with \
             expandable segments) is not exportable through legacy CUDA IPC in this version; \
             export memory from cudaMalloc / cuMemAlloc (PyTorch's and CuPy's default allocators)"
        )));
    }
    // SAFETY: written by the successful call above.
    let memory = to_bytes(&unsafe { handle.assume_init() }.reserved);
    let event = ring_event(ordinal)?;
    // SAFETY: event and stream belong to this device's context.
    unsafe { sys::cuEventRecord(event, raw(stream)) }.result().during("cuEventRecord")?;
    let mut event_handle = MaybeUninit::<CUipcEventHandle>::uninit();
    // SAFETY: valid out-pointer; an interprocess event.
    unsafe { sys::cuIpcGetEventHandle(event_handle.as_mut_ptr(), event) }
        .result()
        .during("cuIpcGetEventHandle")?;
    Ok(ExportedMemory {
        memory,
        offset: address - base,
        allocation_bytes: size as u64,
        uuid: uuid_of(ordinal)?,
        // SAFETY: written by the successful call above.
        event: to_bytes(&unsafe { event_handle.assume_init() }.reserved),
    })
}

/// Maps the allocation of `memory` into this process on device `ordinal` (once per handle;
/// counted), returning its base address. Each success must be paired with `close`.
pub(crate) fn open(memory: &[u8; HANDLE_BYTES], ordinal: i32) -> Result<u64> {
    let mut mappings = mappings();
    if let Some(entry) = mappings.get_mut(memory) {
        entry.references += 1;
        return Ok(entry.base);
    }
    let _scope = ContextScope::enter(ordinal)?;
    let handle = CUipcMemHandle { reserved: from_bytes(memory) };
    let mut base = 0 as sys::CUdeviceptr;
    let flags = sys::CUipcMem_flags_enum::CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS as u32;
    // SAFETY: valid out-pointer; the driver validates the handle.
    let opened = unsafe { sys::cuIpcOpenMemHandle_v2(&mut base, handle, flags) }.result();
    if let Err(error) = opened {
        return Err(Error::cuda(format!(
            "cuIpcOpenMemHandle failed ({error:?}): the exporting process has exited or freed the \
             memory, or the descriptor was made in this same process (a process cannot import \
             its own export; use the tensor itself)"
        )));
    }
    mappings.insert(*memory, Mapping { base, ordinal, references: 1 });
    Ok(base)
}

/// Drops one reference to the mapping of `memory`; the last closes it.
pub(crate) fn close(memory: &[u8; HANDLE_BYTES]) {
    let mut mappings = mappings();
    let Some(entry) = mappings.get_mut(memory) else { return };
    entry.references -= 1;
    if entry.references > 0 {
        return;
    }
    let Mapping { base, ordinal, .. } = *entry;
    mappings.remove(memory);
    if let Ok(_scope) = ContextScope::enter(ordinal) {
        // SAFETY: base came from cuIpcOpenMemHandle and no tensor uses it any more. A failure
        // leaves the mapping to the process's exit: nothing to report from a release.
        let _ = unsafe { sys::cuIpcCloseMemHandle(base) };
    }
}

/// Orders `stream` of device `ordinal` after the exporter's event `event`.
pub(crate) fn wait(event: &[u8; HANDLE_BYTES], ordinal: i32, stream: Stream) -> Result<()> {
    let _scope = ContextScope::enter(ordinal)?;
    let handle = CUipcEventHandle { reserved: from_bytes(event) };
    let mut opened = MaybeUninit::uninit();
    // SAFETY: valid out-pointer; the driver validates the handle.
    unsafe { sys::cuIpcOpenEventHandle(opened.as_mut_ptr(), handle) }
        .result()
        .during("cuIpcOpenEventHandle")?;
    // SAFETY: written by the successful call above.
    let opened = unsafe { opened.assume_init() };
    // SAFETY: the event and the stream belong to this device's context.
    let waited = unsafe { sys::cuStreamWaitEvent(raw(stream), opened, 0) }.result();
    // SAFETY: an event handle opened above; the wait has been enqueued (or failed).
    let _ = unsafe { sys::cuEventDestroy_v2(opened) };
    waited.during("cuStreamWaitEvent (the exporter's event)")
}
