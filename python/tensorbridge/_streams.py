"""CUDA streams given by the caller: the handle (a ``cudaStream_t`` as an int) of the usual stream
objects of PyTorch, CuPy, Numba and the ``__cuda_stream__`` protocol."""
from ._values import UINT64, integer


def stream_handle(stream):
    """A cudaStream_t as an int (None = the legacy default stream) from the usual stream objects."""
    if stream is None:
        return None
    if isinstance(stream, int):
        return integer(stream, "stream", UINT64)
    if hasattr(stream, "__cuda_stream__"):
        return integer(stream.__cuda_stream__()[1], "stream", UINT64)
    for attribute in ("cuda_stream", "ptr"):  # torch.cuda.Stream, cupy.cuda.Stream
        if hasattr(stream, attribute):
            return integer(getattr(stream, attribute), "stream", UINT64)
    handle = getattr(stream, "handle", None)  # numba
    if handle is not None:
        return integer(getattr(handle, "value", handle) or 0, "stream", UINT64)
    raise TypeError(f"cannot use {type(stream).__name__} as a CUDA stream")
