"""NumPy <-> tensorbridge on any machine (no GPU needed): zero-copy views and CPU layout conversion.

    python3 examples/python/numpy_interop.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))
import numpy  # noqa: E402

import tensorbridge  # noqa: E402

image = numpy.random.default_rng().integers(0, 256, (480, 640, 3), dtype=numpy.uint8)
t = tensorbridge.as_tensor(image, "HWC")
print("wrapped:", t, "same memory:", t.data_ptr == image.ctypes.data)

view = t.permute("CHW")  # zero-copy view: strides permuted
print("CHW view strides:", view.strides, "still shares memory:", numpy.asarray(view).base is not None)

planar = tensorbridge.reformat(t, "CHW")  # a packed copy in CHW order (on the CPU here)
assert numpy.array_equal(numpy.asarray(planar), image.transpose(2, 0, 1))
normalized = tensorbridge.convert(t, "CHW", "float32", scale=1 / 255.0)
print("normalized:", normalized, "max", float(numpy.asarray(normalized).max()))
print("DLPack:", numpy.from_dlpack(planar).ctypes.data == planar.data_ptr)
if tensorbridge.cuda_device_count():
    on_gpu = t.cuda()
    print("copied to the GPU:", on_gpu, "and back equal:", numpy.array_equal(numpy.asarray(on_gpu.cpu()), image))
