"""Where the memory of tensors that tensorbridge allocates comes from: the library's built-in
allocator (stream-ordered CUDA pools, cached pinned memory), or one the application installs per
device kind — Python callables, or a ready adapter such as ``TorchAllocator``, which allocates
through PyTorch's caching allocator so tensorbridge outputs share PyTorch's pool.

Streams in the callbacks are ``cudaStream_t`` values as ints (1 is the legacy default stream), or
None: for ``allocate``, memory that must be usable on every stream at once; for ``free``, memory
with no known GPU work."""
import ctypes

from ._devices import _CODES, parse_device, public_device
from ._lib import ALLOCATE, FREE, Allocator, lib
from ._values import UINT64, integer

_STATUS_OUT_OF_MEMORY, _STATUS_INVALID_ARGUMENT, _STATUS_INTERNAL = 3, 1, 9
_LEGACY_STREAM = 1

# Every installed callback pair stays referenced for the life of the process: memory allocated
# through it may be freed long after another allocator is installed.
_installed: list = []


def _write_message(buffer, capacity, text):
    encoded = text.encode("utf-8", "replace")[: max(capacity - 1, 0)]
    ctypes.memmove(buffer, encoded + b"\0", len(encoded) + 1)


def _status_for(error):
    if isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError":
        return _STATUS_OUT_OF_MEMORY
    if isinstance(error, (TypeError, ValueError)):
        return _STATUS_INVALID_ARGUMENT
    return _STATUS_INTERNAL


def _callbacks(allocate, free):
    """C callbacks around Python ``allocate(nbytes, alignment, device, stream) -> address`` and
    ``free(address, nbytes, device, stream)``. An exception in ``allocate`` becomes a failed status
    whose message is the exception's; one in ``free`` is reported as unraisable (it cannot
    propagate through the library)."""

    def c_allocate(_context, nbytes, alignment, device, stream, out, message, capacity):
        try:
            where = public_device(device)
            address = integer(allocate(nbytes, alignment, where, stream), "allocated address", UINT64)
            out[0] = address
            return 0
        except BaseException as error:  # noqa: BLE001 - nothing may unwind into the library
            _write_message(message, capacity, f"{type(error).__name__}: {error}")
            return _status_for(error)

    def c_free(_context, address, nbytes, device, stream):
        try:
            free(address, nbytes, public_device(device), stream)
        except BaseException as error:  # noqa: BLE001
            import sys

            sys.unraisablehook(sys.UnraisableHookArgs(type(error), error, error.__traceback__,
                                                      "tensorbridge allocator free", free))

    return ALLOCATE(c_allocate), FREE(c_free)


def _kind(device):
    return _CODES[parse_device(device).type]


def set_allocator(allocate=None, free=None, *, device="cuda"):
    """Installs an allocator for every device of ``device``'s kind ("cpu", "cuda", "cuda_host",
    "cuda_managed"): either two callables, ``allocate(nbytes, alignment, device, stream) ->
    address`` and ``free(address, nbytes, device, stream)``, or one object with ``allocate`` and
    ``free`` methods (such as ``TorchAllocator()``). ``set_allocator(None)`` restores the built-in
    allocator. Memory already allocated goes back to the allocator that made it."""
    code = _kind(device)
    if allocate is None and free is None:
        lib.tb_allocator_set(code, None)
        return
    if free is None:
        allocate, free = allocate.allocate, allocate.free
    c_allocate, c_free = _callbacks(allocate, free)
    _installed.append((allocate, free, c_allocate, c_free))
    lib.tb_allocator_set(code, ctypes.byref(Allocator(None, c_allocate, c_free)))


def allocator_installed(device="cuda"):
    """Whether an application's allocator is installed for ``device``'s kind."""
    raw, installed = Allocator(), ctypes.c_bool()
    lib.tb_allocator_get(_kind(device), ctypes.byref(raw), ctypes.byref(installed))
    return installed.value


def trim_pool(device=0, keep_bytes=0):
    """Gives the unused memory of a CUDA device's pool (and idle pinned blocks) back to the driver."""
    index = parse_device(device).index if not isinstance(device, int) else device
    lib.tb_cuda_pool_trim(index, integer(keep_bytes, "keep_bytes", UINT64))


def pool_used_bytes(device=0):
    """Bytes of a CUDA device's pool in use now (by everyone sharing it): a leak-check diagnostic."""
    index = parse_device(device).index if not isinstance(device, int) else device
    used = ctypes.c_uint64()
    lib.tb_cuda_pool_used_bytes(index, ctypes.byref(used))
    return used.value


class TorchAllocator:
    """Allocates CUDA memory through PyTorch's caching allocator, so tensorbridge's outputs share
    PyTorch's pool (``tensorbridge.set_allocator(tensorbridge.TorchAllocator())``). Each block is
    allocated on the stream of its first use; when tensorbridge frees it after work on another
    stream, the allocation stream first waits for that work, so PyTorch reuses the block only after
    it (what ``Tensor.record_stream`` does)."""

    def __init__(self):
        import torch

        self._torch = torch
        self._streams = {}  # address -> (device index, allocation stream handle)

    def _torch_stream(self, index, handle):
        torch = self._torch
        if handle in (None, _LEGACY_STREAM, 0):
            return torch.cuda.default_stream(index)
        return torch.cuda.ExternalStream(handle, device=index)

    def allocate(self, nbytes, alignment, device, stream):
        if device.type != "cuda":
            raise ValueError(f"TorchAllocator allocates CUDA device memory, not {device}")
        if alignment > 512:
            raise ValueError(f"alignment {alignment} exceeds what PyTorch's allocator gives (512)")
        on = self._torch_stream(device.index, stream)
        address = self._torch.cuda.caching_allocator_alloc(nbytes, device.index, on)
        if stream is None:
            on.synchronize()  # usable on every stream at once
        self._streams[address] = (device.index, on)
        return address

    def free(self, address, nbytes, device, stream):
        index, allocated_on = self._streams.pop(address)
        used_on = self._torch_stream(index, stream)
        if stream is not None and used_on.cuda_stream != allocated_on.cuda_stream:
            allocated_on.wait_stream(used_on)
        self._torch.cuda.caching_allocator_delete(address)


__all__ = ["TorchAllocator", "allocator_installed", "pool_used_bytes", "set_allocator", "trim_pool"]
