"""Installed allocators from Python, on the host (no GPU needed): Python callables receive every
allocation and free of their device kind exactly once, a failing allocator's exception comes back
as the library's error with its message, and set_allocator(None) restores the built-in one."""
import ctypes

import numpy as np
import pytest

import tensorbridge as tb


class Recorder:
    def __init__(self, fail=None):
        self.fail = fail
        self.allocations, self.frees, self.blocks = [], [], {}

    def allocate(self, nbytes, alignment, device, stream):
        if self.fail is not None:
            raise self.fail
        block = ctypes.create_string_buffer(nbytes + alignment)
        address = (ctypes.addressof(block) + alignment - 1) // alignment * alignment
        self.blocks[address] = block
        self.allocations.append((nbytes, alignment, device, stream))
        return address

    def free(self, address, nbytes, device, stream):
        self.frees.append((address, nbytes, device, stream))
        del self.blocks[address]


@pytest.fixture
def recorder():
    recorder = Recorder()
    tb.set_allocator(recorder, device="cpu")
    yield recorder
    tb.set_allocator(None, device="cpu")


def test_python_allocator_gets_each_host_allocation_and_free_once(recorder):
    assert tb.allocator_installed("cpu")
    image = tb.empty((4, 6, 3), "float32", "HWC")
    assert recorder.allocations == [(4 * 6 * 3 * 4, 64, tb.Device("cpu", 0), None)]
    assert image.data_ptr in recorder.blocks
    planar = tb.reformat(image, "CHW")
    assert len(recorder.allocations) == 2
    np.asarray(image)[...] = np.arange(72, dtype=np.float32).reshape(4, 6, 3)
    tb.reformat_into(planar, image)
    assert np.array_equal(np.asarray(planar), np.arange(72, dtype=np.float32).reshape(4, 6, 3).transpose(2, 0, 1))
    image_address = image.data_ptr
    del image
    assert [address for address, *_ in recorder.frees] == [image_address]
    del planar
    assert len(recorder.frees) == 2
    assert recorder.blocks == {}
    assert all(stream is None for *_, stream in recorder.frees)


def test_a_failing_python_allocator_raises_the_library_error_with_its_message():
    tb.set_allocator(Recorder(fail=MemoryError("budget of 1 KiB spent")), device="cpu")
    try:
        before = tb.live_tensor_count()
        with pytest.raises(tb.OutOfMemoryError, match="budget of 1 KiB spent") as caught:
            tb.empty((1024,), "uint8")
        assert "1024 bytes on cpu:0" in str(caught.value)
        assert tb.live_tensor_count() == before
    finally:
        tb.set_allocator(None, device="cpu")
    assert not tb.allocator_installed("cpu")
    assert tb.empty((4,), "uint8").nbytes == 4


def test_an_allocator_returning_garbage_is_refused_and_given_back():
    recorder = Recorder()
    freed = []
    tb.set_allocator(lambda n, a, d, s: recorder.allocate(n, a, d, s) + 1,
                     lambda address, n, d, s: freed.append(address), device="cpu")
    try:
        with pytest.raises(tb.InternalError, match="not a multiple of the alignment 64"):
            tb.empty((16,), "uint8")
        assert len(freed) == 1
    finally:
        tb.set_allocator(None, device="cpu")


def test_set_allocator_rejects_an_unknown_device():
    with pytest.raises(ValueError, match="unknown device"):
        tb.set_allocator(Recorder(), device="tpu")
