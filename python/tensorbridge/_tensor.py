"""The Python front door: ``as_tensor``, ``Tensor`` and the layout operations, over the C ABI."""
import ctypes
import itertools
import threading
from collections import namedtuple

from . import _dlpack
from ._lib import (
    CLEANUP,
    DEVICE_CPU,
    DEVICE_CUDA,
    DEVICE_CUDA_HOST,
    DEVICE_CUDA_MANAGED,
    MAX_RANK,
    ArrayInterface,
    DataType,
    TensorInfo,
    lib,
    raise_for,
    unchecked,
)
from ._lib import Device as _CDevice

_release = unchecked("tb_tensor_release")
_from_cai = unchecked("tb_tensor_from_cuda_array_interface", convert_arguments=False)
_from_numpy = unchecked("tb_tensor_from_array_interface", convert_arguments=False)
_NO_CLEANUP = CLEANUP()

INT64_MAX, INT64_MIN = 2**63 - 1, -(2**63)

Device = namedtuple("Device", ["type", "index"])
Device.__str__ = lambda self: self.type if self.type == "cpu" else f"{self.type}:{self.index}"
Device.__doc__ = "Where a tensor lives: type 'cpu', 'cuda', 'cuda_host' (pinned) or 'cuda_managed', and an ordinal."

_DEVICE_NAMES = {DEVICE_CPU: "cpu", DEVICE_CUDA: "cuda", DEVICE_CUDA_HOST: "cuda_host", DEVICE_CUDA_MANAGED: "cuda_managed"}
_DEVICE_CODES = {name: code for code, name in _DEVICE_NAMES.items()}

# Canonical dtype names -> (DLPack code, bits).
_DTYPES = {
    "bool": (6, 8), "int8": (0, 8), "int16": (0, 16), "int32": (0, 32), "int64": (0, 64),
    "uint8": (1, 8), "uint16": (1, 16), "uint32": (1, 32), "uint64": (1, 64),
    "float16": (2, 16), "float32": (2, 32), "float64": (2, 64), "bfloat16": (4, 16),
    "complex64": (5, 64), "complex128": (5, 128),
}
_DTYPE_NAMES = {value: name for name, value in _DTYPES.items()}

# ---- keep-alive -------------------------------------------------------------------------------
# A Tensor over a Python producer's memory holds the producer (so do its views). The one way the
# library's references can outlive every Python object is a DLPack export: it is made from an
# alias whose native cleanup releases a registry entry holding the producer.

_KEEP = {}
_TOKENS = itertools.count(1)


@CLEANUP
def _release_keep_alive(context, _data):
    _KEEP.pop(context, None)


def _keep_alive(obj):
    token = next(_TOKENS)
    _KEEP[token] = obj
    return token


# ---- small conversions ------------------------------------------------------------------------


def _stream_handle(stream):
    """A cudaStream_t as an int (None = the legacy default stream) from the usual stream objects."""
    if stream is None:
        return None
    if isinstance(stream, int):
        return stream
    if hasattr(stream, "__cuda_stream__"):
        return int(stream.__cuda_stream__()[1])
    for attribute in ("cuda_stream", "ptr"):  # torch.cuda.Stream, cupy.cuda.Stream
        if hasattr(stream, attribute):
            return int(getattr(stream, attribute))
    handle = getattr(stream, "handle", None)  # numba
    if handle is not None:
        return int(getattr(handle, "value", handle) or 0)
    raise TypeError(f"cannot use {type(stream).__name__} as a CUDA stream")


def _dtype_key(dtype):
    """(code, bits) of a dtype given as a name, a NumPy dtype, a torch dtype or a Tensor dtype."""
    if isinstance(dtype, type):  # numpy.uint8, ml_dtypes.bfloat16, numpy.float32 ...
        dtype = getattr(dtype, "__name__", str(dtype))
    name = getattr(dtype, "name", None) or str(dtype)
    name = name.replace("torch.", "").replace("jnp.", "")
    name = {"bool_": "bool", "half": "float16", "float": "float32", "double": "float64"}.get(name, name)
    if name not in _DTYPES:
        raise TypeError(f"unknown dtype {dtype!r}")
    return _DTYPES[name]


def _numpy_dtype(code, bits):
    name = _DTYPE_NAMES.get((code, bits), f"code{code}_bits{bits}")
    try:
        import numpy
    except ImportError:
        return name
    if name == "bfloat16":
        try:
            import ml_dtypes

            return numpy.dtype(ml_dtypes.bfloat16)
        except ImportError:
            return name
    return numpy.dtype(name)


_ENCODED = {}  # layout and typestr strings -> bytes (a handful of distinct values in practice)


def _encode(text):
    encoded = _ENCODED.get(text)
    if encoded is None:
        encoded = text.encode("ascii", "strict") if isinstance(text, str) else bytes(text)
        if len(_ENCODED) < 256:
            _ENCODED[text] = encoded
    return encoded


def _encode_layout(layout):
    return None if layout is None else _encode(layout)


def _fill_interface(description, interface, cuda):
    """Copies an interface dict into a TbArrayInterface, refusing what does not fit it."""
    data = interface["data"]
    pointer, readonly = (data, False) if isinstance(data, int) else data
    shape = tuple(interface["shape"])
    rank = len(shape)
    if rank > MAX_RANK:
        raise ValueError(f"rank {rank} exceeds the maximum rank {MAX_RANK}")
    typestr = _encode(interface["typestr"])
    if len(typestr) >= 16:
        raise ValueError(f"typestr {interface['typestr']!r} is too long")
    description.version = interface.get("version", 0)
    description.data = pointer or 0
    description.readonly = bool(readonly)
    description.typestr = typestr
    description.rank = rank
    description.shape[:rank] = shape
    strides = interface.get("strides")
    description.has_strides = strides is not None
    if strides is not None:
        if len(strides) != rank:
            raise ValueError(f"{len(strides)} strides for {rank} dimensions")
        description.strides[:rank] = tuple(strides)
    stream = interface.get("stream") if cuda else None
    description.has_stream = stream is not None
    description.stream = stream or 0
    description.has_mask = interface.get("mask") is not None


def _interface_dict(description, cuda):
    rank = description.rank
    typestr = description.typestr.decode()
    result = {
        "version": 3,
        "data": (description.data or 0, bool(description.readonly)),
        "typestr": typestr,
        "shape": tuple(description.shape[:rank]),
        "strides": tuple(description.strides[:rank]) if description.has_strides else None,
    }
    if cuda:
        if description.has_stream:
            result["stream"] = description.stream
    else:
        result["descr"] = [("", typestr)]
    return result


# ---- the tensor -------------------------------------------------------------------------------


class Tensor:
    """A tensor of the library: a reference to strided memory on the CPU or a GPU, with a layout.

    Create one with :func:`as_tensor` (zero-copy over NumPy, PyTorch, CuPy, Numba, JAX and any
    producer of the CUDA Array Interface, DLPack or the NumPy array interface) or :func:`empty`.
    """

    __slots__ = ("_handle", "_cached_info", "_owner", "__weakref__")

    def __init__(self):
        raise TypeError("use tensorbridge.as_tensor() or tensorbridge.empty()")

    @classmethod
    def _adopt(cls, handle, owner=None):
        tensor = object.__new__(cls)
        tensor._handle = handle
        tensor._cached_info = None
        tensor._owner = owner
        return tensor

    def _view(self, handle):
        return Tensor._adopt(handle, self._owner)

    @property
    def _info(self):
        """The tensor's description, read once (a tensor's metadata never changes)."""
        info = self._cached_info
        if info is None:
            info = self._cached_info = TensorInfo()
            lib.tb_tensor_info(self._handle, ctypes.byref(info))
        return info

    def __del__(self):
        handle = getattr(self, "_handle", None)
        if handle:
            self._handle = None
            _release(handle)  # a status here cannot be reported from a finalizer

    # -- properties ---------------------------------------------------------------------------

    @property
    def shape(self):
        """Extents, outermost first."""
        return tuple(self._info.shape[: self._info.rank])

    @property
    def strides(self):
        """Strides in bytes."""
        return tuple(self._info.strides[: self._info.rank])

    @property
    def ndim(self):
        return self._info.rank

    @property
    def dtype(self):
        """A NumPy dtype (bfloat16 through ml_dtypes when installed, else its name)."""
        return _numpy_dtype(self._info.dtype.code, self._info.dtype.bits)

    @property
    def layout(self):
        """Dimension labels such as "NHWC", or None."""
        labels = self._info.layout.labels.decode()
        return labels or None

    @property
    def device(self):
        d = self._info.device
        return Device(_DEVICE_NAMES[d.device_type], d.device_id)

    @property
    def nbytes(self):
        return self._info.nbytes

    @property
    def is_cuda(self):
        """True for GPU memory (device or managed); pinned host memory counts as host."""
        return self._info.device.device_type in (DEVICE_CUDA, DEVICE_CUDA_MANAGED)

    @property
    def readonly(self):
        return bool(self._info.readonly)

    @property
    def data_ptr(self):
        return self._info.data or 0

    @property
    def is_contiguous(self):
        return bool(self._info.contiguous)

    def __len__(self):
        if not self.ndim:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self):
        layout = f", layout={self.layout!r}" if self.layout else ""
        return f"tensorbridge.Tensor(shape={self.shape}, dtype={self.dtype}{layout}, device='{self.device}')"

    # -- interfaces ----------------------------------------------------------------------------

    @property
    def __cuda_array_interface__(self):
        """CUDA Array Interface v3 over GPU-accessible memory, with the pending stream if any."""
        if self._info.device.device_type == DEVICE_CPU:
            raise AttributeError("host tensor: no __cuda_array_interface__ (use .cuda())")
        description = ArrayInterface()
        lib.tb_tensor_to_cuda_array_interface(self._handle, ctypes.byref(description))
        return _interface_dict(description, cuda=True)

    @property
    def __array_interface__(self):
        """NumPy array interface v3 over host-accessible memory."""
        if self._info.device.device_type == DEVICE_CUDA:
            raise AttributeError("GPU tensor: no __array_interface__ (use .cpu())")
        description = ArrayInterface()
        lib.tb_tensor_to_array_interface(self._handle, ctypes.byref(description))
        return _interface_dict(description, cuda=False)

    def __dlpack_device__(self):
        d = self._info.device
        return (d.device_type, d.device_id)

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """A DLPack capsule (versioned when ``max_version >= (1, 0)``), per the array API."""
        source = self
        if dl_device is not None and tuple(dl_device) != self.__dlpack_device__():
            if copy is False:
                raise BufferError(f"dl_device {tuple(dl_device)} differs from {self.__dlpack_device__()} and copy=False")
            if dl_device[0] not in _DEVICE_NAMES:
                raise BufferError(f"cannot copy to DLPack device type {dl_device[0]}")
            source = self.to(Device(_DEVICE_NAMES[dl_device[0]], dl_device[1]))
        elif copy:
            source = self.clone()
        copied = source is not self
        if self.is_cuda or self._info.device.device_type == DEVICE_CUDA_HOST:
            if stream == 0:
                raise ValueError("stream 0 is ambiguous and disallowed; use 1 or 2")
            if stream != -1:
                lib.tb_tensor_sync(source._handle, 1 if stream is None else stream)
        elif stream is not None and stream != -1:
            raise ValueError(f"stream {stream!r} given for a host tensor")
        versioned = max_version is not None and tuple(max_version) >= (1, 0)
        if copied and not versioned and copy:
            raise BufferError("copy=True needs a versioned DLPack capsule (max_version >= (1, 0))")
        if source._owner is None:
            return _dlpack.export(source._handle, versioned, copied)
        alias = source._alias_keeping_owner()
        return _dlpack.export(alias._handle, versioned, copied)

    def _alias_keeping_owner(self):
        """A second library tensor over the same memory whose native cleanup keeps the Python
        producer alive: for exports that outlive every Python object."""
        info = self._info
        out = ctypes.c_void_p()
        token = _keep_alive(self._owner)
        try:
            lib.tb_tensor_wrap(info.data, info.device, info.dtype, info.rank, info.shape, info.strides,
                               info.layout.labels or None, info.readonly, _release_keep_alive, token,
                               ctypes.byref(out))
        except BaseException:
            _KEEP.pop(token, None)
            raise
        return Tensor._adopt(out.value)

    # -- conversions ---------------------------------------------------------------------------

    def cuda(self, index=0):
        """This tensor when it is on a GPU (zero-copy); otherwise a copy in device memory."""
        return self if self.is_cuda else self.to(Device("cuda", index))

    def cpu(self):
        """This tensor when it is host-accessible; otherwise a copy in host memory."""
        return self if self._info.device.device_type != DEVICE_CUDA else self.to(Device("cpu", 0))

    def to(self, device, stream=None):
        """A copy on ``device`` ("cpu", "cuda", "cuda:1", a Device), or this tensor if it is there."""
        target = _parse_device(device)
        if target == self.device:
            return self
        out = empty(self.shape, self._info.dtype, layout=self.layout, device=target)
        lib.tb_copy(self._handle, out._handle, _stream_handle(stream))
        return out

    def clone(self, stream=None):
        """A packed copy in new memory of the same kind, on the same device."""
        out = ctypes.c_void_p()
        lib.tb_tensor_clone(self._handle, _stream_handle(stream), ctypes.byref(out))
        return Tensor._adopt(out.value)

    def numpy(self):
        """A NumPy array over this (host-accessible) tensor's memory, without copying."""
        import numpy

        return numpy.asarray(self)

    # -- views ---------------------------------------------------------------------------------

    def permute(self, layout):
        """A zero-copy view in ``layout``, a permutation of this tensor's labels ("NHWC" -> "NCHW")."""
        out = ctypes.c_void_p()
        lib.tb_tensor_permute(self._handle, _encode_layout(layout), ctypes.byref(out))
        return self._view(out.value)

    def with_layout(self, layout):
        """A zero-copy view with the dimensions labelled ``layout`` (None removes the labels)."""
        out = ctypes.c_void_p()
        lib.tb_tensor_with_layout(self._handle, _encode_layout(layout), ctypes.byref(out))
        return self._view(out.value)

    def __getitem__(self, index):
        """Integers select (dropping the dimension and its label), slices keep it; views only."""
        indices = index if isinstance(index, tuple) else (index,)
        tensor, dim = self, 0
        for item in indices:
            out = ctypes.c_void_p()
            if isinstance(item, slice):
                step = 1 if item.step is None else item.step
                start = item.start if item.start is not None else (0 if step > 0 else INT64_MAX)
                stop = item.stop if item.stop is not None else (INT64_MAX if step > 0 else INT64_MIN)
                lib.tb_tensor_slice(tensor._handle, dim, start, stop, step, ctypes.byref(out))
                dim += 1
            elif isinstance(item, int) or hasattr(item, "__index__"):
                lib.tb_tensor_select(tensor._handle, dim, item.__index__(), ctypes.byref(out))
            else:
                raise TypeError(f"tensorbridge.Tensor indices are ints and slices, not {type(item).__name__}")
            tensor = self._view(out.value)
        return tensor


def _parse_device(device):
    if isinstance(device, Device):
        return device
    text = str(device)
    kind, _, index = text.partition(":")
    if kind not in _DEVICE_CODES:
        raise ValueError(f"unknown device {device!r}")
    return Device(kind, int(index or 0))


# ---- construction -----------------------------------------------------------------------------

_scratch = threading.local()  # per thread: a reusable descriptor and output slot, with pointers


def _thread_scratch():
    slot = getattr(_scratch, "slot", None)
    if slot is None:
        description, out = ArrayInterface(), ctypes.c_void_p()
        slot = _scratch.slot = (description, ctypes.byref(description), out, ctypes.byref(out))
    return slot


def _import_interface(function, obj, interface, encoded, cuda):
    """Imports an interface dict; the tensor (and its views) hold ``obj``."""
    description, description_pointer, out, out_pointer = _thread_scratch()
    _fill_interface(description, interface, cuda)
    status = function(description_pointer, encoded, _NO_CLEANUP, None, out_pointer)
    if status:
        raise_for(status)
    return Tensor._adopt(out.value, obj)


def as_tensor(obj, layout=None):
    """A tensorbridge Tensor over ``obj``'s memory, without copying.

    ``obj`` may be a Tensor, or anything with ``__cuda_array_interface__`` (PyTorch, CuPy, Numba,
    CV-CUDA), ``__dlpack__`` (PyTorch, JAX, CuPy, NumPy) or ``__array_interface__`` (NumPy).
    ``layout`` names the dimensions ("HWC", "NCHW" …). The tensor keeps ``obj`` alive, honours its
    read-only flag, and orders its first use on another stream after the producer's stream.
    """
    encoded = _encode_layout(layout)
    if isinstance(obj, Tensor):
        return obj if layout is None else obj.with_layout(layout)
    cai = getattr(obj, "__cuda_array_interface__", None)
    if cai is not None:
        return _import_interface(_from_cai, obj, cai, encoded, cuda=True)
    numpy_interface = getattr(obj, "__array_interface__", None)
    if numpy_interface is not None:
        return _import_interface(_from_numpy, obj, numpy_interface, encoded, cuda=False)
    if hasattr(obj, "__dlpack__"):
        try:
            capsule = obj.__dlpack__(max_version=(1, 1))
        except TypeError:  # producers older than DLPack 1.0
            capsule = obj.__dlpack__()
        return Tensor._adopt(_dlpack.consume(capsule, encoded))
    raise TypeError(
        f"{type(obj).__name__} exposes no __cuda_array_interface__, __dlpack__ or __array_interface__")


def from_dlpack(obj, layout=None):
    """A Tensor from a DLPack producer or capsule (``as_tensor`` covers producers too)."""
    if hasattr(obj, "__dlpack__"):
        return as_tensor(obj, layout)
    return Tensor._adopt(_dlpack.consume(obj, _encode_layout(layout)))


def empty(shape, dtype, layout=None, device="cpu", row_alignment=0):
    """A new tensor owning uninitialised (host: zeroed) memory on ``device``."""
    target = _parse_device(device)
    code, bits = (dtype.code, dtype.bits) if isinstance(dtype, DataType) else _dtype_key(dtype)
    shape = tuple(int(e) for e in shape)
    extents = (ctypes.c_int64 * max(len(shape), 1))(*shape)
    out = ctypes.c_void_p()
    lib.tb_tensor_alloc(_CDevice(_DEVICE_CODES[target.type], target.index), DataType(code, bits, 1),
                        len(shape), extents, _encode_layout(layout), row_alignment, ctypes.byref(out))
    return Tensor._adopt(out.value)


def _alloc_like(tensor, shape, layout, dtype=None):
    device = tensor.device
    return empty(shape, dtype if dtype is not None else tensor._info.dtype, layout=layout, device=device)


def _permuted_shape(tensor, layout):
    source = tensor.layout
    if source is None or sorted(source) != sorted(layout):
        raise ValueError(f"layout {layout!r} is not a permutation of the tensor's layout {source!r}")
    return tuple(tensor.shape[source.index(label)] for label in layout)


# ---- operations -------------------------------------------------------------------------------


def reformat(tensor, layout, stream=None):
    """A new tensor holding ``tensor`` in ``layout`` (same device and dtype), e.g. NHWC -> NCHW."""
    tensor = as_tensor(tensor)
    out = _alloc_like(tensor, _permuted_shape(tensor, layout), layout)
    lib.tb_reformat(tensor._handle, out._handle, _stream_handle(stream))
    return out


def reformat_into(dst, src, stream=None):
    """Writes ``src`` into ``dst`` in ``dst``'s layout; returns ``dst``."""
    dst_tensor, src_tensor = as_tensor(dst), as_tensor(src)
    lib.tb_reformat(src_tensor._handle, dst_tensor._handle, _stream_handle(stream))
    return dst


def copy_into(dst, src, stream=None):
    """Copies ``src`` into ``dst`` (same shape and dtype, any devices and strides); returns ``dst``."""
    dst_tensor, src_tensor = as_tensor(dst), as_tensor(src)
    lib.tb_copy(src_tensor._handle, dst_tensor._handle, _stream_handle(stream))
    return dst


def convert(tensor, layout=None, dtype="float32", scale=1.0, offset=0.0, stream=None):
    """One pass: y = x * scale[c] + offset[c] (c along the 'C' label), converted to ``dtype`` and
    written in ``layout`` — e.g. uint8 NHWC -> float32 NCHW normalisation. ``scale`` and ``offset``
    are numbers or per-channel sequences."""
    tensor = as_tensor(tensor)
    layout = layout or tensor.layout
    shape = tensor.shape if layout == tensor.layout else _permuted_shape(tensor, layout)
    out = _alloc_like(tensor, shape, layout, DataType(*_dtype_key(dtype), 1))
    scales = [float(s) for s in (scale if hasattr(scale, "__len__") else [scale])]
    offsets = [float(o) for o in (offset if hasattr(offset, "__len__") else [offset])]
    count = max(len(scales), len(offsets))
    scales = scales * count if len(scales) == 1 else scales
    offsets = offsets * count if len(offsets) == 1 else offsets
    if len(scales) != len(offsets):
        raise ValueError(f"{len(scales)} scale values and {len(offsets)} offset values")
    scale_array = (ctypes.c_float * len(scales))(*scales)
    offset_array = (ctypes.c_float * len(offsets))(*offsets)
    lib.tb_convert(tensor._handle, out._handle, scale_array, offset_array, count, _stream_handle(stream))
    return out


def cuda_device_count():
    """Number of CUDA devices, 0 where CUDA is unavailable."""
    count = ctypes.c_int32()
    try:
        lib.tb_cuda_device_count(ctypes.byref(count))
    except RuntimeError:
        return 0
    return count.value


def live_tensor_count():
    """Number of live library tensor handles (a diagnostic for leak checks)."""
    count = ctypes.c_int64()
    lib.tb_tensor_live_count(ctypes.byref(count))
    return count.value
