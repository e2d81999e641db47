"""PyCUDA with tensorbridge on the GPU: GPUArray -> tensorbridge through the CUDA Array Interface
(zero-copy), converted on a PyCUDA stream, and the result read back by PyCUDA as a GPUArray over
the same memory, all in the device's primary context (pycuda.autoprimaryctx), the one torch and
tensorbridge use. PyCUDA has no wheel: scripts/framework-wheels.sh builds it from its sdist on the
GPU machine. Skipped, with the reason, without a GPU or PyCUDA."""
import numpy
import pytest

import tensorbridge as tb
from gpu_required import skip_module_unless_gpu

skip_module_unless_gpu()
pytest.importorskip("pycuda", reason="optional framework not installed: PyCUDA "
                    "(built from its sdist by scripts/framework-wheels.sh test)")
import pycuda.autoprimaryctx  # noqa: E402,F401  (the primary context, current on this thread)
import pycuda.driver as cuda  # noqa: E402
import pycuda.gpuarray as gpuarray  # noqa: E402

IMAGE = (numpy.arange(4 * 6 * 3) * 7 % 256).astype(numpy.uint8).reshape(4, 6, 3)


def test_a_gpuarray_wraps_without_copying_and_converts_on_a_pycuda_stream():
    image = gpuarray.to_gpu(IMAGE)
    t = tb.as_tensor(image, "HWC")
    assert t.data_ptr == int(image.gpudata) and t.is_cuda and t.shape == IMAGE.shape
    stream = cuda.Stream()
    planar = tb.reformat(t, "CHW", stream=stream)  # PyCUDA's Stream by its .handle
    stream.synchronize()
    back = gpuarray.GPUArray(planar.shape, numpy.uint8, gpudata=planar.data_ptr)  # over our memory
    numpy.testing.assert_array_equal(back.get(), IMAGE.transpose(2, 0, 1))
    del back
    assert planar.data_ptr  # the tensor owned the memory PyCUDA read


def test_a_tensorbridge_tensor_is_read_by_pycuda_through_the_cuda_array_interface():
    t = tb.as_tensor(IMAGE, "HWC").cuda()
    interface = t.__cuda_array_interface__
    view = gpuarray.GPUArray(interface["shape"], numpy.dtype(interface["typestr"]), gpudata=interface["data"][0])
    numpy.testing.assert_array_equal(view.get(), IMAGE)
    view.fill(3)  # a write through PyCUDA is seen by tensorbridge: same memory
    cuda.Context.synchronize()
    numpy.testing.assert_array_equal(numpy.asarray(t.cpu()), numpy.full_like(IMAGE, 3))
