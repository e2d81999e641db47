"""Operations that write new memory: reformat (layout change), copy and convert (affine + dtype
+ layout in one pass). Each accepts anything ``as_tensor`` does."""
import ctypes

from ._lib import lib, raise_for, unchecked
from ._producers import as_tensor
from ._streams import stream_handle
from ._tensor import Tensor, c_dtype
from ._values import layout_bytes, remember


_reformat_new = unchecked("tb_reformat_new", convert_arguments=False)
_convert_new = unchecked("tb_convert_new", convert_arguments=False)
_COEFFICIENTS = {}  # (scale, offset) as given -> (scale array, offset array, count)


def _stream_argument(stream):
    """The stream as a ctypes argument (None: the legacy default stream)."""
    return None if stream is None else ctypes.c_void_p(stream_handle(stream))


def reformat(tensor, layout, stream=None):
    """A new tensor holding ``tensor`` in ``layout`` (same device and dtype), e.g. NHWC -> NCHW:
    allocated ordered on ``stream`` and written in one library call."""
    tensor = as_tensor(tensor)
    out = ctypes.c_void_p()
    status = _reformat_new(ctypes.c_void_p(tensor._handle), layout_bytes(layout), _stream_argument(stream),
                           ctypes.byref(out))
    if status:
        raise_for(status)
    return Tensor._adopt(out.value)


def reformat_into(dst, src, stream=None):
    """Writes ``src`` into ``dst`` in ``dst``'s layout; returns ``dst``."""
    dst_tensor, src_tensor = as_tensor(dst), as_tensor(src)
    lib.tb_reformat(src_tensor._handle, dst_tensor._handle, stream_handle(stream))
    return dst


def copy_into(dst, src, stream=None):
    """Copies ``src`` into ``dst`` (same shape and dtype, any devices and strides); returns ``dst``."""
    dst_tensor, src_tensor = as_tensor(dst), as_tensor(src)
    lib.tb_copy(src_tensor._handle, dst_tensor._handle, stream_handle(stream))
    return dst


def _coefficients(scale, offset):
    """The coefficient arrays of ``tb_convert_new`` (memoised; lists by their values)."""
    key = (tuple(scale) if type(scale) is list else scale,
           tuple(offset) if type(offset) is list else offset)
    try:
        found = _COEFFICIENTS.get(key)
    except TypeError:
        found = None
    if found is not None:
        return found
    scales = [float(v) for v in (scale if hasattr(scale, "__len__") else [scale])]
    offsets = [float(v) for v in (offset if hasattr(offset, "__len__") else [offset])]
    count = max(len(scales), len(offsets))
    scales = scales * count if len(scales) == 1 else scales
    offsets = offsets * count if len(offsets) == 1 else offsets
    if len(scales) != len(offsets):
        raise ValueError(f"{len(scales)} scale values and {len(offsets)} offset values")
    arrays = ((ctypes.c_float * count)(*scales), (ctypes.c_float * count)(*offsets),
              ctypes.c_int32(count))
    try:
        return remember(_COEFFICIENTS, key, arrays)
    except TypeError:  # unhashable (a NumPy array, say): not memoised
        return arrays


def convert(tensor, layout=None, dtype="float32", scale=1.0, offset=0.0, stream=None):
    """One pass: y = x * scale[c] + offset[c] (c along the 'C' label), converted to ``dtype`` and
    written in ``layout`` (default: the tensor's own) — e.g. uint8 NHWC -> float32 NCHW
    normalisation, allocated ordered on ``stream``. ``scale`` and ``offset`` are numbers or
    per-channel sequences."""
    tensor = as_tensor(tensor)
    scales, offsets, count = _coefficients(scale, offset)
    out = ctypes.c_void_p()
    status = _convert_new(ctypes.c_void_p(tensor._handle), layout_bytes(layout), c_dtype(dtype), scales, offsets,
                          count, _stream_argument(stream), ctypes.byref(out))
    if status:
        raise_for(status)
    return Tensor._adopt(out.value)
