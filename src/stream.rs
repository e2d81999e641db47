//! CUDA streams as values: the driver's encoding of a stream, with the two special handles.

/// A CUDA stream in the driver's encoding: a `CUstream`/`cudaStream_t` address, or
/// `STREAM_LEGACY` (1) / `STREAM_PER_THREAD` (2). The C API's NULL stream is normalised to
/// `STREAM_LEGACY`, so two spellings of one stream compare equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Stream(pub u64);

impl Stream {
    /// The legacy default stream (`cudaStreamLegacy`, and what NULL means in the C API).
    pub(crate) const LEGACY: Stream = Stream(1);

    /// The per-thread default stream (`cudaStreamPerThread`).
    pub(crate) const PER_THREAD: Stream = Stream(2);

    /// Whether this is one of the default streams, which exist for the life of the context and
    /// so can be named at any time (an application-created stream may be destroyed).
    pub(crate) fn is_default(self) -> bool {
        self == Stream::LEGACY || self == Stream::PER_THREAD
    }

    /// A stream from a C API handle, where NULL (0) means the legacy default stream.
    pub(crate) fn from_handle(handle: u64) -> Stream {
        if handle == 0 { Stream::LEGACY } else { Stream(handle) }
    }
}
