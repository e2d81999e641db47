"""Operations that write new memory: reformat (layout change), copy and convert (affine + dtype
+ layout in one pass). Each accepts anything ``as_tensor`` does."""
import ctypes

from ._dtypes import data_type
from ._lib import MAX_RANK, Layout, lib
from ._producers import as_tensor
from ._streams import stream_handle
from ._tensor import empty
from ._values import layout_bytes, remember


def _alloc_like(tensor, shape, layout, stream, dtype=None):
    """The output of an operation on ``stream``: allocated ordered on that stream (the legacy
    default stream when None), where the operation will write it."""
    return empty(shape, dtype if dtype is not None else tensor._info.dtype, layout=layout,
                 device=tensor.device, stream=1 if stream is None else stream)


_PERMUTATIONS = {}  # (source labels, target layout) -> axes, as the library computed them


def _permutation(source_labels, layout):
    """The axes that view a tensor labelled ``source_labels`` in ``layout`` (the library's answer)."""
    key = (source_labels, layout)
    try:
        axes = _PERMUTATIONS.get(key)
    except TypeError:
        axes = None
    if axes is not None:
        return axes
    source, target = Layout(), Layout()
    lib.tb_layout_parse(source_labels, ctypes.byref(source))
    lib.tb_layout_parse(layout_bytes(layout), ctypes.byref(target))
    raw = (ctypes.c_int32 * MAX_RANK)()
    lib.tb_layout_permutation(ctypes.byref(source), ctypes.byref(target), raw)
    axes = tuple(axis for axis in raw if axis >= 0)
    return remember(_PERMUTATIONS, key, axes)


def _permuted_shape(tensor, layout):
    """``tensor``'s shape viewed in ``layout``, by the library's permutation of the labels."""
    shape = tensor.shape
    return tuple([shape[axis] for axis in _permutation(tensor._info.layout.labels, layout)])


def reformat(tensor, layout, stream=None):
    """A new tensor holding ``tensor`` in ``layout`` (same device and dtype), e.g. NHWC -> NCHW."""
    tensor = as_tensor(tensor)
    out = _alloc_like(tensor, _permuted_shape(tensor, layout), layout, stream)
    lib.tb_reformat(tensor._handle, out._handle, stream_handle(stream))
    return out


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


def _coefficients(values):
    return [float(v) for v in (values if hasattr(values, "__len__") else [values])]


def convert(tensor, layout=None, dtype="float32", scale=1.0, offset=0.0, stream=None):
    """One pass: y = x * scale[c] + offset[c] (c along the 'C' label), converted to ``dtype`` and
    written in ``layout`` — e.g. uint8 NHWC -> float32 NCHW normalisation. ``scale`` and ``offset``
    are numbers or per-channel sequences."""
    tensor = as_tensor(tensor)
    layout = layout or tensor.layout
    shape = tensor.shape if layout == tensor.layout else _permuted_shape(tensor, layout)
    out = _alloc_like(tensor, shape, layout, stream, data_type(dtype))
    scales, offsets = _coefficients(scale), _coefficients(offset)
    count = max(len(scales), len(offsets))
    scales = scales * count if len(scales) == 1 else scales
    offsets = offsets * count if len(offsets) == 1 else offsets
    if len(scales) != len(offsets):
        raise ValueError(f"{len(scales)} scale values and {len(offsets)} offset values")
    scale_array = (ctypes.c_float * len(scales))(*scales)
    offset_array = (ctypes.c_float * len(offsets))(*offsets)
    lib.tb_convert(tensor._handle, out._handle, scale_array, offset_array, count, stream_handle(stream))
    return out
