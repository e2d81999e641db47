"""Tensors shared between processes through CUDA IPC: a 512-byte descriptor (``Tensor.share``) and
the import (``from_shared``), the pool file descriptor that memory from ``tensorbridge.empty``
needs beside it, Unix-socket helpers that carry both, lease housekeeping, and pickling for
``multiprocessing``: a CUDA tensor put in a ``multiprocessing`` Queue or Pipe, or passed to a
``Process``, arrives as a tensor over the same memory — as ``torch.multiprocessing`` does for
torch tensors — and the sender's memory is held until the receiver releases it."""
import ctypes
import os
from multiprocessing import reduction

from ._lib import I32, I64, IpcTensor, lib
from ._streams import stream_handle
from ._tensor import Tensor


def _descriptor(data):
    data = bytes(data)
    if len(data) != ctypes.sizeof(IpcTensor):
        raise ValueError(f"an IPC descriptor has {ctypes.sizeof(IpcTensor)} bytes, not {len(data)}")
    return IpcTensor.from_buffer_copy(data)


def _fileno(channel):
    return channel if isinstance(channel, int) else channel.fileno()


def from_shared(descriptor, stream=None, pool_fd=None):
    """The tensor another process described with ``Tensor.share()`` (bytes or any buffer of 512
    bytes), over the same GPU memory without copying (``tb_tensor_import_ipc``); ``stream``
    waits for the exporter's work first. Memory from the exporter's own pool needs
    ``pool_fd`` (from its ``shared_pool_fd``) the first time; it is not closed here. Bytes that
    are not a descriptor, were changed on the way, were imported before, name a GPU this process
    does not see, or whose exporter has gone raise with the reason. Releasing the tensor (and its
    views) ends the exporter's hold on the memory."""
    made = ctypes.c_void_p()
    fd = -1 if pool_fd is None else _fileno(pool_fd)
    lib.tb_tensor_import_ipc(ctypes.byref(_descriptor(descriptor)), fd, stream_handle(stream),
                             ctypes.byref(made))
    return Tensor._adopt(made.value)


def shared_pool_fd(descriptor):
    """A new file descriptor (an int the caller closes) for the memory pool of a descriptor this
    process made, for the importer's ``from_shared(..., pool_fd=)`` — sent with ``SCM_RIGHTS``
    (``socket.send_fds``); ``None`` when the memory needs none (``cudaMalloc`` memory)."""
    fd = I32()
    lib.tb_ipc_pool_fd(ctypes.byref(_descriptor(descriptor)), ctypes.byref(fd))
    return None if fd.value < 0 else fd.value


def send_shared(sock, tensor, stream=None):
    """Shares ``tensor`` (CUDA) through a connected Unix domain socket (a ``socket.socket`` or a
    file descriptor): the descriptor, and the pool's file descriptor when one is needed
    (``tb_ipc_send``). The receiver calls ``receive_shared``."""
    descriptor = _descriptor(tensor.share(stream))
    lib.tb_ipc_send(_fileno(sock), ctypes.byref(descriptor))


def receive_shared(sock, stream=None):
    """The tensor the other end of a Unix domain socket sent with ``send_shared`` (or C's
    ``tb_ipc_send``), imported (``tb_ipc_receive``)."""
    made = ctypes.c_void_p()
    lib.tb_ipc_receive(_fileno(sock), stream_handle(stream), ctypes.byref(made))
    return Tensor._adopt(made.value)


def revoke_shared(descriptor):
    """Ends the hold of a descriptor this process made that will not be imported (lost on the
    way): its memory is no longer kept for it, and its import is refused."""
    lib.tb_ipc_revoke(ctypes.byref(_descriptor(descriptor)))


def collect_shared():
    """Lets go of memory held for imports that were released or whose process died; returns how
    many exports are still held (poll it to wait until consumers are done)."""
    held = I64()
    lib.tb_ipc_collect(ctypes.byref(held))
    return held.value


_fds_for_children: list[int] = []  # pool file descriptors handed to processes being spawned: kept open


def _pool_fd_for_pickle(descriptor):
    """The pool file descriptor a pickled descriptor needs, wrapped for multiprocessing (None
    when it needs none)."""
    fd = shared_pool_fd(descriptor)
    if fd is None:
        return None
    wrapped = reduction.DupFd(fd)
    from multiprocessing import context

    if context.get_spawning_popen() is None:
        os.close(fd)  # the resource sharer holds a duplicate until the receiver takes it
    else:
        _fds_for_children.append(fd)  # passed by number to the child being spawned
    return wrapped


def _rebuild_cuda(descriptor, pool_fd):
    fd = -1 if pool_fd is None else pool_fd.detach()
    try:
        return from_shared(descriptor, pool_fd=fd)
    finally:
        if fd >= 0:
            os.close(fd)


def _rebuild_host(array, layout):
    from ._producers import as_tensor

    return as_tensor(array, layout)


def _reduce(tensor):
    if tensor.device.type == "cuda":
        descriptor = tensor.share()
        return _rebuild_cuda, (descriptor, _pool_fd_for_pickle(descriptor))
    return _rebuild_host, (tensor.numpy().copy(), tensor.layout)


reduction.ForkingPickler.register(Tensor, _reduce)
