//! The one place that turns `*const TbTensor` into an `Arc` and back.
//!
//! Handles are `Arc<TbTensor>` pointers handed out with `Arc::into_raw`. Every live handle is
//! also recorded in a registry together with the number of references the C side holds, so that
//! a NULL, stale, foreign or double-released pointer is answered with
//! `TB_ERROR_INVALID_ARGUMENT` instead of undefined behaviour.

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// An opaque, reference-counted tensor handle. Create one with `tb_tensor_wrap`,
/// `tb_tensor_alloc` or a view function; add references with `tb_tensor_retain`; drop each with
/// `tb_tensor_release`. All functions taking a `TbTensor` are thread-safe.
pub struct TbTensor {
    pub(crate) tensor: Tensor,
}

/// Live handle addresses → references held by C callers.
fn registry() -> MutexGuard<'static, HashMap<usize, usize>> {
    static LIVE: OnceLock<Mutex<HashMap<usize, usize>>> = OnceLock::new();
    LIVE.get_or_init(Default::default).lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn unknown(name: &str, ptr: *const TbTensor) -> Error {
    if ptr.is_null() {
        return Error::invalid_argument(format!("{name} is NULL"));
    }
    Error::invalid_argument(format!(
        "{name} = {ptr:p} is not a live TbTensor handle (already released, or never created)"
    ))
}

/// Hands a tensor to C: a new handle holding one reference.
pub(crate) fn export(tensor: Tensor) -> *mut TbTensor {
    let raw = Arc::into_raw(Arc::new(TbTensor { tensor })) as *mut TbTensor;
    registry().insert(raw as usize, 1);
    raw
}

/// A new reference to the tensor behind a live handle; the handle itself is unaffected.
pub(crate) fn borrow(ptr: *const TbTensor, name: &str) -> Result<Arc<TbTensor>> {
    let live = registry();
    if !live.contains_key(&(ptr as usize)) {
        return Err(unknown(name, ptr));
    }
    // SAFETY: the registry holds ptr, so it came from Arc::into_raw and at least one strong
    // reference is outstanding; the lock keeps it from being released meanwhile.
    unsafe {
        Arc::increment_strong_count(ptr);
        Ok(Arc::from_raw(ptr))
    }
}

/// Adds a C-side reference to a live handle.
pub(crate) fn retain(ptr: *const TbTensor) -> Result<()> {
    let mut live = registry();
    let count = live.get_mut(&(ptr as usize)).ok_or_else(|| unknown("tensor", ptr))?;
    *count += 1;
    // SAFETY: as in borrow(): ptr is a live Arc pointer and the lock is held.
    unsafe { Arc::increment_strong_count(ptr) };
    Ok(())
}

/// Drops one C-side reference; the last one frees the handle (and, when no view shares it, the
/// tensor's storage, running its cleanup). NULL is a no-op.
pub(crate) fn release(ptr: *const TbTensor) -> Result<()> {
    if ptr.is_null() {
        return Ok(());
    }
    let reference = {
        let mut live = registry();
        let count = live.get_mut(&(ptr as usize)).ok_or_else(|| unknown("tensor", ptr))?;
        *count -= 1;
        if *count == 0 {
            live.remove(&(ptr as usize));
        }
        // SAFETY: ptr is live and this call owns one of its strong references.
        unsafe { Arc::from_raw(ptr) }
    };
    // Dropped outside the lock: a cleanup callback may call back into tensorbridge.
    drop(reference);
    Ok(())
}

/// Number of live handles (for leak checks in tests).
pub(crate) fn live_count() -> usize {
    registry().len()
}
