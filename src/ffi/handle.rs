//! The one place that turns a `TbTensor*` into a tensor and back.
//!
//! A handle is not an address: it encodes a slot of a handle table and the slot's generation,
//! `(generation << 32) | (slot + 1)`, so it is never NULL. Each slot holds the tensor and the
//! number of references C holds on it, behind the slot's own lock; releasing the last reference
//! empties the slot and advances its generation. A NULL, never-issued, released or
//! double-released handle therefore names an empty slot or a slot of another generation, and is
//! answered with `TB_ERROR_INVALID_ARGUMENT`, even after the slot has been reused by a new
//! tensor (a stale handle cannot alias a newer one, as an address could). Calls on different
//! tensors never share a lock: only issuing a new handle and freeing a slot touch the free list.

#[cfg(not(target_pointer_width = "64"))]
compile_error!("tensorbridge handles encode a slot and a generation in a 64-bit pointer");

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// An opaque, reference-counted tensor handle. Create one with `tb_tensor_wrap`,
/// `tb_tensor_alloc` or a view function; add references with `tb_tensor_retain`; drop each with
/// `tb_tensor_release`. All functions taking a `TbTensor` are thread-safe.
pub struct TbTensor {
    _opaque: [u8; 0],
}

/// Slots per segment; segments are allocated on demand and never freed, so a slot's address
/// is stable and lookups need no lock.
const SEGMENT: usize = 1024;
/// Segments in the table: at most `SEGMENT × SEGMENTS` (4 Mi) handles alive at once.
const SEGMENTS: usize = 4096;

/// One slot: the generation of the handle that may use it, the tensor, and C's references.
#[derive(Default)]
struct SlotState {
    generation: u32,
    references: usize,
    tensor: Option<Arc<Tensor>>,
    /// The tensor's strides in elements, for borrowed DLPack descriptions of this handle: made
    /// on first request, kept (at a stable address) until the handle's last release.
    element_strides: Option<Box<[i64]>>,
}

#[derive(Default)]
struct Slot(Mutex<SlotState>);

struct Table {
    segments: Vec<OnceLock<Box<[Slot]>>>,
    /// Slots below this index have been handed out at least once.
    issued: AtomicU32,
    /// Emptied slots, ready for reuse.
    free: Mutex<Vec<u32>>,
    live: AtomicUsize,
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| Table {
        segments: (0..SEGMENTS).map(|_| OnceLock::new()).collect(),
        issued: AtomicU32::new(0),
        free: Mutex::new(Vec::new()),
        live: AtomicUsize::new(0),
    })
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Table {
    /// The slot at `index`, if it has ever been issued.
    fn slot(&self, index: u32) -> Option<&Slot> {
        if index >= self.issued.load(Ordering::Acquire) {
            return None;
        }
        let (segment, offset) = (index as usize / SEGMENT, index as usize % SEGMENT);
        self.segments.get(segment)?.get().map(|slots| &slots[offset])
    }

    /// A slot that holds nothing, for a new handle.
    fn vacant(&self) -> Result<u32> {
        crate::fault::check("handle")?;
        #[cfg(test)]
        if tests::FAIL_NEXT_CREATE.with(|fail| fail.replace(false)) {
            return Err(table_full());
        }
        if let Some(index) = lock(&self.free).pop() {
            return Ok(index);
        }
        let index = self.issued.load(Ordering::Acquire);
        let segment = index as usize / SEGMENT;
        if segment >= SEGMENTS {
            return Err(table_full());
        }
        self.segments[segment].get_or_init(|| (0..SEGMENT).map(|_| Slot::default()).collect());
        // Only one thread may extend the table at a time; a loser takes the next index.
        match self.issued.compare_exchange(index, index + 1, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => Ok(index),
            Err(_) => self.vacant(),
        }
    }
}

fn table_full() -> Error {
    Error::out_of_memory(format!(
        "{} TbTensor handles are alive; release some before creating more",
        SEGMENT * SEGMENTS
    ))
}

fn encode(index: u32, generation: u32) -> *mut TbTensor {
    ((u64::from(generation) << 32) | (u64::from(index) + 1)) as usize as *mut TbTensor
}

fn decode(handle: *const TbTensor) -> Option<(u32, u32)> {
    let value = handle as usize as u64;
    let index = (value & 0xffff_ffff).checked_sub(1)?;
    Some((index as u32, (value >> 32) as u32))
}

fn unknown(name: &str, handle: *const TbTensor) -> Error {
    if handle.is_null() {
        return Error::invalid_argument(format!("{name} is NULL"));
    }
    Error::invalid_argument(format!(
        "{name} = {handle:p} is not a live TbTensor handle (already released, or never created)"
    ))
}

/// Runs `body` on the state of the slot `handle` names, if the handle is live.
fn with_live<T>(
    handle: *const TbTensor,
    name: &str,
    body: impl FnOnce(&mut SlotState) -> T,
) -> Result<T> {
    let (index, generation) = decode(handle).ok_or_else(|| unknown(name, handle))?;
    let slot = table().slot(index).ok_or_else(|| unknown(name, handle))?;
    let mut state = lock(&slot.0);
    if state.generation != generation || state.tensor.is_none() {
        return Err(unknown(name, handle));
    }
    Ok(body(&mut state))
}

/// Hands a tensor to C: a new handle holding one reference.
pub(crate) fn create(tensor: Tensor) -> Result<*mut TbTensor> {
    let table = table();
    let index = table.vacant()?;
    let slot = table.slot(index).ok_or_else(|| Error::internal("vacant slot not issued"))?;
    let mut state = lock(&slot.0);
    state.references = 1;
    state.tensor = Some(Arc::new(tensor));
    table.live.fetch_add(1, Ordering::Relaxed);
    Ok(encode(index, state.generation))
}

/// Hands a tensor made by `Tensor::adopt` to C. On failure (the table is full) the caller's
/// release action is disarmed, not run: the memory stays the caller's, as every adopting
/// function (wrap, the array-interface and DLPack imports) promises.
pub(crate) fn create_adopted(tensor: Tensor) -> Result<*mut TbTensor> {
    tensor.hand_off_adopted(create)
}

/// A new shared reference to the tensor behind a live handle (the handle is unaffected): what
/// a C call works on, valid even if another thread releases the handle meanwhile.
pub(crate) fn clone_arc(handle: *const TbTensor, name: &str) -> Result<Arc<Tensor>> {
    with_live(handle, name, |state| state.tensor.clone())?
        .ok_or_else(|| Error::internal("live slot without a tensor"))
}

/// The tensor behind a live handle and the address of its strides in elements (computed with
/// `strides_in_elements` on first request), both valid until the handle's last release.
pub(crate) fn with_element_strides(
    handle: *const TbTensor,
    strides_in_elements: impl FnOnce(&Tensor) -> Result<Vec<i64>>,
) -> Result<(Arc<Tensor>, *const i64)> {
    with_live(handle, "tensor", |state| {
        let tensor =
            state.tensor.clone().ok_or_else(|| Error::internal("live slot without a tensor"))?;
        if state.element_strides.is_none() {
            state.element_strides = Some(strides_in_elements(&tensor)?.into_boxed_slice());
        }
        let strides = state.element_strides.as_ref().map_or(std::ptr::null(), |s| s.as_ptr());
        Ok((tensor, strides))
    })?
}

/// Adds a C-side reference to a live handle.
pub(crate) fn retain(handle: *const TbTensor) -> Result<()> {
    with_live(handle, "tensor", |state| state.references += 1)
}

/// Drops one C-side reference; the last one frees the handle (and, when no view shares it, the
/// tensor's storage, running its cleanup). NULL is a no-op.
pub(crate) fn release(handle: *const TbTensor) -> Result<()> {
    if handle.is_null() {
        return Ok(());
    }
    let emptied = with_live(handle, "tensor", |state| {
        state.references -= 1;
        if state.references > 0 {
            return None;
        }
        state.generation = state.generation.wrapping_add(1);
        state.element_strides = None;
        state.tensor.take()
    })?;
    if let Some(tensor) = emptied {
        let table = table();
        if let Some((index, _)) = decode(handle) {
            lock(&table.free).push(index);
        }
        table.live.fetch_sub(1, Ordering::Relaxed);
        // Dropped outside every lock: a cleanup callback may call back into tensorbridge.
        drop(tensor);
    }
    Ok(())
}

/// Number of live handles (for leak checks in tests).
pub(crate) fn live_count() -> usize {
    table().live.load(Ordering::Relaxed)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::device::Device;
    use crate::dtype::DataType;
    use crate::ffi::cai::{TbArrayInterface, tb_tensor_from_array_interface};
    use crate::ffi::dlpack::{
        TbDLManagedTensor, TbDLManagedTensorVersioned, TbDLPackVersion, TbDLTensor,
        tb_tensor_from_dlpack, tb_tensor_from_dlpack_versioned,
    };
    use crate::ffi::status::TbStatus;
    use crate::ffi::tensor::tb_tensor_wrap;
    use crate::layout::Layout;
    use crate::storage::Storage;
    use crate::tensor::TensorDesc;
    use std::cell::Cell;
    use std::ffi::{CStr, c_void};
    use std::sync::atomic::AtomicI32;

    thread_local! {
        /// Set by a test: the next handle this thread asks for fails as if the table were full.
        pub(crate) static FAIL_NEXT_CREATE: Cell<bool> = const { Cell::new(false) };
    }

    fn tensor() -> Tensor {
        let desc = TensorDesc {
            data: 0x1000,
            device: Device::CPU,
            dtype: DataType::U8,
            shape: [4].into(),
            strides: None,
            layout: Layout::NONE,
            readonly: false,
        };
        Tensor::new(desc, &Storage::with_release(None)).unwrap()
    }

    #[test]
    fn a_stale_handle_does_not_alias_the_tensor_that_reuses_its_slot() {
        let first = create(tensor()).unwrap();
        release(first).unwrap();
        let second = create(tensor()).unwrap();
        assert_eq!(decode(first).unwrap().0, decode(second).unwrap().0, "slot not reused");
        assert_ne!(first, second);
        let err = release(first).unwrap_err();
        assert!(err.message.contains("not a live TbTensor handle"), "{}", err.message);
        assert!(clone_arc(second, "tensor").is_ok(), "the stale release touched the new handle");
        release(second).unwrap();
    }

    #[test]
    fn null_and_foreign_values_are_refused() {
        assert!(clone_arc(std::ptr::null(), "src").unwrap_err().message.contains("src is NULL"));
        let foreign = 0x7fff_1234_5678usize as *const TbTensor;
        assert!(clone_arc(foreign, "tensor").is_err());
        assert!(retain(foreign).is_err());
    }

    #[test]
    fn references_count_down_to_the_last_release() {
        let handle = create(tensor()).unwrap();
        retain(handle).unwrap();
        release(handle).unwrap();
        assert!(clone_arc(handle, "tensor").is_ok());
        release(handle).unwrap();
        assert!(clone_arc(handle, "tensor").is_err());
    }

    static CLEANUPS: AtomicI32 = AtomicI32::new(0);
    static DELETES: AtomicI32 = AtomicI32::new(0);

    extern "C" fn count_cleanup(_context: *mut c_void, _data: *mut c_void) {
        CLEANUPS.fetch_add(1, Ordering::SeqCst);
    }
    extern "C" fn count_delete(_managed: *mut TbDLManagedTensor) {
        DELETES.fetch_add(1, Ordering::SeqCst);
    }
    extern "C" fn count_delete_versioned(_managed: *mut TbDLManagedTensorVersioned) {
        DELETES.fetch_add(1, Ordering::SeqCst);
    }

    /// Regression: a tensor that validated was dropped when its handle could not be made, which
    /// ran the caller's cleanup (or deleter) although the call failed and promised not to.
    #[test]
    fn adopting_calls_that_fail_to_make_a_handle_leave_the_memory_to_the_caller() {
        let mut data = [0f32; 4];
        let pointer = data.as_mut_ptr() as *mut c_void;
        let cpu = Device::CPU.to_raw();
        let mut shape = [4i64];
        let dl_tensor = TbDLTensor {
            data: pointer,
            device: cpu,
            ndim: 1,
            dtype: DataType::F32.to_raw(),
            shape: shape.as_mut_ptr(),
            strides: std::ptr::null_mut(),
            byte_offset: 0,
        };
        let mut legacy = TbDLManagedTensor {
            dl_tensor,
            manager_ctx: std::ptr::null_mut(),
            deleter: Some(count_delete),
        };
        let mut versioned = TbDLManagedTensorVersioned {
            version: TbDLPackVersion { major: 1, minor: 0 },
            manager_ctx: std::ptr::null_mut(),
            deleter: Some(count_delete_versioned),
            flags: 0,
            dl_tensor,
        };
        let mut interface = TbArrayInterface {
            version: 3,
            data: pointer,
            readonly: false,
            typestr: [0; crate::ffi::cai::TB_TYPESTR_CAPACITY],
            rank: 1,
            shape: [0; crate::layout::TB_MAX_RANK],
            strides: [0; crate::layout::TB_MAX_RANK],
            has_strides: false,
            stream: 0,
            has_stream: false,
            has_mask: false,
        };
        interface.shape[0] = 4;
        let (legacy, versioned) = (&raw mut legacy, &raw mut versioned);
        for (slot, byte) in interface.typestr.iter_mut().zip(b"<f4") {
            *slot = *byte as std::ffi::c_char;
        }
        type Call<'a> = (&'a str, Box<dyn Fn(*mut *mut TbTensor) -> TbStatus + 'a>);
        let calls: Vec<Call> = vec![
            (
                "tb_tensor_wrap",
                Box::new(|out| {
                    tb_tensor_wrap(
                        pointer,
                        cpu,
                        DataType::F32.to_raw(),
                        1,
                        shape.as_ptr(),
                        std::ptr::null(),
                        std::ptr::null(),
                        false,
                        Some(count_cleanup),
                        std::ptr::null_mut(),
                        out,
                    )
                }),
            ),
            (
                "tb_tensor_from_array_interface",
                Box::new(|out| {
                    tb_tensor_from_array_interface(
                        &interface,
                        std::ptr::null(),
                        Some(count_cleanup),
                        std::ptr::null_mut(),
                        out,
                    )
                }),
            ),
            (
                "tb_tensor_from_dlpack",
                Box::new(|out| tb_tensor_from_dlpack(legacy, std::ptr::null(), out)),
            ),
            (
                "tb_tensor_from_dlpack_versioned",
                Box::new(|out| tb_tensor_from_dlpack_versioned(versioned, std::ptr::null(), out)),
            ),
        ];
        for (name, call) in &calls {
            let before = (CLEANUPS.load(Ordering::SeqCst), DELETES.load(Ordering::SeqCst));
            FAIL_NEXT_CREATE.with(|fail| fail.set(true));
            let mut out = std::ptr::dangling_mut::<TbTensor>();
            assert_eq!(call(&mut out), TbStatus::TB_ERROR_OUT_OF_MEMORY, "{name}");
            assert!(out.is_null(), "{name}: *out is NULL on failure");
            // SAFETY: tb_last_error_message never returns NULL.
            let message = unsafe { CStr::from_ptr(crate::ffi::last_error_ptr()) };
            assert!(message.to_string_lossy().contains("handles are alive"), "{name}");
            let after = (CLEANUPS.load(Ordering::SeqCst), DELETES.load(Ordering::SeqCst));
            assert_eq!(after, before, "{name}: the caller's cleanup ran on a failed call");

            // The same call succeeds once a handle is available; releasing it runs the cleanup.
            assert_eq!(call(&mut out), TbStatus::TB_SUCCESS, "{name}");
            release(out).unwrap();
            let released = (CLEANUPS.load(Ordering::SeqCst), DELETES.load(Ordering::SeqCst));
            assert_eq!(released.0 + released.1, before.0 + before.1 + 1, "{name}");
        }
        drop(calls);
        let _ = data;
    }
}
