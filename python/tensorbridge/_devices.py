"""Devices: the public ``Device`` value, device names from the library (``tb_device_type_name``),
parsing "cuda:1"-style strings, and the CUDA device count."""
import ctypes
from typing import NamedTuple

from ._lib import Device as _CDevice
from ._lib import lib
from ._values import INT32, integer


class Device(NamedTuple):
    """Where a tensor lives: type 'cpu', 'cuda', 'cuda_host' (pinned) or 'cuda_managed', and an ordinal."""

    type: str
    index: int  # type: ignore[assignment]  # the field shadows tuple.index, as it always has

    def __str__(self):
        return self.type if self.type == "cpu" else f"{self.type}:{self.index}"


_UNKNOWN = lib.tb_device_type_name(-1).decode()
# DLPack device type codes are small integers; the library names those it supports.
_NAMES = {code: name for code in range(64) if (name := lib.tb_device_type_name(code).decode()) != _UNKNOWN}
_CODES = {name: code for code, name in _NAMES.items()}


def device_name(code):
    """The library's name of a device type code ("cpu", "cuda" …)."""
    return _NAMES.get(code) or lib.tb_device_type_name(code).decode()


def public_device(device):
    """The ``Device`` of a TbDevice."""
    return Device(device_name(device.device_type), device.device_id)


def is_known_type(code):
    return code in _NAMES


def parse_device(device):
    """A ``Device`` from a Device, "cpu", "cuda", "cuda:1" …"""
    if isinstance(device, Device):
        return device
    text = str(device)
    kind, _, index = text.partition(":")
    if kind not in _CODES:
        raise ValueError(f"unknown device {device!r}")
    try:
        ordinal = int(index or 0)
    except ValueError:
        raise ValueError(f"unknown device {device!r}") from None
    return Device(kind, integer(ordinal, "device index", INT32))


def c_device(device):
    """The TbDevice of a ``Device``."""
    return _CDevice(_CODES[device.type], device.index)


def cuda_device_count():
    """Number of CUDA devices, 0 where CUDA is unavailable.

    Any error counts as unavailable: no libcuda, a driver that fails to load or initialise, no
    GPU. Use it to choose a code path; it cannot tell a machine without a GPU from one whose
    driver is broken (``cuda_device_count_or_error`` can)."""
    count, _ = cuda_device_count_or_error()
    return count


def cuda_device_count_or_error():
    """``(count, None)``, or ``(0, error)`` with the library's exception (its message says what
    failed: libcuda missing, ``cuInit`` failed, …) where CUDA is unavailable."""
    count = ctypes.c_int32()
    try:
        lib.tb_cuda_device_count(ctypes.byref(count))
    except RuntimeError as error:
        return 0, error
    return count.value, None
