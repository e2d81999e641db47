"""Loading libtensorbridge with ctypes: the C structs, the function prototypes, and the mapping
from a failed call's status to a Python exception carrying the library's message.

The library is looked up in this order: the path in ``TENSORBRIDGE_LIBRARY``; the copy installed
beside this package; the repository's build tree (``target/release``, then ``target/debug``).
"""
import ctypes
import os
from pathlib import Path

MAX_RANK = 15
TYPESTR_CAPACITY = 16

# Device types (DLPack codes); their names come from the library (_devices.py).
DEVICE_CPU, DEVICE_CUDA, DEVICE_CUDA_HOST, DEVICE_CUDA_MANAGED = 1, 2, 3, 13
DLPACK_FLAG_READ_ONLY, DLPACK_FLAG_IS_COPIED = 1, 2
DLPACK_MAX_VERSION = (1, 1)  # TB_DLPACK_MAJOR_VERSION, TB_DLPACK_MINOR_VERSION


class DataType(ctypes.Structure):
    """TbDataType: DLPack's (code, bits, lanes)."""

    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class Device(ctypes.Structure):
    """TbDevice: DLPack device type code and ordinal."""

    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class Layout(ctypes.Structure):
    """TbLayout: NUL-terminated labels."""

    _fields_ = [("labels", ctypes.c_char * 16)]


class TensorInfo(ctypes.Structure):
    """TbTensorInfo."""

    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", Device),
        ("dtype", DataType),
        ("rank", ctypes.c_int32),
        ("shape", ctypes.c_int64 * MAX_RANK),
        ("strides", ctypes.c_int64 * MAX_RANK),
        ("layout", Layout),
        ("readonly", ctypes.c_bool),
        ("contiguous", ctypes.c_bool),
        ("element_count", ctypes.c_int64),
        ("nbytes", ctypes.c_int64),
    ]


class ArrayInterface(ctypes.Structure):
    """TbArrayInterface: CUDA Array Interface / NumPy array interface contents."""

    _fields_ = [
        ("version", ctypes.c_int32),
        ("data", ctypes.c_void_p),
        ("readonly", ctypes.c_bool),
        ("typestr", ctypes.c_char * TYPESTR_CAPACITY),
        ("rank", ctypes.c_int32),
        ("shape", ctypes.c_int64 * MAX_RANK),
        ("strides", ctypes.c_int64 * MAX_RANK),
        ("has_strides", ctypes.c_bool),
        ("stream", ctypes.c_uint64),
        ("has_stream", ctypes.c_bool),
        ("has_mask", ctypes.c_bool),
    ]


class DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", Device),
        ("ndim", ctypes.c_int32),
        ("dtype", DataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


class DLPackVersion(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32)]


class DLManagedTensor(ctypes.Structure):
    pass


DLManagedTensor._fields_ = [
    ("dl_tensor", DLTensor),
    ("manager_ctx", ctypes.c_void_p),
    ("deleter", ctypes.CFUNCTYPE(None, ctypes.POINTER(DLManagedTensor))),
]


class DLManagedTensorVersioned(ctypes.Structure):
    pass


DLManagedTensorVersioned._fields_ = [
    ("version", DLPackVersion),
    ("manager_ctx", ctypes.c_void_p),
    ("deleter", ctypes.CFUNCTYPE(None, ctypes.POINTER(DLManagedTensorVersioned))),
    ("flags", ctypes.c_uint64),
    ("dl_tensor", DLTensor),
]

CLEANUP = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)

ALLOCATE = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, Device,
                            ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_void_p,
                            ctypes.c_size_t)
FREE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, Device, ctypes.c_void_p)


class ExchangeAPIHeader(ctypes.Structure):
    """TbDLPackExchangeAPIHeader: a DLPack exchange API table's version and older table."""


ExchangeAPIHeader._fields_ = [("version", DLPackVersion), ("prev_api", ctypes.POINTER(ExchangeAPIHeader))]


class ExchangeAPI(ctypes.Structure):
    """TbDLPackExchangeAPI (dlpack.h 1.3's DLPackExchangeAPI); the functions as plain addresses."""

    _fields_ = [("header", ExchangeAPIHeader), ("managed_tensor_allocator", ctypes.c_void_p),
                ("managed_tensor_from_py_object_no_sync", ctypes.c_void_p),
                ("managed_tensor_to_py_object_no_sync", ctypes.c_void_p),
                ("dltensor_from_py_object_no_sync", ctypes.c_void_p), ("current_work_stream", ctypes.c_void_p)]


class FrameFormat(ctypes.Structure):
    """TbFrameFormat: a YUV 4:2:0 frame's pixel format, colour standard, range and channel order."""

    _fields_ = [("pixel_format", ctypes.c_int32), ("standard", ctypes.c_int32), ("range", ctypes.c_int32),
                ("bgr", ctypes.c_bool)]


class IpcTensor(ctypes.Structure):
    """TbIpcTensor: a CUDA tensor described for another process (plain bytes)."""

    _fields_ = [("bytes", ctypes.c_uint8 * 512)]


class Allocator(ctypes.Structure):
    """TbAllocator: an application's allocate/free callbacks and their context."""

    _fields_ = [("context", ctypes.c_void_p), ("allocate", ALLOCATE), ("free", FREE)]


def _candidates():
    explicit = os.environ.get("TENSORBRIDGE_LIBRARY")
    if explicit:
        yield Path(explicit)
        return
    here = Path(__file__).resolve().parent
    yield here / "libtensorbridge.so"
    root = here.parent.parent
    for profile in ("release", "debug"):
        yield root / "target" / profile / "libtensorbridge.so"


def _load():
    tried = []
    for path in _candidates():
        tried.append(str(path))
        if path.exists():
            return ctypes.CDLL(str(path))
    raise ImportError(
        "tensorbridge: libtensorbridge.so not found (set TENSORBRIDGE_LIBRARY, install the package "
        "with `pip install ./python`, or run `cargo build --release`); tried: " + ", ".join(tried)
    )


lib = _load()

lib.tb_last_error_message.restype = ctypes.c_char_p
lib.tb_last_error_message.argtypes = []
lib.tb_status_name.restype = ctypes.c_char_p
lib.tb_status_name.argtypes = [ctypes.c_int32]
lib.tb_version_string.restype = ctypes.c_char_p
lib.tb_version_string.argtypes = []
lib.tb_device_type_name.restype = ctypes.c_char_p
lib.tb_device_type_name.argtypes = [ctypes.c_int32]
lib.tb_dtype_count.restype = ctypes.c_int32
lib.tb_dtype_count.argtypes = []


def _status_name(status):
    return lib.tb_status_name(status).decode()


class TensorBridgeError(RuntimeError):
    """Base class of the errors the library reports; ``status`` names the TbStatus."""

    status = _status_name(9)


_ERRORS: dict[int, type] = {}  # TbStatus value -> exception class


def _error(status, name, *bases):
    """The exception class for one TbStatus value, named and documented by the library."""
    status_name = _status_name(status)
    error = type(name, (TensorBridgeError, *bases), {"__doc__": status_name, "status": status_name})
    _ERRORS[status] = error
    return error


InvalidArgumentError = _error(1, "InvalidArgumentError", ValueError)
NotSupportedError = _error(2, "NotSupportedError", TypeError, BufferError)
OutOfMemoryError = _error(3, "OutOfMemoryError", MemoryError)
CudaUnavailableError = _error(4, "CudaUnavailableError")
CudaError = _error(5, "CudaError")
DeviceMismatchError = _error(6, "DeviceMismatchError", ValueError, BufferError)
ReadOnlyError = _error(7, "ReadOnlyError", ValueError, BufferError)
OverflowError_ = _error(8, "OverflowError", OverflowError)
InternalError = _error(9, "InternalError")


def _check(status, function, arguments):
    if status != 0:
        message = lib.tb_last_error_message().decode("utf-8", "replace")
        error = _ERRORS.get(status, InternalError)(message)
        error.status = _status_name(status)
        raise error
    return status


P = ctypes.c_void_p
PP = ctypes.POINTER(ctypes.c_void_p)
I32, I64 = ctypes.c_int32, ctypes.c_int64
_PROTOTYPES = {
    "tb_tensor_wrap": [P, Device, DataType, I32, P, P, ctypes.c_char_p, ctypes.c_bool, CLEANUP, P, PP],
    "tb_tensor_alloc": [Device, DataType, I32, P, ctypes.c_char_p, I64, PP],
    "tb_tensor_alloc_async": [Device, DataType, I32, P, ctypes.c_char_p, I64, P, PP],
    "tb_allocator_set": [I32, ctypes.POINTER(Allocator)],
    "tb_allocator_get": [I32, ctypes.POINTER(Allocator), ctypes.POINTER(ctypes.c_bool)],
    "tb_cuda_pool_trim": [I32, ctypes.c_uint64],
    "tb_cuda_pool_used_bytes": [I32, ctypes.POINTER(ctypes.c_uint64)],
    "tb_tensor_release": [P],
    "tb_tensor_retain": [P],
    "tb_tensor_info": [P, ctypes.POINTER(TensorInfo)],
    "tb_tensor_permute": [P, ctypes.c_char_p, PP],
    "tb_tensor_transpose": [P, I32, P, PP],
    "tb_tensor_slice": [P, I32, I64, I64, I64, PP],
    "tb_tensor_select": [P, I32, I64, PP],
    "tb_tensor_with_layout": [P, ctypes.c_char_p, PP],
    "tb_tensor_sync": [P, P],
    "tb_tensor_clone": [P, P, PP],
    "tb_tensor_export_ipc": [P, P, ctypes.POINTER(IpcTensor)],
    "tb_tensor_import_ipc": [ctypes.POINTER(IpcTensor), I32, P, PP],
    "tb_ipc_pool_fd": [ctypes.POINTER(IpcTensor), ctypes.POINTER(I32)],
    "tb_ipc_send": [I32, ctypes.POINTER(IpcTensor)],
    "tb_ipc_receive": [I32, P, PP],
    "tb_ipc_revoke": [ctypes.POINTER(IpcTensor)],
    "tb_ipc_collect": [ctypes.POINTER(I64)],
    "tb_tensor_from_cuda_array_interface": [ctypes.POINTER(ArrayInterface), ctypes.c_char_p, CLEANUP, P, PP],
    "tb_tensor_from_array_interface": [ctypes.POINTER(ArrayInterface), ctypes.c_char_p, CLEANUP, P, PP],
    "tb_tensor_to_cuda_array_interface": [P, ctypes.POINTER(ArrayInterface)],
    "tb_tensor_to_array_interface": [P, ctypes.POINTER(ArrayInterface)],
    "tb_tensor_from_dlpack": [P, ctypes.c_char_p, PP],
    "tb_tensor_from_dlpack_versioned": [P, ctypes.c_char_p, PP],
    "tb_tensor_to_dlpack": [P, PP],
    "tb_tensor_to_dlpack_versioned": [P, PP],
    "tb_tensor_to_dlpack_versioned_with_flags": [P, ctypes.c_uint64, PP],
    "tb_reformat": [P, P, P],
    "tb_copy": [P, P, P],
    "tb_convert": [P, P, P, P, I32, P],
    "tb_convert_channels": [P, P, P, I32, P, P, I32, P],
    "tb_reformat_new": [P, ctypes.c_char_p, P, PP],
    "tb_convert_new": [P, ctypes.c_char_p, DataType, P, P, I32, P, PP],
    "tb_reformat_plan": [P, P, ctypes.c_char_p, ctypes.c_size_t],
    "tb_convert_plan": [P, P, ctypes.c_char_p, ctypes.c_size_t],
    "tb_frame_convert": [P, ctypes.c_size_t, ctypes.POINTER(FrameFormat), P, P, P, I32, P],
    "tb_frame_convert_new": [P, ctypes.c_size_t, ctypes.POINTER(FrameFormat), ctypes.c_char_p, DataType, P, P, I32,
                             P, PP],
    "tb_cuda_device_count": [ctypes.POINTER(I32)],
    "tb_tensor_live_count": [ctypes.POINTER(I64)],
    "tb_dtype_from_typestr": [ctypes.c_char_p, ctypes.POINTER(DataType)],
    "tb_dtype_to_typestr": [DataType, ctypes.POINTER(ctypes.c_char_p)],
    "tb_dtype_name": [DataType, ctypes.POINTER(ctypes.c_char_p)],
    "tb_dtype_at": [I32, ctypes.POINTER(DataType)],
    "tb_layout_parse": [ctypes.c_char_p, ctypes.POINTER(Layout)],
    "tb_layout_permutation": [ctypes.POINTER(Layout), ctypes.POINTER(Layout), ctypes.POINTER(I32)],
    "tb_abi_layout": [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_size_t),
                      ctypes.POINTER(ctypes.c_size_t)],
}
for _name, _arguments in _PROTOTYPES.items():
    _function = getattr(lib, _name)
    _function.argtypes = _arguments
    _function.restype = ctypes.c_int
    _function.errcheck = _check


def raise_for(status):
    """Raises the exception for a failed call's status (for the unchecked fast-path functions)."""
    _check(status, None, None)


def unchecked(name, convert_arguments=True):
    """A second function object for `name` without errcheck: the caller tests the status itself
    (saves a Python call on the hot paths: import and release). With ``convert_arguments=False``
    it also skips ctypes' per-argument conversion: the caller must pass exactly-typed ctypes
    objects (byref pointers, bytes or None, a CFUNCTYPE instance)."""
    if not convert_arguments:
        function = lib[name]  # a fresh function object, independent of lib.<name>'s settings
        function.restype = ctypes.c_int
        return function
    prototype = ctypes.CFUNCTYPE(ctypes.c_int, *_PROTOTYPES[name])
    return prototype((name, lib))


