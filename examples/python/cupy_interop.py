"""CuPy <-> tensorbridge, zero-copy through the CUDA Array Interface and DLPack, with a CuPy stream.

    python3 examples/python/cupy_interop.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))
import cupy  # noqa: E402

import tensorbridge  # noqa: E402

batch = cupy.random.randint(0, 256, (8, 224, 224, 3), dtype=cupy.uint8)
t = tensorbridge.as_tensor(batch, "NHWC")
print("wrapped:", t, "same memory:", t.data_ptr == batch.data.ptr)

stream = cupy.cuda.Stream(non_blocking=True)
nchw = tensorbridge.reformat(t, "NCHW", stream=stream)  # enqueued on CuPy's stream
stream.synchronize()
as_cupy = cupy.asarray(nchw)  # zero-copy (CUDA Array Interface)
assert cupy.array_equal(as_cupy, batch.transpose(0, 3, 1, 2))
print("reformatted:", as_cupy.shape, "shares memory:", as_cupy.data.ptr == nchw.data_ptr)
print("DLPack:", cupy.from_dlpack(nchw).data.ptr == nchw.data_ptr)
