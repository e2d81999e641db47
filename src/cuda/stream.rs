//! Ordering work between streams without blocking the host: an event recorded on the stream
//! that last wrote a tensor, waited on by the stream that uses it next (what the CUDA Array
//! Interface v3 asks of a consumer), and host synchronization.

use super::context::ContextScope;
use super::driver::During;
use crate::error::Result;
use crate::stream::Stream;
use cudarc::driver::result::{event, stream};
use cudarc::driver::sys;

/// The driver's handle of a stream.
pub(crate) fn raw(stream: Stream) -> sys::CUstream {
    stream.0 as sys::CUstream
}

/// Makes `consumer` wait, on the device, for all work enqueued so far on `producer`.
pub(crate) fn wait_for(ordinal: i32, consumer: Stream, producer: Stream) -> Result<()> {
    let _scope = ContextScope::enter(ordinal)?;
    let marker =
        event::create(sys::CUevent_flags::CU_EVENT_DISABLE_TIMING).during("cuEventCreate")?;
    // SAFETY: the event was just created; the streams are the caller's, valid per the contract.
    let ordered =
        unsafe { event::record(marker, raw(producer)) }.during("cuEventRecord").and_then(|()| {
            // SAFETY: as above.
            unsafe {
                stream::wait_event(
                    raw(consumer),
                    marker,
                    sys::CUevent_wait_flags::CU_EVENT_WAIT_DEFAULT,
                )
            }
            .during("cuStreamWaitEvent")
        });
    // The driver keeps the event alive until the wait has completed.
    // SAFETY: the event was created above and is destroyed once.
    let _ = unsafe { event::destroy(marker) };
    ordered
}

/// Blocks the host until the work queued on `stream` is done.
pub(crate) fn synchronize(ordinal: i32, stream: Stream) -> Result<()> {
    let _scope = ContextScope::enter(ordinal)?;
    // SAFETY: the caller's stream, valid per the contract.
    unsafe { stream::synchronize(raw(stream)) }.during("cuStreamSynchronize")
}
