"""The Tensor: a reference to a library tensor handle, its properties, its interfaces (CUDA Array
Interface, NumPy array interface, DLPack producer), conversions and zero-copy views; and
``empty``, which allocates one."""
import ctypes
import operator

from . import _dlpack, _keepalive
from ._compiled import connect, native
from ._devices import Device, c_device, device_name, is_known_type, parse_device, public_device
from ._dtypes import data_type, numpy_dtype
from ._interface import interface_dict
from ._lib import (DEVICE_CPU, DEVICE_CUDA, DEVICE_CUDA_HOST, DEVICE_CUDA_MANAGED, ArrayInterface, DataType,
                   IpcTensor, TensorInfo, lib, raise_for, unchecked)
from ._streams import stream_handle
from ._values import INT64, int64_tuple, integer, layout_bytes, remember

_release = unchecked("tb_tensor_release")


class _TensorBase:
    """A library tensor handle owned by a Python object (the ctypes twin of
    ``_native.TensorBase``, used when the compiled module is absent)."""

    __slots__ = ("_handle", "_cached_info", "_owner", "__weakref__")

    @classmethod
    def _adopt(cls, handle, owner=None):
        tensor = object.__new__(cls)
        tensor._handle = handle
        tensor._cached_info = None
        tensor._owner = owner
        return tensor

    def __del__(self):
        handle = getattr(self, "_handle", None)
        if handle:
            self._handle = None
            _release(handle)  # a status here cannot be reported from a finalizer


class Tensor(native.TensorBase if native is not None else _TensorBase):  # type: ignore[misc]
    """A tensor of the library: a reference to strided memory on the CPU or a GPU, with a layout.

    Create one with :func:`as_tensor` (zero-copy over NumPy, PyTorch, CuPy, Numba, JAX and any
    producer of the CUDA Array Interface, DLPack or the NumPy array interface) or :func:`empty`.
    """

    __slots__ = ()

    def __init__(self):
        raise TypeError("use tensorbridge.as_tensor() or tensorbridge.empty()")

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
        return numpy_dtype(self._info.dtype)

    @property
    def layout(self):
        """Dimension labels such as "NHWC", or None."""
        labels = self._info.layout.labels.decode()
        return labels or None

    @property
    def device(self):
        return public_device(self._info.device)

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

    def _cuda_array_interface(self):
        """CUDA Array Interface v3 over GPU-accessible memory, with the pending stream if any."""
        if self._info.device.device_type == DEVICE_CPU:
            raise AttributeError("host tensor: no __cuda_array_interface__ (use .cuda())")
        description = ArrayInterface()
        lib.tb_tensor_to_cuda_array_interface(self._handle, ctypes.byref(description))
        return interface_dict(description, cuda=True)

    def _array_interface(self):
        """NumPy array interface v3 over host-accessible memory."""
        if self._info.device.device_type == DEVICE_CUDA:
            raise AttributeError("GPU tensor: no __array_interface__ (use .cpu())")
        description = ArrayInterface()
        lib.tb_tensor_to_array_interface(self._handle, ctypes.byref(description))
        return interface_dict(description, cuda=False)

    def _dlpack_device(self):
        d = self._info.device
        return (d.device_type, d.device_id)

    def _dlpack_export(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        """A DLPack capsule (versioned when ``max_version >= (1, 0)``), per the array API."""
        source = self
        if dl_device is not None and tuple(dl_device) != self._dlpack_device():
            if copy is False:
                raise BufferError(f"dl_device {tuple(dl_device)} differs from {self._dlpack_device()} and copy=False")
            if not is_known_type(dl_device[0]):
                raise BufferError(f"cannot copy to DLPack device type {dl_device[0]}")
            source = self.to(Device(device_name(dl_device[0]), dl_device[1]))
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
        if source.readonly and not versioned:
            raise BufferError("read-only tensor: legacy DLPack cannot mark read-only; a consumer must "
                              "ask for a versioned capsule (max_version >= (1, 0))")
        if source._owner is None:
            return _dlpack.export(source._handle, versioned, copied)
        alias = source._alias_keeping_owner()
        return _dlpack.export(alias._handle, versioned, copied)

    if native is None:  # else the compiled base type's (the interfaces and the common export in C)
        __cuda_array_interface__ = property(_cuda_array_interface)
        __array_interface__ = property(_array_interface)
        __dlpack_device__ = _dlpack_device
        __dlpack__ = _dlpack_export

    def _alias_keeping_owner(self):
        """A second library tensor over the same memory whose native cleanup keeps the Python
        producer alive: for exports that outlive every Python object."""
        info = self._info
        out = ctypes.c_void_p()
        token = _keepalive.keep(self._owner)
        try:
            lib.tb_tensor_wrap(info.data, info.device, info.dtype, info.rank, info.shape, info.strides,
                               info.layout.labels or None, info.readonly, _keepalive.release, token,
                               ctypes.byref(out))
        except BaseException:
            _keepalive.forget(token)
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
        target = parse_device(device)
        if target == self.device:
            return self
        out = empty(self.shape, self._info.dtype, layout=self.layout, device=target,
                    stream=1 if stream is None else stream)
        lib.tb_copy(self._handle, out._handle, stream_handle(stream))
        return out

    def clone(self, stream=None):
        """A packed copy in new memory of the same kind, on the same device."""
        out = ctypes.c_void_p()
        lib.tb_tensor_clone(self._handle, stream_handle(stream), ctypes.byref(out))
        return Tensor._adopt(out.value)

    def share(self, stream=None):
        """This CUDA tensor described for another process, as 512 bytes (``tb_tensor_export_ipc``):
        send them through any channel and call ``tensorbridge.from_shared`` there, once. An event
        is recorded on ``stream`` (default: the legacy default stream) for the importer to wait
        on. The export holds the memory until that import is released (or
        ``tensorbridge.revoke_shared``): this tensor may go at once. Memory from ``cudaMalloc``
        (PyTorch's and CuPy's default allocators) and from ``tensorbridge.empty`` is shareable;
        the latter also needs its pool's file descriptor (``tensorbridge.shared_pool_fd``; or use
        ``send_shared``/``receive_shared``, or ``multiprocessing``, which carry it)."""
        descriptor = IpcTensor()
        lib.tb_tensor_export_ipc(self._handle, stream_handle(stream), ctypes.byref(descriptor))
        return bytes(descriptor.bytes)

    def numpy(self):
        """A NumPy array over this (host-accessible) tensor's memory, without copying."""
        import numpy

        return numpy.asarray(self)

    # -- views ---------------------------------------------------------------------------------

    def permute(self, layout):
        """A zero-copy view in ``layout``, a permutation of this tensor's labels ("NHWC" -> "NCHW")."""
        if native is not None:
            return self._relabel(_RELABEL_PERMUTE, layout_bytes(layout))
        out = ctypes.c_void_p()
        lib.tb_tensor_permute(self._handle, layout_bytes(layout), ctypes.byref(out))
        return self._view(out.value)

    def with_layout(self, layout):
        """A zero-copy view with the dimensions labelled ``layout`` (None removes the labels)."""
        if native is not None:
            return self._relabel(_RELABEL_WITH_LAYOUT, layout_bytes(layout))
        out = ctypes.c_void_p()
        lib.tb_tensor_with_layout(self._handle, layout_bytes(layout), ctypes.byref(out))
        return self._view(out.value)

    def __getitem__(self, index):
        """Integers select (dropping the dimension and its label), slices keep it; views only."""
        indices = index if isinstance(index, tuple) else (index,)
        tensor, dim = self, 0
        for item in indices:
            if isinstance(item, slice):
                step = 1 if item.step is None else item.step
                step = integer(step, "slice step", INT64)
                start = _slice_bound(item.start, 0 if step > 0 else INT64.high)
                stop = _slice_bound(item.stop, INT64.high if step > 0 else INT64.low)
                tensor = _slice_view(tensor, dim, start, stop, step)
                dim += 1
            elif isinstance(item, int) or hasattr(item, "__index__"):
                tensor = _select_view(tensor, dim, integer(item, "index", INT64))
            else:
                raise TypeError(f"tensorbridge.Tensor indices are ints and slices, not {type(item).__name__}")
        return tensor



_RELABEL_PERMUTE, _RELABEL_WITH_LAYOUT = 0, 1  # the compiled base type's _relabel codes


def _slice_view_with_ctypes(tensor, dim, start, stop, step):
    out = ctypes.c_void_p()
    lib.tb_tensor_slice(tensor._handle, dim, start, stop, step, ctypes.byref(out))
    return tensor._view(out.value)


def _select_view_with_ctypes(tensor, dim, index):
    out = ctypes.c_void_p()
    lib.tb_tensor_select(tensor._handle, dim, index, ctypes.byref(out))
    return tensor._view(out.value)


# The views of __getitem__: made in C by the compiled base type when it is there.
if native is not None:
    connect(Tensor)
    _slice_view, _select_view = Tensor._slice, Tensor._select
else:
    _slice_view, _select_view = _slice_view_with_ctypes, _select_view_with_ctypes


def _slice_bound(value, default):
    """A slice bound for the library: None becomes ``default``; bounds beyond int64 clamp, as
    Python slices clamp to the extent."""
    if value is None:
        return default
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"slice bounds must be integers, not {type(value).__name__}") from None
    return min(max(value, INT64.low), INT64.high)


_alloc = unchecked("tb_tensor_alloc", convert_arguments=False)
_alloc_async = unchecked("tb_tensor_alloc_async", convert_arguments=False)
_C_DEVICES: dict = {}  # device argument -> TbDevice
_C_DTYPES: dict = {}  # dtype argument -> TbDataType
_EXTENTS: dict = {}  # checked shape tuple -> ctypes int64 array


def _c_device_of(device):
    try:
        found = _C_DEVICES.get(device)
    except TypeError:  # unhashable: the slow path says what is wrong
        return c_device(parse_device(device))
    return found if found is not None else remember(_C_DEVICES, device, c_device(parse_device(device)))


def c_dtype(dtype):
    """The TbDataType of a dtype argument (memoised)."""
    if type(dtype) is DataType:  # a TbDataType already (ctypes structs are unhashable)
        return dtype
    try:
        found = _C_DTYPES.get(dtype)
    except TypeError:  # unhashable: no memo
        return data_type(dtype)
    return found if found is not None else remember(_C_DTYPES, dtype, data_type(dtype))


def _extents_of(shape):
    shape = int64_tuple(shape, "shape")
    found = _EXTENTS.get(shape)
    if found is None:
        found = remember(_EXTENTS, shape, (ctypes.c_int64 * max(len(shape), 1))(*shape))
    return shape, found


def empty(shape, dtype, layout=None, device="cpu", row_alignment=0, stream=None):
    """A new tensor owning uninitialised (host: zeroed) memory on ``device``. Without ``stream``
    the memory is usable on every stream at once; with one, the allocation is ordered on that
    stream (stream-ordered, no synchronisation), and other streams are ordered after it by
    tensorbridge's operations or ``Tensor.sync``."""
    shape, extents = _extents_of(shape)
    c_dev, c_type, labels = _c_device_of(device), c_dtype(dtype), layout_bytes(layout)
    # The call is made in C, which takes a dtype as (code, bits) of one lane: float4_e2m1fn_x2
    # (lanes 2) goes through ctypes.
    if native is not None and type(row_alignment) is int and c_type.lanes == 1:
        handle = None if stream is None else (stream if type(stream) is int and 0 < stream < 1 << 64
                                              else stream_handle(stream) or 1)
        made = native.alloc(shape, (c_dev.device_type, c_dev.device_id), (c_type.code, c_type.bits), labels,
                            row_alignment, handle)
        if made is not NotImplemented:
            return made
    alignment = ctypes.c_int64(row_alignment if type(row_alignment) is int and row_alignment == 0
                               else integer(row_alignment, "row_alignment", INT64))
    out = ctypes.c_void_p()
    rank = ctypes.c_int32(len(shape))
    if stream is None:
        status = _alloc(c_dev, c_type, rank, extents, labels, alignment, ctypes.byref(out))
    else:
        handle = ctypes.c_void_p(stream if type(stream) is int and 0 < stream < 1 << 64
                                 else stream_handle(stream) or 1)
        status = _alloc_async(c_dev, c_type, rank, extents, labels, alignment, handle,
                              ctypes.byref(out))
    if status:
        raise_for(status)
    return Tensor._adopt(out.value)


def live_tensor_count():
    """Number of live library tensor handles (a diagnostic for leak checks)."""
    count = ctypes.c_int64()
    lib.tb_tensor_live_count(ctypes.byref(count))
    return count.value
