"""Operations that write new memory: reformat (layout change), copy and convert (affine + dtype
+ layout in one pass), and the queries naming the kernel each would run. Each accepts anything
``as_tensor`` does; a framework tensor whose type carries DLPack's C exchange API (PyTorch) is
borrowed for the call only, converted in C."""
import ctypes

from ._compiled import native
from ._exchange import exchange_api, import_borrowed
from ._lib import lib, raise_for, unchecked
from ._producers import as_tensor
from ._streams import stream_handle
from ._tensor import Tensor, c_dtype, empty
from ._values import INT32, integer, layout_bytes, remember


_reformat_new = unchecked("tb_reformat_new", convert_arguments=False)
_convert_new = unchecked("tb_convert_new", convert_arguments=False)
_convert = unchecked("tb_convert", convert_arguments=False)
_convert_channels = unchecked("tb_convert_channels", convert_arguments=False)
_COEFFICIENTS: dict = {}  # (scale, offset) as given -> (scale array, offset array, count)
_reformat = unchecked("tb_reformat", convert_arguments=False)
_copy = unchecked("tb_copy", convert_arguments=False)
_release = unchecked("tb_tensor_release", convert_arguments=False)


class _Operands:
    """The library handles of an operation's operands, for the duration of the call: a Tensor's
    own handle; a handle borrowing an exchange-API producer's tensor (released on exit); or the
    handle of a Tensor made by ``as_tensor`` (kept until exit)."""

    __slots__ = ("borrowed", "kept")

    def __init__(self):
        self.borrowed, self.kept = [], []

    def handle(self, obj):
        if type(obj) is Tensor:
            return ctypes.c_void_p(obj._handle)
        api = exchange_api(obj)
        if api:
            handle = import_borrowed(api, obj)
            self.borrowed.append(handle)
            return ctypes.c_void_p(handle)
        tensor = as_tensor(obj)
        self.kept.append(tensor)
        return ctypes.c_void_p(tensor._handle)

    def __enter__(self):
        return self

    def __exit__(self, *_):
        for handle in self.borrowed:
            _release(ctypes.c_void_p(handle))
        self.borrowed.clear()
        self.kept.clear()  # a traceback holding this frame must not hold the tensors


def _stream_argument(stream):
    """The stream as a ctypes argument (None: the legacy default stream)."""
    return None if stream is None else ctypes.c_void_p(stream_handle(stream))


_INTO_REFORMAT, _INTO_COPY = 0, 1  # the compiled module's operation codes for into()


def reformat(tensor, layout, stream=None):
    """A new tensor holding ``tensor`` in ``layout`` (same device and dtype), e.g. NHWC -> NCHW:
    allocated ordered on ``stream`` and written in one library call. A framework tensor must
    carry its layout: wrap it with ``as_tensor(x, "NHWC")`` first."""
    if native is not None:  # operands a Tensor or an exchange-API producer's: the call is made in C
        made = native.reformat_new(tensor, layout_bytes(layout), None if stream is None else stream_handle(stream))
        if made is not NotImplemented:
            return made
    out = ctypes.c_void_p()
    with _Operands() as operands:
        status = _reformat_new(operands.handle(tensor), layout_bytes(layout), _stream_argument(stream),
                               ctypes.byref(out))
    if status:
        raise_for(status)
    return Tensor._adopt(out.value)


def _into(which, function, dst, src, stream):
    """Runs a library operation writing ``src`` into ``dst``; returns ``dst``."""
    if native is not None:  # operands Tensors or exchange-API producers': the call is made in C
        done = native.into(which, dst, src, None if stream is None else stream_handle(stream))
        if done is not NotImplemented:
            return done
    with _Operands() as operands:
        status = function(operands.handle(src), operands.handle(dst), _stream_argument(stream))
    if status:
        raise_for(status)
    return dst


def reformat_into(dst, src, stream=None):
    """Writes ``src`` into ``dst`` in ``dst``'s layout; returns ``dst``."""
    return _into(_INTO_REFORMAT, _reformat, dst, src, stream)


def copy_into(dst, src, stream=None):
    """Copies ``src`` into ``dst`` (same shape and dtype, any devices and strides); returns ``dst``."""
    return _into(_INTO_COPY, _copy, dst, src, stream)


def _coefficients(scale, offset):
    """The coefficient arrays of ``tb_convert_new`` and their values as tuples of floats (memoised;
    lists by their values)."""
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
              ctypes.c_int32(count), tuple(scales), tuple(offsets))
    try:
        return remember(_COEFFICIENTS, key, arrays)
    except TypeError:  # unhashable (a NumPy array, say): not memoised
        return arrays


def convert(tensor, layout=None, dtype="float32", scale=1.0, offset=0.0, stream=None, channel_order=None):
    """One pass: y = x * scale[c] + offset[c] (c along the 'C' label), converted to ``dtype`` and
    written in ``layout`` (default: the tensor's own) — e.g. uint8 NHWC -> float32 NCHW
    normalisation, allocated ordered on ``stream``. ``scale`` and ``offset`` are numbers or
    per-channel sequences. ``channel_order``: output channel k reads input channel
    ``channel_order[k]`` in the same pass — ``(2, 1, 0)`` turns BGR (OpenCV, decoders) into
    RGB; the coefficients are the output channels'."""
    if channel_order is not None:
        source = tensor if isinstance(tensor, Tensor) else as_tensor(tensor)
        own = source.layout
        shaped = source if layout is None or layout == own else source.permute(layout)
        out = empty(shaped.shape, dtype, layout if layout is not None else own, device=source.device,
                    stream=stream)
        return convert_into(out, source, scale, offset, stream, channel_order=channel_order)
    scales, offsets, count, scale_values, offset_values = _coefficients(scale, offset)
    target = c_dtype(dtype)
    # A Tensor or an exchange-API producer's tensor: the call is made in C, which takes a dtype
    # of one lane (float4_e2m1fn_x2 goes through ctypes, which gives the library's refusal).
    if native is not None and target.lanes == 1:
        made = native.convert_new(tensor, layout_bytes(layout), (target.code, target.bits), scale_values,
                                  offset_values, None if stream is None else stream_handle(stream))
        if made is not NotImplemented:
            return made
    out = ctypes.c_void_p()
    with _Operands() as operands:
        status = _convert_new(operands.handle(tensor), layout_bytes(layout), target, scales,
                              offsets, count, _stream_argument(stream), ctypes.byref(out))
    if status:
        raise_for(status)
    return Tensor._adopt(out.value)


def convert_into(dst, src, scale=1.0, offset=0.0, stream=None, channel_order=None):
    """``convert`` into an existing tensor: dst = src * scale[c] + offset[c] in ``dst``'s dtype
    and layout (``tb_convert``; no allocation, for loops that reuse their output); returns
    ``dst``. ``channel_order`` as in ``convert`` (``tb_convert_channels``)."""
    scales, offsets, count, _, _ = _coefficients(scale, offset)
    with _Operands() as operands:
        if channel_order is None:
            status = _convert(operands.handle(src), operands.handle(dst), scales, offsets, count,
                              _stream_argument(stream))
        else:
            order = [integer(c, "channel_order", INT32) for c in channel_order]
            status = _convert_channels(operands.handle(src), operands.handle(dst),
                                       (ctypes.c_int32 * max(len(order), 1))(*order), ctypes.c_int32(len(order)),
                                       scales, offsets, count, _stream_argument(stream))
    if status:
        raise_for(status)
    return dst


_PLAN_NAME_CAPACITY = 128  # TB_PLAN_NAME_CAPACITY: always holds a plan name and its NUL


def _plan(function, dst, src):
    """The name a plan query writes for ``src`` -> ``dst``."""
    name = ctypes.create_string_buffer(_PLAN_NAME_CAPACITY)
    with _Operands() as operands:
        function(operands.handle(src), operands.handle(dst), name, len(name))
    return name.value.decode("ascii")


def reformat_plan(dst, src):
    """The name of what ``reformat_into(dst, src)`` would run, doing nothing (the same checks,
    the same exceptions): the kernel family then its compile-time choices, e.g.
    ``"deinterleave small=3 vec=16"``, ``"transpose_tiled tile_r=64 tile_s=256"``,
    ``"elementwise vec=16 ilp=1 align_in=16 align_out=16"`` (a same-layout conversion),
    ``"general rank=4"`` (the element-wise fallback) or ``"memcpy"``; ``"host ..."`` on the CPU;
    ``"staged upload, ..."`` / ``"staged download, ..."`` through pageable memory. Decided on the
    host from the tensors' descriptions: no GPU is needed."""
    return _plan(lib.tb_reformat_plan, dst, src)


def convert_plan(dst, src):
    """The name of what a conversion of ``src`` into ``dst``'s dtype and layout (``convert``, the
    C ABI's ``tb_convert``) would run, as ``reformat_plan`` names a reformat; the coefficients do
    not change the choice."""
    return _plan(lib.tb_convert_plan, dst, src)
