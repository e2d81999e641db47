"""DLPack, both ways, following the Python array API rules.

Capsules: an unconsumed capsule is named ``dltensor`` / ``dltensor_versioned``; the consumer
renames it ``used_...`` once it owns the managed tensor; the capsule's destructor calls the
deleter only if nobody consumed it. A consumer here claims a capsule (checks and renames it)
under a lock before the import runs, so of several threads consuming one capsule exactly one
imports it; a failed import gives the capsule its name back, and with it the deleter.

Producers: ``capsule_from`` asks ``__dlpack_device__()`` first, then ``__dlpack__`` with the
consumer's stream (CUDA devices only) and ``max_version``.
"""
import ctypes
import threading

from ._lib import (
    DEVICE_CUDA,
    DEVICE_CUDA_MANAGED,
    DLPACK_FLAG_IS_COPIED,
    DLPACK_MAX_VERSION,
    DLManagedTensor,
    DLManagedTensorVersioned,
    lib,
)
from ._values import INT32, integer

LEGACY, VERSIONED = b"dltensor", b"dltensor_versioned"
USED_LEGACY, USED_VERSIONED = b"used_dltensor", b"used_dltensor_versioned"
LEGACY_DEFAULT_STREAM = 1  # the array API's value for CUDA's legacy default stream

_api = ctypes.pythonapi
_new = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p)(
    ("PyCapsule_New", _api))
_is_valid = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object, ctypes.c_char_p)(("PyCapsule_IsValid", _api))
_get_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)(
    ("PyCapsule_GetPointer", _api))
_set_name = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object, ctypes.c_char_p)(("PyCapsule_SetName", _api))
# The destructor receives the dying capsule: take it as a raw pointer, never as an object
# (a new reference to an object being deallocated would resurrect it).
_is_valid_raw = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p)(("PyCapsule_IsValid", _api))
_get_pointer_raw = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p)(
    ("PyCapsule_GetPointer", _api))


@ctypes.CFUNCTYPE(None, ctypes.c_void_p)
def _destructor(capsule):
    for name, kind in ((VERSIONED, DLManagedTensorVersioned), (LEGACY, DLManagedTensor)):
        if _is_valid_raw(capsule, name):
            managed = ctypes.cast(_get_pointer_raw(capsule, name), ctypes.POINTER(kind))
            if managed.contents.deleter:
                managed.contents.deleter(managed)
            return


_DESTRUCTOR = ctypes.cast(_destructor, ctypes.c_void_p)


def export(handle, versioned, copied):
    """A capsule owning a new DLPack export of the tensor ``handle``; ``copied`` (versioned only)
    tells the consumer that the data was copied for it."""
    pointer = ctypes.c_void_p()
    if versioned:
        flags = DLPACK_FLAG_IS_COPIED if copied else 0
        lib.tb_tensor_to_dlpack_versioned_with_flags(handle, flags, ctypes.byref(pointer))
        return _new(pointer, VERSIONED, _DESTRUCTOR)
    lib.tb_tensor_to_dlpack(handle, ctypes.byref(pointer))
    return _new(pointer, LEGACY, _DESTRUCTOR)


# (unconsumed name, used name, import function)
_KINDS = (
    (VERSIONED, USED_VERSIONED, lib.tb_tensor_from_dlpack_versioned),
    (LEGACY, USED_LEGACY, lib.tb_tensor_from_dlpack),
)
_claim_lock = threading.Lock()


def _claim(capsule):
    """Marks an unconsumed capsule used and returns its managed tensor pointer, name and import
    function. Check and rename happen under one lock: one claimant per capsule."""
    with _claim_lock:
        for name, used, function in _KINDS:
            if _is_valid(capsule, name):
                pointer = _get_pointer(capsule, name)
                _set_name(capsule, used)
                return pointer, name, function
    if type(capsule).__name__ != "PyCapsule":
        raise BufferError(f"__dlpack__ returned {type(capsule).__name__}, not a DLPack capsule")
    raise BufferError("not an unconsumed DLPack capsule (already used, or not DLPack)")


def consume(capsule, layout):
    """Imports an unconsumed capsule as a new tensor handle; the capsule is then marked used.
    If the import fails the capsule is unconsumed again (its destructor frees the tensor)."""
    pointer, name, function = _claim(capsule)
    out = ctypes.c_void_p()
    try:
        function(pointer, layout, ctypes.byref(out))
    except BaseException:
        _set_name(capsule, name)
        raise
    return out.value


def _producer_device_type(producer):
    """The device type code ``producer.__dlpack_device__()`` reports, or None without one."""
    ask = getattr(producer, "__dlpack_device__", None)
    if ask is None:
        return None
    device = ask()
    try:
        device_type, _ = device
    except (TypeError, ValueError):
        raise TypeError(f"__dlpack_device__() must return (device_type, device_id), not {device!r}") from None
    return integer(device_type, "__dlpack_device__()[0]", INT32)


def capsule_from(producer, stream):
    """A capsule from a DLPack producer, asked as the array API says: the device first; then, for
    CUDA memory, ``stream`` (the consumer's stream handle; None = the legacy default stream, 1),
    for host memory no stream; ``max_version`` unless the producer predates DLPack 1.0."""
    device_type = _producer_device_type(producer)
    arguments = {}
    if device_type in (DEVICE_CUDA, DEVICE_CUDA_MANAGED):
        arguments["stream"] = stream or LEGACY_DEFAULT_STREAM  # 0 (NULL) is the legacy stream too
    try:
        return producer.__dlpack__(max_version=DLPACK_MAX_VERSION, **arguments)
    except TypeError:  # producers older than DLPack 1.0 take no max_version
        return producer.__dlpack__(**arguments)
