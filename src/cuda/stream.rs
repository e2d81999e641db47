//! Ordering work between streams without blocking the host: an event recorded on the stream
//! that last wrote a tensor, waited on by the stream that uses it next (what the CUDA Array
//! Interface v3 asks of a consumer), and host synchronization.

use super::context::ContextScope;
use super::driver::check;
use crate::error::Result;
use crate::stream::Stream;
use cudarc::driver::sys;

fn raw(stream: Stream) -> sys::CUstream {
    stream.0 as sys::CUstream
}

/// Makes `consumer` wait, on the device, for all work enqueued so far on `producer`.
pub(crate) fn wait_for(ordinal: i32, consumer: Stream, producer: Stream) -> Result<()> {
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

/// Blocks the host until the work queued on `stream` is done.
pub(crate) fn synchronize(ordinal: i32, stream: Stream) -> Result<()> {
    let _scope = ContextScope::enter(ordinal)?;
    // SAFETY: the caller's stream, valid per the contract.
    check(unsafe { sys::cuStreamSynchronize(raw(stream)) }, "cuStreamSynchronize")
}
