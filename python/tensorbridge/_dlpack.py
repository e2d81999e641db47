"""DLPack capsules, both ways, following the Python array API rules: an unconsumed capsule is
named ``dltensor`` / ``dltensor_versioned``; the consumer renames it ``used_...`` once it owns the
managed tensor; the capsule's destructor calls the deleter only if nobody consumed it."""
import ctypes

from ._lib import DLManagedTensor, DLManagedTensorVersioned, lib

LEGACY, VERSIONED = b"dltensor", b"dltensor_versioned"
USED_LEGACY, USED_VERSIONED = b"used_dltensor", b"used_dltensor_versioned"

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
    """A capsule owning a new DLPack export of the tensor `handle`."""
    pointer = ctypes.c_void_p()
    if versioned:
        lib.tb_tensor_to_dlpack_versioned(handle, ctypes.byref(pointer))
        if copied:
            managed = ctypes.cast(pointer, ctypes.POINTER(DLManagedTensorVersioned))
            managed.contents.flags |= 2  # DLPACK_FLAG_BITMASK_IS_COPIED
        return _new(pointer, VERSIONED, _DESTRUCTOR)
    lib.tb_tensor_to_dlpack(handle, ctypes.byref(pointer))
    return _new(pointer, LEGACY, _DESTRUCTOR)


def consume(capsule, layout):
    """Imports an unconsumed capsule as a new tensor handle; the capsule is then marked used."""
    out = ctypes.c_void_p()
    if _is_valid(capsule, VERSIONED):
        lib.tb_tensor_from_dlpack_versioned(_get_pointer(capsule, VERSIONED), layout, ctypes.byref(out))
        _set_name(capsule, USED_VERSIONED)
    elif _is_valid(capsule, LEGACY):
        lib.tb_tensor_from_dlpack(_get_pointer(capsule, LEGACY), layout, ctypes.byref(out))
        _set_name(capsule, USED_LEGACY)
    else:
        raise BufferError("not an unconsumed DLPack capsule (already used, or not DLPack)")
    return out.value
