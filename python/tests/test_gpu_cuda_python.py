"""CUDA Python (cuda.core, cuda.bindings) with tensorbridge on the GPU: cuda.core's
StridedMemoryView of tensorbridge tensors and their views (no deprecation warning), cuda.core
Buffers wrapped as tensors, cuda.core streams accepted wherever a stream is, a kernel compiled and
launched with cuda.core on a tensorbridge tensor, and raw cuda.bindings allocations wrapped through
the C ABI with the cleanup run once. Skipped, with the reason, without a GPU or cuda.core."""
import ctypes
import time
import warnings

import numpy
import pytest

import tensorbridge as tb
from gpu_required import skip_module_unless_gpu

skip_module_unless_gpu()
pytest.importorskip("cuda.core", reason="cuda.core is not installed (pip install cuda-core)")
from cuda.core import Device, LaunchConfig, Program, ProgramOptions, launch  # noqa: E402
from cuda.core.utils import StridedMemoryView  # noqa: E402

PATTERN = numpy.arange(4 * 6 * 3, dtype=numpy.uint8).reshape(4, 6, 3) * 7


@pytest.fixture(scope="module")
def device():
    found = Device(0)
    found.set_current()
    return found


@pytest.fixture
def stream(device):
    created = device.create_stream()
    yield created
    created.sync()
    created.close()


def on_gpu(array, layout):
    """A tensorbridge tensor in device memory holding ``array``."""
    return tb.as_tensor(array, layout).cuda()


def host(tensor):
    return numpy.asarray(tensor.cpu())


def test_strided_memory_views_of_tensors_and_their_views(stream):
    t = on_gpu(PATTERN, "HWC")
    views = {"tensor": t, "permuted": t.permute("CHW"), "sliced": t[1:3, ::2]}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a deprecated way of making the view fails the test
        for name, view in views.items():
            for make in (StridedMemoryView.from_dlpack, StridedMemoryView.from_cuda_array_interface,
                         StridedMemoryView.from_any_interface):
                seen = make(view, stream_ptr=int(stream.handle))
                assert seen.ptr == view.data_ptr, name
                assert tuple(seen.shape) == view.shape, name
                element_strides = tuple(s // view.dtype.itemsize for s in view.strides)
                assert seen.strides in (None, element_strides), (name, seen.strides)
                assert numpy.dtype(seen.dtype) == numpy.uint8, name
                assert seen.is_device_accessible and seen.device_id == 0, name
    stream.sync()


def test_a_cuda_core_buffer_wraps_as_a_tensor_without_copying(device, stream):
    buffer = device.allocate(PATTERN.nbytes, stream=stream)
    stream.sync()
    t = tb.as_tensor(buffer)
    assert t.data_ptr == int(buffer.handle) and t.is_cuda and t.nbytes == PATTERN.nbytes
    tb.copy_into(t, tb.as_tensor(PATTERN.reshape(-1).view(t.dtype)))
    numpy.testing.assert_array_equal(host(t).view(numpy.uint8), PATTERN.reshape(-1))
    del t
    buffer.close(stream)


def test_cuda_core_streams_are_accepted_where_a_stream_is(stream):
    t = on_gpu(PATTERN, "HWC")
    planar = tb.reformat(t, "CHW", stream=stream)
    out = tb.empty((3, 4, 6), "uint8", "CHW", device="cuda", stream=stream)
    tb.reformat_into(out, t, stream=stream)
    stream.sync()
    numpy.testing.assert_array_equal(host(planar), PATTERN.transpose(2, 0, 1))
    numpy.testing.assert_array_equal(host(out), PATTERN.transpose(2, 0, 1))


ADD_ONE = r"""
extern "C" __global__ void add_one(unsigned char* data, unsigned long long count) {
  unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x;
  if (i < count) data[i] += 1;
}
"""


def test_a_kernel_compiled_and_launched_with_cuda_core_works_on_a_tensor(device, stream):
    t = tb.reformat(on_gpu(PATTERN, "HWC"), "CHW", stream=stream)
    arch = "".join(str(part) for part in device.compute_capability)
    program = Program(ADD_ONE, code_type="c++", options=ProgramOptions(arch=f"sm_{arch}"))
    kernel = program.compile("cubin", name_expressions=("add_one",)).get_kernel("add_one")
    count = t.nbytes
    launch(stream, LaunchConfig(grid=(count + 255) // 256, block=256), kernel, numpy.uint64(t.data_ptr),
           numpy.uint64(count))
    stream.sync()
    numpy.testing.assert_array_equal(host(t), PATTERN.transpose(2, 0, 1) + 1)


def test_a_raw_cuda_bindings_allocation_wraps_through_the_c_abi_and_is_freed_once(device):
    from cuda.bindings import driver

    from tensorbridge._lib import CLEANUP, DataType, Device as CDevice, lib

    status, pointer = driver.cuMemAlloc(PATTERN.nbytes)
    assert status == driver.CUresult.CUDA_SUCCESS
    status, = driver.cuMemcpyHtoD(pointer, PATTERN.ctypes.data, PATTERN.nbytes)
    assert status == driver.CUresult.CUDA_SUCCESS
    freed = []

    @CLEANUP
    def free(_context, data):
        freed.append(driver.cuMemFree(data)[0])

    shape = (ctypes.c_int64 * 3)(*PATTERN.shape)
    handle = ctypes.c_void_p()
    lib.tb_tensor_wrap(int(pointer), CDevice(2, 0), DataType(1, 8, 1), 3, shape, None, b"HWC", False,
                       free, None, ctypes.byref(handle))  # raises on a failed status
    wrapped = tb.Tensor._adopt(handle.value)
    planar = tb.reformat(wrapped, "CHW")
    numpy.testing.assert_array_equal(host(planar), PATTERN.transpose(2, 0, 1))
    assert freed == []
    del wrapped
    deadline = time.monotonic() + 5  # a release may wait for the work queued on the memory
    while not freed and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(0.05)
    assert freed == [driver.CUresult.CUDA_SUCCESS]  # the cleanup ran, once
