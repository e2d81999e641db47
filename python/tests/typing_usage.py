"""A small program written against tensorbridge's public types: test_typing.py type-checks it
with mypy --strict (against the package in this checkout, and test_wheel against the installed
wheel), so a stub that drifts from how the API is used fails there. It also runs (CPU only)."""
from __future__ import annotations

from typing import Any, Optional, Tuple

import tensorbridge
from tensorbridge import Device, Tensor


def planar_copy(pixels: Any) -> Tensor:
    image: Tensor = tensorbridge.as_tensor(pixels, "HWC")
    planar: Tensor = image.permute("CHW")
    shape: Tuple[int, ...] = planar.shape
    assert len(shape) == 3
    return tensorbridge.reformat(planar, "HWC")


def describe(tensor: Tensor) -> str:
    device: Device = tensor.device
    layout: Optional[str] = tensor.layout
    first: Tensor = tensor[0]
    window: Tensor = tensor[1:, ::2]
    return f"{device.type}:{device.index} {layout} {first.ndim} {window.shape} {tensor.nbytes}"


def normalise(batch: Tensor) -> Tensor:
    return tensorbridge.convert(batch, "NCHW", dtype="float32", scale=[1 / 255.0] * 3, offset=0.0)


def main() -> None:
    count, error = tensorbridge.cuda_device_count_or_error()
    reason: Optional[tensorbridge.TensorBridgeError] = error
    version: str = tensorbridge.__version__
    image = tensorbridge.empty((4, 6, 3), "uint8", layout="HWC")
    print(describe(image), count, reason is None, version)
    batch = tensorbridge.empty([2, 4, 6, 3], "uint8", layout="NHWC", device="cpu")
    print(normalise(batch).shape, planar_copy(image).layout, tensorbridge.live_tensor_count())
    try:
        tensorbridge.empty((-1,), "uint8")
    except tensorbridge.InvalidArgumentError as bad:
        status: str = bad.status
        print(status)
    installed: bool = tensorbridge.allocator_installed("cpu")
    print(installed, isinstance(image.device, tuple))


if __name__ == "__main__":
    main()
