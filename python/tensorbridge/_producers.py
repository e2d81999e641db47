"""``as_tensor`` and ``from_dlpack``: a Tensor over a producer's memory, without copying, through
the first protocol the producer speaks — CUDA Array Interface, NumPy array interface, DLPack."""
from . import _dlpack
from ._exchange import exchange_api, import_owned
from ._interface import (
    ARRAY_INTERFACE,
    CUDA_ARRAY_INTERFACE,
    from_array_interface,
    from_cuda_array_interface,
    import_interface,
)
from ._streams import stream_handle
from ._compiled import native
from ._tensor import Tensor
from ._values import ENCODED, layout_bytes


def _import_with_ctypes(api, obj, layout):
    return Tensor._adopt(import_owned(api, obj, layout))


# The interfaces as_tensor reads, in order, with the library import of each.
_INTERFACES = ((CUDA_ARRAY_INTERFACE, from_cuda_array_interface), (ARRAY_INTERFACE, from_array_interface))

# A Tensor owning an exchange-API producer's tensor: made in C when the compiled module is there.
_import_tensor = native.import_owned if native is not None else _import_with_ctypes


def as_tensor(obj, layout=None, *, stream=None):
    """A tensorbridge Tensor over ``obj``'s memory, without copying.

    ``obj`` may be a Tensor, an object whose type carries DLPack's C exchange API
    (``__dlpack_c_exchange_api__``: PyTorch; converted in C, the fastest path), or anything with
    ``__cuda_array_interface__`` (CuPy, Numba, CV-CUDA), ``__array_interface__`` (NumPy) or
    ``__dlpack__`` (JAX, CuPy, NumPy).
    ``layout`` names the dimensions ("HWC", "NCHW" …). The tensor keeps ``obj`` alive, honours its
    read-only flag, and orders its first use on another stream after the producer's stream.
    ``stream`` is the stream the caller will use the tensor on, passed to a DLPack producer of
    GPU memory (default: the legacy default stream).
    """
    if layout is None:
        encoded = None
    else:
        try:
            encoded = ENCODED[layout]  # a layout seen before: its checked encoding
        except (KeyError, TypeError):
            encoded = layout_bytes(layout)
    if isinstance(obj, Tensor):
        return obj if layout is None else obj.with_layout(layout)
    api = exchange_api(obj)
    if api:
        return _import_tensor(api, obj, encoded)
    for attribute, function in _INTERFACES:
        try:
            interface = getattr(obj, attribute, None)
        except Exception:
            if hasattr(obj, "__dlpack__"):  # e.g. PyTorch's CAI has no typestr for float8: use DLPack
                break
            raise
        if interface is None:
            continue
        if native is not None:  # a plain dict is read in C; anything else by the Python reader
            made = native.import_interface(attribute is CUDA_ARRAY_INTERFACE, interface, encoded, obj)
            if made is not NotImplemented:
                return made
        return Tensor._adopt(import_interface(function, interface, attribute, encoded), obj)
    if hasattr(obj, "__dlpack__"):
        capsule = _dlpack.capsule_from(obj, stream_handle(stream))
        return Tensor._adopt(_dlpack.consume(capsule, encoded))
    raise TypeError(
        f"{type(obj).__name__} exposes no __cuda_array_interface__, __dlpack__ or __array_interface__")


def from_dlpack(obj, layout=None, *, stream=None):
    """A Tensor from a DLPack producer or capsule (``as_tensor`` covers producers too)."""
    if hasattr(obj, "__dlpack__"):
        return as_tensor(obj, layout, stream=stream)
    return Tensor._adopt(_dlpack.consume(obj, layout_bytes(layout)))
