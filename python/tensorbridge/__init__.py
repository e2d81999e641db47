"""tensorbridge: zero-copy tensor exchange between NumPy, PyTorch, CuPy, Numba, JAX and C/C++,
and layout conversion at memory speed on the GPU — over ctypes, no compiler needed (an optional
compiled fast path, built by pip where a compiler exists, takes the per-tensor calls out of ctypes).

    t = tensorbridge.as_tensor(torch_tensor, "HWC")          # zero-copy
    planar = tensorbridge.reformat(t, "CHW")                   # one kernel on the GPU
    back = torch.as_tensor(planar.cuda(), device="cuda")       # zero-copy, via __cuda_array_interface__
"""
from ._lib import (
    CudaError,
    CudaUnavailableError,
    DeviceMismatchError,
    InternalError,
    InvalidArgumentError,
    NotSupportedError,
    OutOfMemoryError,
    ReadOnlyError,
    TensorBridgeError,
    lib as _library,
)
from . import _abi  # noqa: F401  (checks every ctypes struct against the library at import)
from ._allocators import TorchAllocator, allocator_installed, pool_used_bytes, set_allocator, trim_pool
from ._devices import Device, cuda_device_count, cuda_device_count_or_error
from ._frames import convert_frames
from ._ops import convert, convert_into, convert_plan, copy_into, reformat, reformat_into, reformat_plan
from ._producers import as_tensor, from_dlpack
from ._sharing import collect_shared, from_shared, receive_shared, revoke_shared, send_shared, shared_pool_fd
from ._tensor import Tensor, empty, live_tensor_count
from ._exchange import offer as _offer

_offer(Tensor)  # Tensor.__dlpack_c_exchange_api__: the library's own DLPack exchange API table

__version__ = _library.tb_version_string().decode()

__all__ = [
    "CudaError", "CudaUnavailableError", "Device", "DeviceMismatchError", "InternalError",
    "InvalidArgumentError", "NotSupportedError", "OutOfMemoryError", "ReadOnlyError", "Tensor",
    "TensorBridgeError", "as_tensor", "convert", "convert_frames", "convert_into", "convert_plan", "copy_into",
    "cuda_device_count",
    "cuda_device_count_or_error", "empty",
    "collect_shared", "from_dlpack", "from_shared", "receive_shared", "revoke_shared", "send_shared",
    "shared_pool_fd", "live_tensor_count", "reformat", "reformat_into", "reformat_plan", "TorchAllocator",
    "allocator_installed", "pool_used_bytes", "set_allocator", "trim_pool",
]
