"""PyCUDA -> tensorbridge -> PyCUDA, the flow of CV-CUDA's PyCUDA interoperability sample with
tensorbridge in CV-CUDA's place: a GPUArray image (HWC uint8) is wrapped without copying through
the CUDA Array Interface, converted to normalised float32 CHW in one pass on a PyCUDA stream, and
the result is handed back to PyCUDA as a GPUArray over tensorbridge's memory (and to a PyCUDA
kernel), all in the device's primary context — the one PyTorch and tensorbridge use.

    python3 examples/python/frameworks/pycuda_interop.py   # needs PyCUDA (scripts/framework-wheels.sh)
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "python"))
import numpy  # noqa: E402
import pycuda.autoprimaryctx  # noqa: E402,F401  (the primary context, current on this thread)
import pycuda.driver as cuda  # noqa: E402
import pycuda.gpuarray as gpuarray  # noqa: E402
from pycuda.elementwise import ElementwiseKernel  # noqa: E402

import tensorbridge as tb  # noqa: E402

H, W = 240, 320
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
y, x = numpy.mgrid[0:H, 0:W]
host = numpy.stack([x % 256, y % 256, (x + y) % 256], -1).astype(numpy.uint8)

image = gpuarray.to_gpu(host)                        # PyCUDA owns this memory
stream = cuda.Stream()
wrapped = tb.as_tensor(image, "HWC")                 # zero-copy: the GPUArray's CUDA Array Interface
assert wrapped.data_ptr == int(image.gpudata)
planar = tb.convert(wrapped, "CHW", "float32", [1 / (255 * s) for s in STD], [-m / s for m, s in zip(MEAN, STD)],
                    stream=stream)                   # one kernel, on PyCUDA's stream

# Back to PyCUDA without a copy: a GPUArray over tensorbridge's memory (keep `planar` alive).
result = gpuarray.GPUArray(planar.shape, numpy.float32, gpudata=planar.data_ptr)
clip = ElementwiseKernel("float *v", "v[i] = fminf(fmaxf(v[i], -2.0f), 2.0f)", "clip")
clip(result, stream=stream)                          # a PyCUDA kernel writes tensorbridge's tensor
stream.synchronize()

expected = numpy.clip(((host / 255.0 - MEAN) / STD).transpose(2, 0, 1), -2, 2)
error = numpy.abs(result.get() - expected).max()
seen = numpy.asarray(planar.cpu())                   # tensorbridge sees PyCUDA's write: same memory
print(f"GPUArray {host.shape} uint8 -> tensorbridge CHW float32 {planar.shape} -> GPUArray; max error "
      f"{error:.2e}; shared memory: {numpy.array_equal(seen, result.get())}")
assert error < 1e-5 and numpy.array_equal(seen, result.get())
