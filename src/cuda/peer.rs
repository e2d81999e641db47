//! Peer access between GPUs, so a kernel or copy on one device can read or write another's
//! memory — `cudaMalloc` memory through the contexts, pool memory through its pools.

use super::calls;
use super::context::{ContextScope, primary_context};
use super::driver::{During, device};
use crate::error::{Error, Result};

/// Lets device `from` access memory of device `to` (idempotent). Fails with
/// `ErrorKind::NotSupported` when the two GPUs cannot reach each other directly.
pub(crate) fn enable_access(from: i32, to: i32) -> Result<()> {
    let _scope = ContextScope::enter(from)?;
    let (device_from, device_to) = (device(from)?, device(to)?);
    // SAFETY: both devices came from cuDeviceGet.
    let can = unsafe { calls::can_access_peer(device_from, device_to) }
        .during("cuDeviceCanAccessPeer")?;
    if !can {
        return Err(Error::not_supported(format!(
            "CUDA device {from} cannot access device {to} directly; copy through host memory"
        )));
    }
    let peer = primary_context(to)?;
    // SAFETY: `from`'s context is current; peer is `to`'s retained primary context.
    match unsafe { calls::enable_peer_access(peer) } {
        Err(cudarc::driver::DriverError(
            cudarc::driver::sys::CUresult::CUDA_ERROR_PEER_ACCESS_ALREADY_ENABLED,
        )) => {}
        other => other.during("cuCtxEnablePeerAccess")?,
    }
    // Stream-ordered pool memory is not covered by context peer access: its pools grant it.
    super::pool::grant_access(to, from)
}
