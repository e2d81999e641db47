"""Element types: the table of supported dtypes, read from the library at import
(``tb_dtype_count`` / ``tb_dtype_at`` / ``tb_dtype_name`` / ``tb_dtype_to_typestr``), and the
conversions between it, the spellings NumPy / PyTorch / JAX use, and NumPy dtypes."""
import ctypes
from collections import namedtuple

from ._lib import DataType, lib, unchecked

# typestr None: NumPy has none. lanes is 1 but for float4_e2m1fn_x2 (two float4 in one byte).
DType = namedtuple("DType", ["name", "typestr", "code", "bits", "lanes"])
_typestr_of = unchecked("tb_dtype_to_typestr")


def _read_table():
    table = []
    for index in range(lib.tb_dtype_count()):
        dtype, name, typestr = DataType(), ctypes.c_char_p(), ctypes.c_char_p()
        lib.tb_dtype_at(index, ctypes.byref(dtype))
        lib.tb_dtype_name(dtype, ctypes.byref(name))
        has_typestr = _typestr_of(dtype, ctypes.byref(typestr)) == 0  # float8: none
        table.append(DType(name.value.decode(), typestr.value.decode() if has_typestr else None, dtype.code,
                           dtype.bits, dtype.lanes))
    return table


_TABLE = _read_table()
_BY_NAME = {entry.name: entry for entry in _TABLE}
_BY_CODE = {(entry.code, entry.bits, entry.lanes): entry for entry in _TABLE}
# Framework spellings of the library's names (numpy.bool_, torch.half / float / double).
_ALIASES = {"bool_": "bool", "half": "float16", "float": "float32", "double": "float64"}


def data_type(dtype):
    """The TbDataType of a dtype given as a name, a NumPy dtype or type, a torch dtype (``torch.float4_e2m1fn_x2``
    too) or a TbDataType."""
    if isinstance(dtype, DataType):
        return dtype
    if isinstance(dtype, type):  # numpy.uint8, ml_dtypes.bfloat16, numpy.float32 ...
        dtype = getattr(dtype, "__name__", str(dtype))
    name = getattr(dtype, "name", None) or str(dtype)
    name = name.replace("torch.", "").replace("jnp.", "")
    entry = _BY_NAME.get(_ALIASES.get(name, name))
    if entry is None:
        raise TypeError(f"unknown dtype {dtype!r}")
    return DataType(entry.code, entry.bits, entry.lanes)


def numpy_dtype(dtype):
    """A NumPy dtype for a TbDataType; bfloat16, the float8 and the (padded) float6/float4 types
    through ml_dtypes when it is installed (NumPy has none of them), else their name — always the
    name for float4_e2m1fn_x2, which no NumPy dtype holds."""
    entry = _BY_CODE.get((dtype.code, dtype.bits, dtype.lanes))
    if entry is None:
        return f"code{dtype.code}_bits{dtype.bits}" + ("" if dtype.lanes == 1 else f"_lanes{dtype.lanes}")
    try:
        import numpy
    except ImportError:
        return entry.name
    if entry.name == "bfloat16" or entry.typestr is None:  # "<V2" is opaque; float8/6/4 have none
        try:
            import ml_dtypes

            return numpy.dtype(getattr(ml_dtypes, entry.name))
        except (ImportError, AttributeError):
            return entry.name
    return numpy.dtype(entry.typestr)
