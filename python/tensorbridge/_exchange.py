"""DLPack's C exchange API (dlpack.h 1.3): a framework whose tensor type carries
``__dlpack_c_exchange_api__`` (a capsule named "dlpack_exchange_api" holding a
``DLPackExchangeAPI*``; PyTorch 2.11 has one) hands its tensors to tensorbridge in C, with no
Python-level ``__dlpack__`` or ``__cuda_array_interface__`` call. The table is looked up once per
type. The library's functions that call the producer run with the GIL held (``ctypes.PyDLL``),
so a producer's Python exception propagates as itself."""
import ctypes

from ._dlpack import _get_pointer as _capsule_pointer
from ._dlpack import _is_valid as _capsule_valid
from ._dlpack import _new as _capsule_new
from ._lib import lib, raise_for

CAPSULE_NAME = b"dlpack_exchange_api"
ATTRIBUTES = ("__dlpack_c_exchange_api__", "__c_dlpack_exchange_api__")

_with_gil = ctypes.PyDLL(lib._name)
_IMPORT_ARGUMENTS: list = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
_import_owned = _with_gil.tb_tensor_from_exchange_api
_import_borrowed = _with_gil.tb_tensor_from_exchange_api_borrowed
for _function in (_import_owned, _import_borrowed):
    _function.argtypes = _IMPORT_ARGUMENTS
    _function.restype = ctypes.c_int
_set_allocator = _with_gil.tb_allocator_set_exchange_api
_set_allocator.argtypes = [ctypes.c_int32, ctypes.c_void_p]
_set_allocator.restype = ctypes.c_int

_offered_table = lib.tb_dlpack_exchange_api
_offered_table.argtypes, _offered_table.restype = [], ctypes.c_void_p
_set_factory = _with_gil.tb_dlpack_exchange_api_set_tensor_factory
_set_factory.argtypes, _set_factory.restype = [ctypes.py_object], ctypes.c_int

_BY_TYPE: dict[type, int] = {}  # type -> DLPackExchangeAPI* as an int, or 0 when the type has none


def offer(tensor_type):
    """Attaches the library's own exchange API table to ``tensor_type`` (tensorbridge.Tensor), so
    consumers that speak the C exchange API take its tensors without a Python-level call."""
    status = _set_factory(tensor_type._adopt)
    if status:
        raise_for(status)
    tensor_type.__dlpack_c_exchange_api__ = _capsule_new(_offered_table(), CAPSULE_NAME, None)


def _table_of(kind):
    for attribute in ATTRIBUTES:
        value = getattr(kind, attribute, None)
        if value is None:
            continue
        if isinstance(value, int):
            return value
        if _capsule_valid(value, CAPSULE_NAME):
            return _capsule_pointer(value, CAPSULE_NAME) or 0
    return 0


def exchange_api(obj):
    """The ``DLPackExchangeAPI*`` (an int) of ``obj``'s type, or 0 when it has none."""
    kind = type(obj)
    api = _BY_TYPE.get(kind)
    if api is None:
        api = _BY_TYPE[kind] = _table_of(kind)
    return api


def import_owned(api, obj, layout):
    """A library handle owning a DLPack tensor of ``obj`` (``obj`` may then go)."""
    out = ctypes.c_void_p()
    status = _import_owned(api, id(obj), layout, ctypes.byref(out))
    if status:
        raise_for(status)
    return out.value


def import_borrowed(api, obj, layout=None):
    """A library handle borrowing ``obj``'s memory: release it before ``obj`` may go or change."""
    out = ctypes.c_void_p()
    status = _import_borrowed(api, id(obj), layout, ctypes.byref(out))
    if status:
        raise_for(status)
    return out.value


def install_allocator(api, device_type):
    """Makes the producer's ``managed_tensor_allocator`` tensorbridge's allocator for a kind."""
    status = _set_allocator(device_type, api)
    if status:
        raise_for(status)
