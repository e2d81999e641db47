//! Primary contexts: the per-device context the CUDA runtime, PyTorch and CuPy share.
//!
//! Work is done inside a `ContextScope`, which pushes the device's primary context onto the
//! calling thread's stack and pops it when dropped, so the caller's current device is never
//! changed behind its back.

use super::calls;
use super::driver::{During, available, device};
use crate::error::Result;
use cudarc::driver::result::primary_ctx;
use cudarc::driver::sys::CUcontext;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// A retained primary context. Retained once per device and kept for the life of the process,
/// as the CUDA runtime does; stored as an address so the map is `Send`.
static PRIMARY: OnceLock<Mutex<HashMap<i32, usize>>> = OnceLock::new();

/// Device `ordinal`'s primary context, retained on first use.
pub(crate) fn primary_context(ordinal: i32) -> Result<CUcontext> {
    available()?;
    let map = PRIMARY.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(&ctx) = map.get(&ordinal) {
        return Ok(ctx as CUcontext);
    }
    let device = device(ordinal)?;
    // SAFETY: `device` came from cuDeviceGet.
    let ctx = unsafe { primary_ctx::retain(device) }.during("cuDevicePrimaryCtxRetain")?;
    map.insert(ordinal, ctx as usize);
    Ok(ctx)
}

/// The primary context of one device, current on this thread while the scope lives.
pub(crate) struct ContextScope {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl ContextScope {
    /// Makes device `ordinal`'s primary context current until the scope is dropped.
    pub(crate) fn enter(ordinal: i32) -> Result<ContextScope> {
        let ctx = primary_context(ordinal)?;
        crate::fault::driver_call("cuCtxPushCurrent")?;
        // SAFETY: ctx is a retained primary context, valid for the life of the process.
        unsafe { calls::push_current(ctx) }.during("cuCtxPushCurrent")?;
        Ok(ContextScope { _not_send: std::marker::PhantomData })
    }
}

impl Drop for ContextScope {
    fn drop(&mut self) {
        // SAFETY: enter() pushed exactly one context on this thread.
        let _ = unsafe { calls::pop_current() };
    }
}
