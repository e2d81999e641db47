"""Video frames to a model's input in one pass: YUV 4:2:0 frames as decoders hand them out (NV12,
P016/P010, I420; one tensor or a list of planes) converted to RGB or BGR in any layout of N, H, W, C
and any ``convert`` output dtype, with an optional per-channel affine (mean/std)."""
import ctypes

from ._lib import FrameFormat, raise_for, unchecked
from ._ops import _coefficients, _Operands, _stream_argument
from ._tensor import Tensor, c_dtype
from ._values import layout_bytes, remember

_frame_convert = unchecked("tb_frame_convert", convert_arguments=False)
_frame_convert_new = unchecked("tb_frame_convert_new", convert_arguments=False)

PIXEL_FORMATS = {"nv12": 1, "i420": 2, "yuv420p": 2, "p016": 3, "p010": 3}
STANDARDS = {"bt601": 0, "bt709": 1}
_DESCRIPTIONS: dict = {}  # (format, standard, full_range, bgr) -> FrameFormat
_PLANE_COUNTS = [ctypes.c_size_t(n) for n in range(4)]  # size_t arguments, exactly typed


def _choice(table, value, name):
    try:
        return table[str(value).lower()]
    except KeyError:
        raise ValueError(f"{name}={value!r}: expected one of {', '.join(table)}") from None


def _description(format, standard, full_range, bgr):
    """The TbFrameFormat of the keyword arguments (memoised)."""
    key = (format, standard, full_range, bgr)
    try:
        found = _DESCRIPTIONS.get(key)
    except TypeError:  # unhashable arguments: not memoised
        found = None
    if found is not None:
        return found
    made = FrameFormat(_choice(PIXEL_FORMATS, format, "format"), _choice(STANDARDS, standard, "standard"),
                       1 if full_range else 0, bool(bgr))
    try:
        return remember(_DESCRIPTIONS, key, made)
    except TypeError:
        return made


def _batched(obj):
    """Whether the first plane of a frame holds a batch (a leading N), by its shape as the library
    reads it: rank 4, or rank 3 unless the last extent is a channel extent (1 for a whole frame or
    a luma plane)."""
    shape = getattr(obj, "shape", None)
    if shape is None:
        interface = getattr(obj, "__cuda_array_interface__", None) or getattr(obj, "__array_interface__", None)
        shape = interface["shape"] if interface else ()
    return len(shape) == 4 or (len(shape) == 3 and shape[2] != 1)


def convert_frames(frames, layout=None, dtype="float32", scale=1.0, offset=0.0, *, format="nv12",
                   standard="bt709", full_range=False, bgr=False, stream=None, out=None):
    """YUV 4:2:0 frames to RGB (or BGR) model input in one pass, on the frames' device.

    ``frames`` is one tensor holding whole frames — ``(3H/2, W)`` rows, Y then chroma, as a
    decoder's DLPack export gives them (a leading N for a batch) — or a list of planes: NV12/P016
    as ``[Y (H, W), UV (H/2, W/2, 2)]`` (PyNvVideoCodec's ``frame.cuda()``), I420 as ``[Y, U, V]``.
    Anything ``as_tensor`` accepts, with any row pitch. ``format``: "nv12", "p016"/"p010" (uint16
    samples), "i420"/"yuv420p"; ``standard``: "bt601" or "bt709"; ``full_range``: samples use the
    full range instead of the limited (TV) one; ``bgr``: channel order B, G, R.

    RGB values are on a 0-255 scale, clamped, then y = x * scale[c] + offset[c] is applied and the
    result written as ``dtype`` (e.g. ``scale=1/(255*std)``, ``offset=-mean/std`` for
    ImageNet-style normalisation). The new tensor has ``layout`` (default "NCHW" for a batch, "CHW"
    for one frame); with ``out`` the frames are written into it instead and ``out`` is returned.
    Enqueued on ``stream`` when the frames are on the GPU; convert each frame before its decoder
    reuses the frame's memory (PyNvVideoCodec does at the next decode call)."""
    description = ctypes.byref(_description(format, standard, full_range, bgr))
    scales, offsets, count, _, _ = _coefficients(scale, offset)
    stream_argument = _stream_argument(stream)
    if type(frames) is Tensor and type(out) is Tensor:  # the decode loop's case: no operand bookkeeping
        status = _frame_convert((ctypes.c_void_p * 1)(frames._handle), _PLANE_COUNTS[1], description,
                                ctypes.c_void_p(out._handle), scales, offsets, count, stream_argument)
        if status:
            raise_for(status)
        return out
    planes = list(frames) if isinstance(frames, (list, tuple)) else [frames]
    if not 1 <= len(planes) <= 3:
        raise ValueError(f"a frame is one tensor or 2-3 planes, not {len(planes)}")
    made = ctypes.c_void_p()
    with _Operands() as operands:
        handles = (ctypes.c_void_p * len(planes))(*[operands.handle(plane).value for plane in planes])
        if out is not None:
            status = _frame_convert(handles, _PLANE_COUNTS[len(planes)], description, operands.handle(out), scales,
                                    offsets, count, stream_argument)
        else:
            layout = layout if layout is not None else ("NCHW" if _batched(planes[0]) else "CHW")
            status = _frame_convert_new(handles, _PLANE_COUNTS[len(planes)], description, layout_bytes(layout),
                                        c_dtype(dtype), scales, offsets, count, stream_argument,
                                        ctypes.byref(made))
    if status:
        raise_for(status)
    return out if out is not None else Tensor._adopt(made.value)
