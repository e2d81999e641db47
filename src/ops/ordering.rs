//! Stream order around operations: before an operation enqueues work on a stream, that stream
//! waits (on the device) for the work still pending on each operand's memory, and afterwards the
//! operation's stream is what the next consumer must wait for. The CPU path waits on the host.

use crate::cuda::stream::{synchronize, wait_for};
use crate::error::Result;
use crate::stream::Stream;
use crate::tensor::Tensor;

/// Prepares `tensor` for use on `stream`: when its memory has pending work on another stream,
/// `stream` is made to wait for it; afterwards `stream` is the tensor's pending stream (work
/// enqueued there is what the next consumer must wait for). Host memory has nothing to order.
pub(crate) fn hand_off(tensor: &Tensor, stream: Stream) -> Result<()> {
    if !tensor.device().is_cuda() {
        return Ok(());
    }
    let storage = tensor.storage();
    if let Some(producer) = storage.pending_stream()
        && producer != stream
    {
        wait_for(tensor.device().ordinal, stream, producer)?;
    }
    storage.record_use(stream);
    Ok(())
}

/// Before the CPU touches `tensor` (pinned or managed memory): blocks until the GPU work on every
/// stream its memory was used on is done, then forgets those streams. Memory without GPU work
/// returns at once.
pub(crate) fn host_sync(tensor: &Tensor) -> Result<()> {
    let storage = tensor.storage();
    for stream in storage.streams() {
        synchronize(tensor.device().ordinal, stream)?;
    }
    storage.clear_streams();
    Ok(())
}
