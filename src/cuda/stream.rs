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
    let marker = record_marker(ordinal, producer, None)?;
    let waited = wait_on(ordinal, consumer, marker);
    destroy_marker(ordinal, marker);
    waited
}

/// Makes `consumer` wait, on the device, for the work before `marker`'s last record.
fn wait_on(ordinal: i32, consumer: Stream, marker: u64) -> Result<()> {
    let _scope = ContextScope::enter(ordinal)?;
    crate::fault::driver_call("cuStreamWaitEvent")?;
    // SAFETY: a live event of this context; the stream is the caller's or tensorbridge's own.
    unsafe {
        stream::wait_event(
            raw(consumer),
            marker as sys::CUevent,
            sys::CUevent_wait_flags::CU_EVENT_WAIT_DEFAULT,
        )
    }
    .during("cuStreamWaitEvent")
}

/// Blocks the host until the work queued on `stream` is done.
pub(crate) fn synchronize(ordinal: i32, stream: Stream) -> Result<()> {
    let _scope = ContextScope::enter(ordinal)?;
    crate::fault::driver_call("cuStreamSynchronize")?;
    // SAFETY: the caller's stream, valid per the contract.
    unsafe { stream::synchronize(raw(stream)) }.during("cuStreamSynchronize")
}

/// Spare marker events per device, for reuse: creating and destroying an event per tensor costs
/// two driver calls. (A wait enqueued on an event is not affected by re-recording it later.)
fn spare_events() -> std::sync::MutexGuard<'static, Vec<(i32, u64)>> {
    static SPARE: std::sync::Mutex<Vec<(i32, u64)>> = std::sync::Mutex::new(Vec::new());
    SPARE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Spare events kept at most.
const MAX_SPARE_EVENTS: usize = 4096;

/// Records `marker` (a spare or new event when `None`) on `stream` now, after the work enqueued
/// there so far; returns the event.
pub(crate) fn record_marker(ordinal: i32, stream: Stream, marker: Option<u64>) -> Result<u64> {
    let _scope = ContextScope::enter(ordinal)?;
    let spare = || {
        let mut spare = spare_events();
        let index = spare.iter().rposition(|&(device, _)| device == ordinal)?;
        Some(spare.swap_remove(index).1)
    };
    let event = match marker.or_else(spare) {
        Some(event) => event as sys::CUevent,
        None => {
            crate::fault::driver_call("cuEventCreate")?;
            event::create(sys::CUevent_flags::CU_EVENT_DISABLE_TIMING).during("cuEventCreate")?
        }
    };
    // An injected failure of the record takes the path of a real one (the event is given back).
    let recorded = crate::fault::driver_call("cuEventRecord").and_then(|()| {
        // SAFETY: a live event of this context; the stream is the caller's, valid per the contract.
        unsafe { event::record(event, raw(stream)) }.during("cuEventRecord")
    });
    if let Err(error) = recorded {
        if marker.is_none() {
            // A failed record leaves the event unusable for this stream: destroy it.
            // SAFETY: created above, destroyed once.
            let _ = unsafe { event::destroy(event) };
        }
        return Err(error);
    }
    Ok(event as u64)
}

/// Gives back a marker from `record_marker`: kept as a spare, or destroyed (the driver keeps it
/// until pending waits are done).
pub(crate) fn destroy_marker(ordinal: i32, marker: u64) {
    let _release = crate::fault::suspend();
    {
        let mut spare = spare_events();
        if spare.len() < MAX_SPARE_EVENTS {
            spare.push((ordinal, marker));
            return;
        }
    }
    if let Ok(_scope) = ContextScope::enter(ordinal) {
        // SAFETY: a marker is destroyed once, by its storage's release or host sync.
        let _ = unsafe { event::destroy(marker as sys::CUevent) };
    }
}

/// Makes `target` wait, on the device, for every one of `uses`: a stream a consumer named, or a
/// default stream (which cannot be destroyed, so tensorbridge leaves no marker there), is marked
/// now, covering all work enqueued there so far; otherwise the marker recorded after
/// tensorbridge's last work there is used (valid even if the stream is gone). Gives the markers
/// back afterwards.
pub(crate) fn wait_for_uses(ordinal: i32, target: Stream, uses: &[Use]) -> Result<()> {
    let _scope = ContextScope::enter(ordinal)?;
    let mut result = Ok(());
    for u in uses {
        let mark_now = u.named || (u.marker.is_none() && u.stream.is_default());
        let marker = match (u.stream == target, mark_now) {
            (true, _) => Ok(u.marker), // stream order covers it; only give the marker back
            (false, true) => record_marker(ordinal, u.stream, u.marker).map(Some),
            (false, false) => Ok(u.marker),
        };
        match marker {
            Ok(Some(event)) => {
                if u.stream != target {
                    result = result.and(wait_on(ordinal, target, event));
                }
                destroy_marker(ordinal, event);
            }
            Ok(None) => {}
            Err(error) => result = result.and(Err(error)),
        }
    }
    result
}
