"""The optional compiled fast path (``_native.c``, built by ``pip install`` where a C compiler and
Python's headers exist): a Tensor base type that owns its library handle in C, and exchange-API
imports and operations that call the library without ctypes. ``native`` is that module, or None
when it is absent or ``TENSORBRIDGE_PURE_PYTHON=1`` turns it off; the ctypes code then does the
same work. Either way the library's C ABI is the one boundary: the module calls the functions
ctypes loaded, by address."""
import ctypes
import os
import warnings
from types import ModuleType
from typing import Optional

from ._exchange import _BY_TYPE
from ._lib import lib, raise_for

API_VERSION = 8  # _native.c's NATIVE_API_VERSION this package expects

native: Optional[ModuleType] = None
if os.environ.get("TENSORBRIDGE_PURE_PYTHON", "0") in ("", "0"):
    try:
        from . import _native as native
    except ImportError:
        native = None
    if native is not None and getattr(native, "API_VERSION", None) != API_VERSION:
        warnings.warn(f"tensorbridge: ignoring {getattr(native, '__file__', native.__name__)}: built from another version of _native.c "
                      f"(API {getattr(native, 'API_VERSION', None)}, this package needs {API_VERSION}); "
                      "rebuild it (scripts/build-python-native.sh or pip install) to get the fast path",
                      RuntimeWarning, stacklevel=2)
        native = None

_FUNCTIONS = ("tb_tensor_from_exchange_api", "tb_tensor_from_exchange_api_borrowed", "tb_tensor_release",
              "tb_reformat", "tb_copy", "tb_reformat_new", "tb_tensor_from_array_interface",
              "tb_tensor_from_cuda_array_interface", "tb_tensor_info", "tb_tensor_sync", "tb_tensor_to_dlpack",
              "tb_tensor_to_dlpack_versioned_with_flags", "tb_tensor_to_array_interface",
              "tb_tensor_to_cuda_array_interface", "tb_convert_new", "tb_tensor_alloc",
              "tb_tensor_alloc_async", "tb_tensor_permute", "tb_tensor_with_layout", "tb_tensor_select",
              "tb_tensor_slice", "tb_tensor_wrap")


def connect(tensor_type):
    """Hands the compiled module the library's functions and the Tensor class (once, at import)."""
    addresses = {name: ctypes.cast(lib[name], ctypes.c_void_p).value for name in _FUNCTIONS}
    native.init(addresses, tensor_type, raise_for, _BY_TYPE)
