//! Ordering work between streams without blocking the host: an event recorded on the stream
//! that last wrote a tensor, waited on by the stream that uses it next (what the CUDA Array
//! Interface v3 asks of a consumer), and host synchronization.

use super::context::ContextScope;
use super::driver::During;
use crate::error::Result;
use crate::storage::Use;
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

/// Records `marker` (a new event when `None`) on `stream` now, after the work enqueued there so
/// far; returns the event.
pub(crate) fn record_marker(ordinal: i32, stream: Stream, marker: Option<u64>) -> Result<u64> {
    let _scope = ContextScope::enter(ordinal)?;
    let event = match marker {
        Some(event) => event as sys::CUevent,
        None => {
            event::create(sys::CUevent_flags::CU_EVENT_DISABLE_TIMING).during("cuEventCreate")?
        }
    };
    // SAFETY: a live event of this context; the stream is the caller's, valid per the contract.
    let recorded = unsafe { event::record(event, raw(stream)) }.during("cuEventRecord");
    if let Err(error) = recorded {
        if marker.is_none() {
            // SAFETY: created above, destroyed once.
            let _ = unsafe { event::destroy(event) };
        }
        return Err(error);
    }
    Ok(event as u64)
}

/// Destroys a marker from `record_marker` (the driver keeps it until pending waits are done).
pub(crate) fn destroy_marker(ordinal: i32, marker: u64) {
    if let Ok(_scope) = ContextScope::enter(ordinal) {
        // SAFETY: a marker is destroyed once, by its storage's release or host sync.
        let _ = unsafe { event::destroy(marker as sys::CUevent) };
    }
}

/// Makes `target` wait, on the device, for every one of `uses`: a stream a consumer named is
/// marked now (its own later work included; the stream must still exist), otherwise the marker
/// recorded after tensorbridge's last work there is used (valid even if the stream is gone).
/// Destroys the markers afterwards.
pub(crate) fn wait_for_uses(ordinal: i32, target: Stream, uses: &[Use]) -> Result<()> {
    let _scope = ContextScope::enter(ordinal)?;
    let mut result = Ok(());
    for u in uses.iter().filter(|u| u.stream != target) {
        let marker = match (u.named, u.marker) {
            (true, existing) => record_marker(ordinal, u.stream, existing).map(Some),
            (false, existing) => Ok(existing),
        };
        let waited = marker.and_then(|marker| match marker {
            // SAFETY: a live event; the target stream is tensorbridge's own.
            Some(event) => unsafe {
                stream::wait_event(
                    raw(target),
                    event as sys::CUevent,
                    sys::CUevent_wait_flags::CU_EVENT_WAIT_DEFAULT,
                )
            }
            .during("cuStreamWaitEvent"),
            None => Ok(()),
        });
        result = result.and(waited);
    }
    for marker in uses.iter().filter_map(|u| u.marker) {
        destroy_marker(ordinal, marker);
    }
    result
}
