"""CUDA Python (cuda.core) <-> tensorbridge: memory allocated and filled by cuda.core (a kernel
compiled and launched on a cuda.core stream), described to tensorbridge through the CUDA Array
Interface (with that stream), converted HWC -> CHW on the same stream, and read back by cuda.core
as a StridedMemoryView, without a copy anywhere but the final check.

    python3 examples/python/cuda_python_interop.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))
import numpy  # noqa: E402
from cuda.core import Device, LaunchConfig, Program, ProgramOptions, launch  # noqa: E402
from cuda.core.utils import StridedMemoryView  # noqa: E402

import tensorbridge  # noqa: E402

H, W, C = 480, 640, 3
FILL = r"""
extern "C" __global__ void fill(unsigned char* data, unsigned long long count) {
  unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x;
  if (i < count) data[i] = (unsigned char)(i % 251);
}
"""

device = Device(0)
device.set_current()
stream = device.create_stream()
buffer = device.allocate(H * W * C, stream=stream)

arch = "".join(str(part) for part in device.compute_capability)
kernel = Program(FILL, code_type="c++", options=ProgramOptions(arch=f"sm_{arch}")).compile(
    "cubin", name_expressions=("fill",)).get_kernel("fill")
launch(stream, LaunchConfig(grid=(H * W * C + 255) // 256, block=256), kernel, numpy.uint64(int(buffer.handle)),
       numpy.uint64(H * W * C))


class DeviceImage:
    """A raw device allocation described as an HWC image, with the stream its data is written on."""

    def __init__(self, pointer, stream_handle):
        self.__cuda_array_interface__ = {"version": 3, "shape": (H, W, C), "typestr": "|u1",
                                         "data": (pointer, False), "strides": None, "stream": stream_handle}


image = tensorbridge.as_tensor(DeviceImage(int(buffer.handle), int(stream.handle)), "HWC")
print("wrapped:", image, "same memory:", image.data_ptr == int(buffer.handle))
planar = tensorbridge.reformat(image, "CHW", stream=stream)  # a cuda.core stream, by __cuda_stream__
view = StridedMemoryView.from_dlpack(planar, stream_ptr=int(stream.handle))
print("cuda.core sees:", tuple(view.shape), numpy.dtype(view.dtype), "same memory:", view.ptr == planar.data_ptr)
stream.sync()

expected = (numpy.arange(H * W * C) % 251).astype(numpy.uint8).reshape(H, W, C).transpose(2, 0, 1)
assert numpy.array_equal(numpy.asarray(planar.cpu()), expected)
print("CHW result matches the host reference")
del image, planar, view
buffer.close(stream)
stream.sync()
