//! Peer access between GPUs, so a kernel on one device can read or write another's memory.

use super::context::ContextScope;
use super::driver::check;
use crate::error::{Error, Result};
use cudarc::driver::sys;

/// Lets device `from` access memory of device `to` (idempotent). Fails with
/// `TB_ERROR_NOT_SUPPORTED` when the two GPUs cannot reach each other directly.
pub(crate) fn enable_access(from: i32, to: i32) -> Result<()> {
    let (mut device_from, mut device_to, mut can) = (0, 0, 0);
    // SAFETY: valid out-pointers; check_ordinal ran inside ContextScope::enter below.
    let _scope = ContextScope::enter(from)?;
    check(unsafe { sys::cuDeviceGet(&mut device_from, from) }, "cuDeviceGet")?;
    super::driver::check_ordinal(to)?;
    // SAFETY: as above.
    check(unsafe { sys::cuDeviceGet(&mut device_to, to) }, "cuDeviceGet")?;
    // SAFETY: valid devices and out-pointer.
    check(
        unsafe { sys::cuDeviceCanAccessPeer(&mut can, device_from, device_to) },
        "cuDeviceCanAccessPeer",
    )?;
    if can == 0 {
        return Err(Error::not_supported(format!(
            "CUDA device {from} cannot access device {to} directly; copy through host memory"
        )));
    }
    let peer = {
        let _peer_scope = ContextScope::enter(to)?;
        let mut ctx: sys::CUcontext = std::ptr::null_mut();
        // SAFETY: a context is current; valid out-pointer.
        check(unsafe { sys::cuCtxGetCurrent(&mut ctx) }, "cuCtxGetCurrent")?;
        ctx
    };
    // SAFETY: `from`'s context is current; peer is `to`'s retained primary context.
    match unsafe { sys::cuCtxEnablePeerAccess(peer, 0) } {
        sys::CUresult::CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED => Ok(()),
        status => check(status, "cuCtxEnablePeerAccess"),
    }
}
