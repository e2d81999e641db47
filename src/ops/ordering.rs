//! Stream order around operations: before an operation enqueues work on a stream, that stream
//! waits (on the device) for the work still pending on each operand's memory; afterwards the
//! operation's stream is what the next consumer must wait for, and memory tensorbridge will free
//! gets a completion marker there. A consumer that names a stream (`hand_off`) is ordered the same
//! way. The CPU path waits on the host.

use crate::cuda::stream::{destroy_marker, record_marker, synchronize, wait_for};
use crate::error::Result;
use crate::stream::Stream;
use crate::tensor::Tensor;

/// Makes `stream` wait for the work pending on `tensor`'s memory, if it is on another stream, and
/// records `stream` as the pending one (`named`: a consumer's stream, whose own later work on the
/// memory tensorbridge cannot see).
fn order_on(tensor: &Tensor, stream: Stream, named: bool) -> Result<()> {
    if !tensor.device().is_cuda() {
        return Ok(());
    }
    let storage = tensor.storage();
    if let Some(producer) = storage.pending_stream()
        && producer != stream
    {
        wait_for(tensor.device().ordinal, stream, producer)?;
    }
    storage.record_use(stream, named);
    Ok(())
}

/// Prepares `tensor` for a consumer's use on `stream` (`tb_tensor_sync`, exports that name a
/// stream): `stream` waits for the pending work, and becomes the pending stream. A
/// tensorbridge-allocated tensor's free is then ordered after the consumer's work on `stream`.
pub(crate) fn hand_off(tensor: &Tensor, stream: Stream) -> Result<()> {
    order_on(tensor, stream, true)
}

/// Before an operation enqueues work on `stream` that reads or writes `tensor`.
pub(crate) fn before(tensor: &Tensor, stream: Stream) -> Result<()> {
    order_on(tensor, stream, false)
}

/// After an operation enqueued its work on `stream`: memory that tensorbridge will free gets a
/// completion marker there, so the free waits for this work even if the stream is gone by then
/// (default streams need none: they live as long as the context).
pub(crate) fn after(tensor: &Tensor, stream: Stream) -> Result<()> {
    let storage = tensor.storage();
    // Default streams cannot be destroyed: the free marks them when it happens.
    if !tensor.device().is_cuda() || !storage.wants_markers() || stream.is_default() {
        return Ok(());
    }
    let ordinal = tensor.device().ordinal;
    let marker = match record_marker(ordinal, stream, storage.marker_of(stream)) {
        Ok(marker) => marker,
        Err(error) => {
            // The work is enqueued but unmarked: a later stream-ordered free could overtake it.
            // Waiting for it here leaves nothing to order (the call still reports the failure).
            let _ = synchronize(ordinal, stream);
            return Err(error);
        }
    };
    if let Some(replaced) = storage.set_marker(stream, marker) {
        destroy_marker(ordinal, replaced);
    }
    Ok(())
}

/// Before the CPU touches `tensor` (pinned or managed memory): blocks until the GPU work on every
/// stream its memory was used on is done, then forgets those uses. Memory without GPU work
/// returns at once.
pub(crate) fn host_sync(tensor: &Tensor) -> Result<()> {
    let storage = tensor.storage();
    let ordinal = tensor.device().ordinal;
    for u in storage.uses() {
        synchronize(ordinal, u.stream)?;
    }
    for marker in storage.clear_uses().into_iter().filter_map(|u| u.marker) {
        destroy_marker(ordinal, marker);
    }
    Ok(())
}
