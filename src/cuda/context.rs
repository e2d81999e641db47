//! Primary contexts: the per-device context the CUDA runtime, PyTorch and CuPy share.
//!
//! Work is done inside a `ContextScope`, which pushes the device's primary context onto the
//! calling thread's stack and pops it when dropped, so the caller's current device is never
//! changed behind its back.

use super::driver::{available, check, check_ordinal};
use crate::error::Result;
use cudarc::driver::sys::{self, CUcontext};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// A retained primary context. Retained once per device and kept for the life of the process,
/// as the CUDA runtime does; stored as an address so the map is `Send`.
static PRIMARY: OnceLock<Mutex<HashMap<i32, usize>>> = OnceLock::new();

fn primary_context(ordinal: i32) -> Result<CUcontext> {
    available()?;
    let map = PRIMARY.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(&ctx) = map.get(&ordinal) {
        return Ok(ctx as CUcontext);
    }
    check_ordinal(ordinal)?;
    let mut device = 0;
    // SAFETY: the driver is initialised and the ordinal exists.
    check(unsafe { sys::cuDeviceGet(&mut device, ordinal) }, "cuDeviceGet")?;
    let mut ctx: CUcontext = std::ptr::null_mut();
    // SAFETY: `device` came from cuDeviceGet.
    check(unsafe { sys::cuDevicePrimaryCtxRetain(&mut ctx, device) }, "cuDevicePrimaryCtxRetain")?;
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
        // SAFETY: ctx is a retained primary context, valid for the life of the process.
        check(unsafe { sys::cuCtxPushCurrent_v2(ctx) }, "cuCtxPushCurrent")?;
        Ok(ContextScope { _not_send: std::marker::PhantomData })
    }
}

impl Drop for ContextScope {
    fn drop(&mut self) {
        let mut popped: CUcontext = std::ptr::null_mut();
        // SAFETY: enter() pushed exactly one context on this thread.
        let _ = unsafe { sys::cuCtxPopCurrent_v2(&mut popped) };
    }
}
