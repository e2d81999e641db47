//! Ordering work between streams without blocking the host: an event recorded on the stream
//! that last wrote a tensor, waited on by the stream that uses it next (what the CUDA Array
//! Interface v3 asks of a consumer).

use super::context::ContextScope;
use super::driver::check;
use crate::error::Result;
use crate::tensor::{Stream, Tensor};
use cudarc::driver::sys;

fn raw(stream: Stream) -> sys::CUstream {
    stream.0 as sys::CUstream
}

/// Makes `consumer` wait, on the device, for all work enqueued so far on `producer`.
pub fn wait_for(ordinal: i32, consumer: Stream, producer: Stream) -> Result<()> {
    let _scope = ContextScope::enter(ordinal)?;
    let mut event: sys::CUevent = std::ptr::null_mut();
    let flags = sys::CUevent_flags::CU_EVENT_DISABLE_TIMING as u32;
    // SAFETY: a context is current; event is a valid out-pointer.
    check(unsafe { sys::cuEventCreate(&mut event, flags) }, "cuEventCreate")?;
    // SAFETY: the event was just created; the streams are the caller's, valid per the contract.
    let recorded = check(unsafe { sys::cuEventRecord(event, raw(producer)) }, "cuEventRecord")
        .and_then(|()| {
            // SAFETY: as above.
            check(unsafe { sys::cuStreamWaitEvent(raw(consumer), event, 0) }, "cuStreamWaitEvent")
        });
    // The driver keeps the event alive until the wait has completed.
    // SAFETY: event was created above and is destroyed once.
    let _ = unsafe { sys::cuEventDestroy_v2(event) };
    recorded
}

/// Prepares `tensor` for use on `stream`: when its memory has pending work on another stream,
/// `stream` is made to wait for it; afterwards `stream` is the tensor's pending stream (work
/// enqueued there is what the next consumer must wait for). Host memory has nothing to order.
pub fn hand_off(tensor: &Tensor, stream: Stream) -> Result<()> {
    if !tensor.device().is_cuda() {
        return Ok(());
    }
    let storage = tensor.storage();
    if let Some(producer) = storage.pending_stream()
        && producer != stream
    {
        wait_for(tensor.device().ordinal, stream, producer)?;
    }
    storage.set_pending_stream(Some(stream));
    Ok(())
}

/// Blocks the host until the work queued on `stream` is done.
pub fn synchronize(ordinal: i32, stream: Stream) -> Result<()> {
    let _scope = ContextScope::enter(ordinal)?;
    // SAFETY: the caller's stream, valid per the contract.
    check(unsafe { sys::cuStreamSynchronize(raw(stream)) }, "cuStreamSynchronize")
}

/// Before the CPU touches `tensor` (pinned or managed memory): blocks until GPU work pending on
/// its memory is done, then clears the pending stream. Host memory without pending work returns
/// at once.
pub fn host_sync(tensor: &Tensor) -> Result<()> {
    let storage = tensor.storage();
    if let Some(pending) = storage.pending_stream() {
        synchronize(tensor.device().ordinal, pending)?;
        storage.set_pending_stream(None);
    }
    Ok(())
}
