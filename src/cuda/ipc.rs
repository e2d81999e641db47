//! CUDA IPC: device memory of one process mapped into another, and an interprocess event that
//! orders the importer after the exporter's stream.
//!
//! Two kinds of memory are exportable:
//! - memory from `cuMemAlloc` / `cudaMalloc` (PyTorch's and CuPy's default allocators), through
//!   the driver's legacy handle (`cuIpcGetMemHandle`), which names the whole allocation: a tensor
//!   inside it travels as the handle plus an offset;
//! - memory from tensorbridge's own pool (`pool::own_pool`, created with POSIX file descriptor
//!   handles), through `cuMemPoolExportPointer`: the importer also needs the pool itself, as a
//!   file descriptor (`pool_fd`) passed with `SCM_RIGHTS`, once per exporting process.
//!
//! Exporting: the event comes from a per-device ring of interprocess events, recorded on the
//! exporter's stream: an importer that waits on an event re-recorded since waits for later work
//! as well — never less — so reuse is safe. Handles the driver gives for the same allocation or
//! event are remembered (a legacy handle by the allocation's process-unique buffer id).
//!
//! Importing: a process may map a given allocation only once, so mappings are shared per handle
//! and counted. A legacy mapping no longer used stays open (up to `IDLE_MAPPINGS`, the oldest
//! unmapped first, after the work queued on it is done): the next frame from the same buffer
//! maps nothing. A pool pointer is freed with its last release. Opened event handles and
//! imported pools are kept for the life of the process.

use super::calls;
use super::context::ContextScope;
use super::driver::{During, available, device};
use super::pool::{self, SHAREABLE};
use super::stream::{raw, synchronize};
use crate::error::{Error, Result};
use crate::storage::Use;
use crate::stream::Stream;
use cudarc::driver::sys::{self, CUipcEventHandle, CUipcMemHandle, CUpointer_attribute};
use std::collections::HashMap;
use std::ffi::c_void;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// Bytes of a driver IPC handle (memory or event) and of pool export data.
pub(crate) const HANDLE_BYTES: usize = 64;

/// How the importer reaches the memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Memory {
    /// A legacy `cuIpcGetMemHandle` handle of a `cuMemAlloc` allocation.
    Legacy([u8; HANDLE_BYTES]),
    /// `cuMemPoolExportPointer` data of an allocation from the pool `pool` (its address in the
    /// exporting process) of the exporting process whose nonce is `owner`.
    Pool { owner: u64, pool: u64, data: [u8; HANDLE_BYTES] },
}

/// What an importer needs of an exported allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ExportedMemory {
    /// The memory's handle.
    pub memory: Memory,
    /// The tensor's address minus the allocation's base.
    pub offset: u64,
    /// Bytes of the whole allocation.
    pub allocation_bytes: u64,
    /// The exporting device's UUID.
    pub uuid: [u8; 16],
    /// `cuIpcGetEventHandle` of an event recorded on the exporter's stream; `None` when that
    /// stream had finished its work at the export (nothing to wait for: recording an event would
    /// only make the GPU switch to the exporter's context and back).
    pub event: Option<[u8; HANDLE_BYTES]>,
}

fn locked<T>(mutex: &'static Mutex<T>) -> MutexGuard<'static, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A random number fixed for the life of this process, naming it in descriptors (a process id
/// can be reused; this cannot, in practice).
pub(crate) fn process_nonce() -> u64 {
    static NONCE: OnceLock<u64> = OnceLock::new();
    *NONCE.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.finish().max(1)
    })
}

fn to_bytes<const N: usize>(raw: &[std::ffi::c_char; N]) -> [u8; N] {
    raw.map(|c| c as u8)
}

fn from_bytes<const N: usize>(bytes: &[u8; N]) -> [std::ffi::c_char; N] {
    bytes.map(|b| b as std::ffi::c_char)
}

/// The UUID of device `ordinal` (asked once per device).
pub(crate) fn uuid_of(ordinal: i32) -> Result<[u8; 16]> {
    static UUIDS: Mutex<Vec<(i32, [u8; 16])>> = Mutex::new(Vec::new());
    if let Some(&(_, uuid)) = locked(&UUIDS).iter().find(|(known, _)| *known == ordinal) {
        return Ok(uuid);
    }
    let dev = device(ordinal)?;
    let mut uuid = MaybeUninit::<sys::CUuuid>::uninit();
    // SAFETY: a valid out-pointer and a device from cuDeviceGet.
    unsafe { sys::cuDeviceGetUuid_v2(uuid.as_mut_ptr(), dev) }
        .result()
        .during("cuDeviceGetUuid")?;
    // SAFETY: written by the successful call above.
    let uuid = to_bytes(&unsafe { uuid.assume_init() }.bytes);
    locked(&UUIDS).push((ordinal, uuid));
    Ok(uuid)
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

/// Interprocess events per device, reused round robin.
const EVENT_RING: usize = 64;

/// A ring event and its interprocess handle (the same for every record).
#[derive(Clone, Copy)]
struct RingEvent {
    event: usize,
    handle: [u8; HANDLE_BYTES],
}

struct EventRing {
    events: Vec<RingEvent>,
    next: usize,
}

/// An interprocess event of device `ordinal` (the current context's), from the ring.
fn ring_event(ordinal: i32) -> Result<RingEvent> {
    static RINGS: OnceLock<Mutex<HashMap<i32, EventRing>>> = OnceLock::new();
    let mut rings = locked(RINGS.get_or_init(Default::default));
    let ring = rings.entry(ordinal).or_insert_with(|| EventRing { events: Vec::new(), next: 0 });
    if ring.events.len() == EVENT_RING {
        let event = ring.events[ring.next];
        ring.next = (ring.next + 1) % EVENT_RING;
        return Ok(event);
    }
    let mut event = MaybeUninit::uninit();
    let flags = sys::CUevent_flags_enum::CU_EVENT_DISABLE_TIMING as u32
        | sys::CUevent_flags_enum::CU_EVENT_INTERPROCESS as u32;
    // SAFETY: valid out-pointer; the device's context is current (the caller's scope).
    unsafe { sys::cuEventCreate(event.as_mut_ptr(), flags) }
        .result()
        .during("cuEventCreate (interprocess)")?;
    // SAFETY: written by the successful call above.
    let event = unsafe { event.assume_init() };
    let mut handle = MaybeUninit::<CUipcEventHandle>::uninit();
    // SAFETY: valid out-pointer; an interprocess event.
    if let Err(error) = unsafe { sys::cuIpcGetEventHandle(handle.as_mut_ptr(), event) }.result() {
        // SAFETY: created above, destroyed once.
        let _ = unsafe { sys::cuEventDestroy_v2(event) };
        return Err(error).during("cuIpcGetEventHandle");
    }
    // SAFETY: written by the successful call above.
    let handle = to_bytes(&unsafe { handle.assume_init() }.reserved);
    let made = RingEvent { event: event as usize, handle };
    ring.events.push(made);
    Ok(made)
}

/// The driver's view of the allocation holding an address.
struct Allocation {
    base: u64,
    size: u64,
    /// Process-unique id of the allocation (never reused, unlike its address).
    buffer_id: u64,
    /// The pool it came from (0: not from a pool).
    pool: u64,
}

fn allocation_of(address: u64) -> Result<Allocation> {
    let mut attributes = [
        CUpointer_attribute::CU_POINTER_ATTRIBUTE_RANGE_START_ADDR,
        CUpointer_attribute::CU_POINTER_ATTRIBUTE_RANGE_SIZE,
        CUpointer_attribute::CU_POINTER_ATTRIBUTE_BUFFER_ID,
        CUpointer_attribute::CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE,
    ];
    let mut values = [0u64; 4];
    let mut slots = values.each_mut().map(|v| v as *mut u64 as *mut c_void);
    // SAFETY: four attributes, four writable 8-byte slots (each value is at most 8 bytes).
    unsafe { calls::pointer_attributes(&mut attributes, &mut slots, address) }
        .during("cuPointerGetAttributes")?;
    let [base, size, buffer_id, pool] = values;
    Ok(Allocation { base, size, buffer_id, pool })
}

/// The legacy handle of a `cuMemAlloc` allocation, remembered by its buffer id.
fn legacy_handle(allocation: &Allocation) -> Result<[u8; HANDLE_BYTES]> {
    /// Handles remembered at most (the table is emptied when full).
    const REMEMBERED: usize = 4096;
    static HANDLES: Mutex<Vec<(u64, [u8; HANDLE_BYTES])>> = Mutex::new(Vec::new());
    let id = allocation.buffer_id;
    if let Some(&(_, handle)) = locked(&HANDLES).iter().rev().find(|(known, _)| *known == id) {
        return Ok(handle);
    }
    let mut handle = MaybeUninit::<CUipcMemHandle>::uninit();
    // SAFETY: valid out-pointer; base is the start of a device allocation.
    let got = unsafe { sys::cuIpcGetMemHandle(handle.as_mut_ptr(), allocation.base) }.result();
    if let Err(error) = got {
        return Err(Error::not_supported(format!(
            "cuIpcGetMemHandle refused the allocation at {:#x} ({error:?}): memory the driver \
             cannot share through legacy CUDA IPC (virtual memory management, e.g. PyTorch with \
             expandable segments)",
            allocation.base
        )));
    }
    // SAFETY: written by the successful call above.
    let handle = to_bytes(&unsafe { handle.assume_init() }.reserved);
    let mut handles = locked(&HANDLES);
    if handles.len() == REMEMBERED {
        handles.clear();
    }
    handles.push((id, handle));
    Ok(handle)
}

/// The export data of an allocation from tensorbridge's own pool of device `ordinal`. The
/// driver's address range of pool memory is the pool's, not the allocation's: the allocation
/// (first byte, bytes) is what tensorbridge recorded when it allocated the memory.
fn pool_pointer(
    allocation: &mut Allocation,
    ordinal: i32,
    allocated: Option<(u64, u64)>,
) -> Result<Memory> {
    let own = pool::own_pool(ordinal)? as u64;
    let refused = |why: &str| {
        Err(Error::not_supported(format!(
            "the memory at {:#x} comes from a stream-ordered pool {why}: allocate the tensor to \
             share with tb_tensor_alloc (tensorbridge's shareable pool) or cudaMalloc",
            allocation.base
        )))
    };
    if allocation.pool != own {
        return refused(
            "created without a shareable handle type (cudaMallocAsync, tensorbridge's \
             asynchronous allocations, another library's pool)",
        );
    }
    let Some((base, size)) = allocated else {
        return refused("and was not allocated by tensorbridge (a view of it was wrapped)");
    };
    *allocation = Allocation { base, size, ..*allocation };
    exported_pool(ordinal)?;
    let mut data = MaybeUninit::<sys::CUmemPoolPtrExportData>::uninit();
    // SAFETY: valid out-pointer; base is the start of an allocation from a shareable pool.
    unsafe { sys::cuMemPoolExportPointer(data.as_mut_ptr(), base) }
        .result()
        .during("cuMemPoolExportPointer")?;
    // SAFETY: written by the successful call above.
    let data = unsafe { data.assume_init() }.reserved;
    Ok(Memory::Pool { owner: process_nonce(), pool: own, data })
}

/// Exports the allocation holding device address `address` of device `ordinal`, with an event
/// recorded on `stream` after the work queued there so far (none when that work is done). `allocated` is the allocation (first
/// byte, bytes) when tensorbridge made it (needed for pool memory).
pub(crate) fn export(
    address: u64,
    ordinal: i32,
    stream: Stream,
    allocated: Option<(u64, u64)>,
) -> Result<ExportedMemory> {
    available()?;
    let _scope = ContextScope::enter(ordinal)?;
    let mut allocation = allocation_of(address)?;
    let memory = match allocation.pool {
        0 => Memory::Legacy(legacy_handle(&allocation)?),
        _ => pool_pointer(&mut allocation, ordinal, allocated)?,
    };
    // SAFETY: a stream of this device's context (the caller's contract).
    let finished = unsafe { sys::cuStreamQuery(raw(stream)) } == sys::CUresult::CUDA_SUCCESS;
    let event = match finished {
        true => None,
        false => {
            let event = ring_event(ordinal)?;
            // SAFETY: event and stream belong to this device's context.
            unsafe { sys::cuEventRecord(event.event as sys::CUevent, raw(stream)) }
                .result()
                .during("cuEventRecord")?;
            Some(event.handle)
        }
    };
    Ok(ExportedMemory {
        memory,
        offset: address - allocation.base,
        allocation_bytes: allocation.size,
        uuid: uuid_of(ordinal)?,
        event,
    })
}

/// The file descriptor of tensorbridge's own pool of device `ordinal`, exported once per process
/// and kept: the driver exports a pool's allocations (`cuMemPoolExportPointer`) only once the
/// pool itself has been exported.
fn exported_pool(ordinal: i32) -> Result<i32> {
    static EXPORTED: Mutex<Vec<(i32, i32)>> = Mutex::new(Vec::new());
    let mut exported = locked(&EXPORTED);
    if let Some(&(_, fd)) = exported.iter().find(|(known, _)| *known == ordinal) {
        return Ok(fd);
    }
    let pool = pool::own_pool(ordinal)?;
    if !pool::own_pool_is_shareable(ordinal)? {
        return Err(Error::not_supported(format!(
            "tensorbridge's pool on cuda:{ordinal} is not shareable: the driver reports no POSIX \
             file descriptor handles for this device; share cudaMalloc memory instead"
        )));
    }
    let mut fd: i32 = -1;
    // SAFETY: for POSIX file descriptor handles the out-pointer is an int; a valid pool.
    unsafe {
        sys::cuMemPoolExportToShareableHandle(
            &mut fd as *mut i32 as *mut c_void,
            pool,
            SHAREABLE,
            0,
        )
    }
    .result()
    .during("cuMemPoolExportToShareableHandle")?;
    exported.push((ordinal, fd));
    Ok(fd)
}

/// A new file descriptor for tensorbridge's own pool of device `ordinal`, for an importer of
/// its memory; the caller owns (and closes) it.
pub(crate) fn pool_fd(ordinal: i32) -> Result<i32> {
    available()?;
    let _scope = ContextScope::enter(ordinal)?;
    let fd = exported_pool(ordinal)?;
    // SAFETY: duplicates a descriptor this process keeps open.
    let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if copy < 0 {
        return Err(Error::out_of_memory(format!(
            "cannot duplicate the pool's file descriptor: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(copy)
}

/// Pools imported from other processes, by (exporter's nonce, pool address there).
fn imported_pools() -> MutexGuard<'static, HashMap<(u64, u64), usize>> {
    static POOLS: OnceLock<Mutex<HashMap<(u64, u64), usize>>> = OnceLock::new();
    locked(POOLS.get_or_init(Default::default))
}

/// The imported pool `(owner, pool)`, imported from `fd` (not taken over) the first time.
fn import_pool(owner: u64, pool: u64, fd: Option<i32>, ordinal: i32) -> Result<sys::CUmemoryPool> {
    let mut pools = imported_pools();
    if let Some(&known) = pools.get(&(owner, pool)) {
        return Ok(known as sys::CUmemoryPool);
    }
    let Some(fd) = fd.filter(|fd| *fd >= 0) else {
        return Err(Error::invalid_argument(
            "the tensor lives in the exporting process's memory pool, which this process has not \
             imported yet: pass the pool's file descriptor (tb_ipc_pool_fd in the exporter, sent \
             with SCM_RIGHTS; tb_ipc_send and tb_ipc_receive do both)",
        ));
    };
    let mut imported = MaybeUninit::uninit();
    // SAFETY: for POSIX file descriptor handles the handle is the descriptor itself, by value.
    unsafe {
        sys::cuMemPoolImportFromShareableHandle(
            imported.as_mut_ptr(),
            fd as isize as *mut c_void,
            SHAREABLE,
            0,
        )
    }
    .result()
    .during("cuMemPoolImportFromShareableHandle (the file descriptor is not the pool's?)")?;
    // SAFETY: written by the successful call above.
    let imported = unsafe { imported.assume_init() };
    pool::allow_read_write(imported, ordinal)?;
    pools.insert((owner, pool), imported as usize);
    Ok(imported)
}

/// An open mapping of an imported allocation: base address, device, references.
#[derive(Clone, Copy)]
struct Mapping {
    base: u64,
    ordinal: i32,
    references: usize,
    /// When it last became unused (a count of such events), for closing the oldest idle first.
    idle_since: u64,
}

/// Legacy mappings kept open, unused, per process: mapping an allocation costs far more than a
/// frame's worth of work, and producers hand out the same few buffers again and again. (Pool
/// pointers are freed at once: the driver asks importers to free them before the exporter does.)
const IDLE_MAPPINGS: usize = 16;

fn mappings() -> MutexGuard<'static, HashMap<Memory, Mapping>> {
    static MAPPINGS: OnceLock<Mutex<HashMap<Memory, Mapping>>> = OnceLock::new();
    locked(MAPPINGS.get_or_init(Default::default))
}

/// Maps the allocation `memory` into this process on device `ordinal` (once per allocation;
/// counted), returning its base address. Pool memory needs its pool: imported from `pool_fd`
/// the first time. Each success must be paired with `close`.
pub(crate) fn open(memory: &Memory, ordinal: i32, pool_fd: Option<i32>) -> Result<u64> {
    available()?;
    let mut mappings = mappings();
    if let Some(entry) = mappings.get_mut(memory) {
        entry.references += 1;
        return Ok(entry.base);
    }
    let _scope = ContextScope::enter(ordinal)?;
    let mut base = 0 as sys::CUdeviceptr;
    let opened = match memory {
        Memory::Legacy(handle) => {
            let handle = CUipcMemHandle { reserved: from_bytes(handle) };
            let flags = sys::CUipcMem_flags_enum::CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS as u32;
            // SAFETY: valid out-pointer; the driver validates the handle.
            unsafe { sys::cuIpcOpenMemHandle_v2(&mut base, handle, flags) }.result()
        }
        Memory::Pool { owner, pool, data } => {
            let pool = import_pool(*owner, *pool, pool_fd, ordinal)?;
            let mut data = sys::CUmemPoolPtrExportData { reserved: *data };
            // SAFETY: valid pointers; a pool imported from the exporter.
            unsafe { sys::cuMemPoolImportPointer(&mut base, pool, &mut data) }.result()
        }
    };
    if let Err(error) = opened {
        return Err(Error::cuda(format!(
            "the driver could not map the exported memory ({error:?}): the exporting process has \
             exited or freed it"
        )));
    }
    mappings.insert(*memory, Mapping { base, ordinal, references: 1, idle_since: 0 });
    Ok(base)
}

/// Takes the oldest idle legacy mapping out of `mappings` when more than `IDLE_MAPPINGS` are idle.
fn oldest_idle_beyond_limit(mappings: &mut HashMap<Memory, Mapping>) -> Option<Mapping> {
    let idle = || mappings.iter().filter(|(_, m)| m.references == 0);
    if idle().count() <= IDLE_MAPPINGS {
        return None;
    }
    let (&oldest, _) = idle().min_by_key(|(_, m)| m.idle_since)?;
    mappings.remove(&oldest)
}

/// Unmaps an idle legacy mapping once the work queued on it is done (unmapping does not wait for
/// work in flight: the host waits for the device's free stream, which waited for every use).
fn unmap(idle: Mapping) {
    let Ok(_scope) = ContextScope::enter(idle.ordinal) else { return };
    let drained = pool::free_stream_after(idle.ordinal, &[])
        .and_then(|frees| synchronize(idle.ordinal, frees));
    if drained.is_ok() {
        // SAFETY: base came from cuIpcOpenMemHandle and no tensor uses it any more. A failure
        // leaves the mapping to the process's exit.
        let _ = unsafe { sys::cuIpcCloseMemHandle(idle.base) };
    }
}

/// The bits of `close`'s word that it clears.
const DONE_BITS: u64 = 0xffff_ffff;

/// Clears the low 32 bits of the word `user_data` points to (a host function enqueued by
/// `close`).
unsafe extern "C" fn clear_word(user_data: *mut c_void) {
    // SAFETY: `close`'s caller promised a word that lives for the process.
    unsafe { &*(user_data as *const AtomicU64) }.fetch_and(!DONE_BITS, Ordering::AcqRel);
}

/// Drops one reference to the mapping of `memory`, once the work of `uses` on it is done: the
/// last frees a pool pointer, or leaves a legacy mapping open and idle (the oldest idle one
/// beyond `IDLE_MAPPINGS` is unmapped). Then the low 32 bits of `done` (a word that lives for the life of the
/// process) are cleared — after that work is done, without blocking the host where the driver
/// allows.
pub(crate) fn close(memory: &Memory, uses: &[Use], done: Option<&'static AtomicU64>) {
    let (last, evicted) = {
        let mut mappings = mappings();
        let Some(entry) = mappings.get_mut(memory) else { return };
        entry.references -= 1;
        let last = *entry;
        let mut evicted = None;
        if last.references == 0 {
            match memory {
                Memory::Legacy(_) => {
                    static IDLED: std::sync::atomic::AtomicU64 =
                        std::sync::atomic::AtomicU64::new(1);
                    entry.idle_since = IDLED.fetch_add(1, Ordering::Relaxed);
                    evicted = oldest_idle_beyond_limit(&mut mappings);
                }
                Memory::Pool { .. } => {
                    mappings.remove(memory);
                }
            }
        }
        (last, evicted)
    };
    let ordinal = last.ordinal;
    let Ok(_scope) = ContextScope::enter(ordinal) else { return };
    // The device's private free stream, made to wait for every use of the memory.
    let frees = pool::free_stream_after(ordinal, uses).ok();
    if let (Memory::Pool { .. }, 0) = (memory, last.references) {
        let stream = frees.map_or(std::ptr::null_mut(), raw);
        // SAFETY: base came from cuMemPoolImportPointer; freed once, after its uses.
        let _ = unsafe { sys::cuMemFreeAsync(last.base, stream) };
    }
    if let Some(idle) = evicted {
        unmap(idle);
    }
    let Some(done) = done else { return };
    let user_data = done as *const AtomicU64 as *mut c_void;
    let enqueued = frees.is_some_and(|frees| {
        // SAFETY: a host function that only stores to a word that lives for the process.
        unsafe { sys::cuLaunchHostFunc(raw(frees), Some(clear_word), user_data) }.result().is_ok()
    });
    if !enqueued {
        if let Some(frees) = frees {
            let _ = synchronize(ordinal, frees);
        }
        done.fetch_and(!DONE_BITS, Ordering::AcqRel);
    }
}

/// Event handles opened in this process, by handle bytes (the exporter's ring reuses a few).
fn opened_events() -> MutexGuard<'static, HashMap<[u8; HANDLE_BYTES], usize>> {
    static OPENED: OnceLock<Mutex<HashMap<[u8; HANDLE_BYTES], usize>>> = OnceLock::new();
    locked(OPENED.get_or_init(Default::default))
}

/// Event handles kept open at most (all are closed when the table is full).
const OPENED_EVENTS: usize = 1024;

/// Orders `stream` of device `ordinal` after the exporter's event `event`.
pub(crate) fn wait(event: &[u8; HANDLE_BYTES], ordinal: i32, stream: Stream) -> Result<()> {
    let _scope = ContextScope::enter(ordinal)?;
    let mut opened = opened_events();
    let local = match opened.get(event) {
        Some(&local) => local as sys::CUevent,
        None => {
            if opened.len() == OPENED_EVENTS {
                for (_, local) in opened.drain() {
                    // SAFETY: opened below; pending waits keep what they need.
                    let _ = unsafe { sys::cuEventDestroy_v2(local as sys::CUevent) };
                }
            }
            let handle = CUipcEventHandle { reserved: from_bytes(event) };
            let mut local = MaybeUninit::uninit();
            // SAFETY: valid out-pointer; the driver validates the handle.
            unsafe { sys::cuIpcOpenEventHandle(local.as_mut_ptr(), handle) }
                .result()
                .during("cuIpcOpenEventHandle")?;
            // SAFETY: written by the successful call above.
            let local = unsafe { local.assume_init() };
            opened.insert(*event, local as usize);
            local
        }
    };
    // SAFETY: the event and the stream belong to this device's context.
    unsafe { sys::cuStreamWaitEvent(raw(stream), local, 0) }
        .result()
        .during("cuStreamWaitEvent (the exporter's event)")
}
