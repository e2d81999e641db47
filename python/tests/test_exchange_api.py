"""DLPack's C exchange API, consumed: a fake producer type built here from ctypes function
pointers (over NumPy arrays, so no GPU is needed) carries ``__dlpack_c_exchange_api__`` like
torch.Tensor does. tensorbridge must take its tensors in C (owning and borrowed), run the
producer's deleter exactly once, pass the producer's Python exceptions through, and refuse a
table of another major version — leaking nothing."""
import ctypes

import numpy as np
import pytest

import tensorbridge as tb
from tensorbridge import _exchange
from tensorbridge._lib import DLManagedTensorVersioned, DLPackVersion, DLTensor, Device, DataType

SET_ERROR = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p)
ALLOCATOR = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(DLTensor),
                             ctypes.POINTER(ctypes.POINTER(DLManagedTensorVersioned)), ctypes.c_void_p,
                             SET_ERROR)
FROM_PY = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p,
                           ctypes.POINTER(ctypes.POINTER(DLManagedTensorVersioned)))
TO_PY = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(DLManagedTensorVersioned), ctypes.POINTER(ctypes.c_void_p))
DLTENSOR_FROM_PY = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(DLTensor))
CURRENT_STREAM = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int32, ctypes.c_int32, ctypes.POINTER(ctypes.c_void_p))


class Header(ctypes.Structure):
    pass


Header._fields_ = [("version", DLPackVersion), ("prev_api", ctypes.POINTER(Header))]


class ExchangeAPI(ctypes.Structure):
    _fields_ = [("header", Header), ("managed_tensor_allocator", ALLOCATOR),
                ("managed_tensor_from_py_object_no_sync", FROM_PY),
                ("managed_tensor_to_py_object_no_sync", TO_PY),
                ("dltensor_from_py_object_no_sync", DLTENSOR_FROM_PY),
                ("current_work_stream", CURRENT_STREAM)]


_capsule_new = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p)(
    ("PyCapsule_New", ctypes.pythonapi))


def _dl_tensor(array):
    """A DLTensor over a NumPy array, with shape/strides arrays kept alive by the returned tuple."""
    shape = (ctypes.c_int64 * array.ndim)(*array.shape)
    strides = (ctypes.c_int64 * array.ndim)(*(s // array.itemsize for s in array.strides))
    code = {"u": 1, "i": 0, "f": 2}[array.dtype.kind]
    tensor = DLTensor(array.ctypes.data, Device(1, 0), array.ndim, DataType(code, array.itemsize * 8, 1),
                      shape, strides, 0)
    return tensor, (shape, strides)


class FakeProducer:
    """Builds a producer type whose instances wrap NumPy arrays, with counters."""

    def __init__(self, major=1, fail=False):
        self.deleted, self.calls, self.live = 0, {"owned": 0, "borrowed": 0, "stream": 0}, {}
        self.fail = fail

        @DELETER
        def deleter(managed):
            self.deleted += 1
            self.live.pop(ctypes.addressof(managed.contents), None)

        self._deleter = deleter

        def from_py(address, out):
            self.calls["owned"] += 1
            if self.fail:
                return -1
            array = self.objects[address].array
            tensor, keep = _dl_tensor(array)
            managed = DLManagedTensorVersioned(DLPackVersion(1, 1), None, self._deleter, 0, tensor)
            self.live[ctypes.addressof(managed)] = (managed, keep, array)
            out[0] = ctypes.pointer(managed)
            return 0

        def dltensor_from_py(address, out):
            self.calls["borrowed"] += 1
            if self.fail:
                return -1
            array = self.objects[address].array
            tensor, keep = _dl_tensor(array)
            self.borrowed_keep.append(keep)
            out[0] = tensor
            return 0

        def current_stream(device_type, device_id, out):
            self.calls["stream"] += 1
            out[0] = None
            return 0

        self.objects, self.borrowed_keep = {}, []
        self._functions = (FROM_PY(from_py), DLTENSOR_FROM_PY(dltensor_from_py), CURRENT_STREAM(current_stream))
        self.api = ExchangeAPI(Header(DLPackVersion(major, 3), None), ALLOCATOR(), self._functions[0], TO_PY(),
                               self._functions[1], self._functions[2])
        capsule = _capsule_new(ctypes.addressof(self.api), b"dlpack_exchange_api", None)
        producer = self

        class FakeTensor:
            __dlpack_c_exchange_api__ = capsule

            def __init__(self, array):
                self.array = array
                producer.objects[id(self)] = self

        self.Tensor = FakeTensor


DELETER = ctypes.CFUNCTYPE(None, ctypes.POINTER(DLManagedTensorVersioned))


def test_as_tensor_takes_an_exchange_api_producer_in_c_and_runs_its_deleter_once():
    producer = FakeProducer()
    array = np.arange(24, dtype=np.float32).reshape(2, 4, 3)
    fake = producer.Tensor(array)
    live = tb.live_tensor_count()
    t = tb.as_tensor(fake, "HWC")
    assert producer.calls["owned"] == 1
    assert t.data_ptr == array.ctypes.data and t.shape == (2, 4, 3) and t.layout == "HWC"
    assert np.array_equal(np.asarray(t), array)
    del fake
    assert producer.deleted == 0, "the tensor owns the managed tensor"
    del t
    assert producer.deleted == 1
    assert tb.live_tensor_count() == live and producer.live == {}


def test_operations_borrow_exchange_api_operands_for_the_call_only():
    producer = FakeProducer()
    src = producer.Tensor(np.random.default_rng(1).integers(0, 255, (4, 5, 3), dtype=np.uint8))
    dst = producer.Tensor(np.zeros((3, 4, 5), np.uint8))
    live = tb.live_tensor_count()
    planar = tb.as_tensor(dst.array, "CHW")
    tb.reformat_into(planar, tb.as_tensor(src.array, "HWC"))
    assert np.array_equal(dst.array, src.array.transpose(2, 0, 1))
    dst.array[...] = 0
    del planar
    # Without layouts the operands must agree as they are: copy_into through the borrowed path.
    copy_target = producer.Tensor(np.zeros_like(src.array))
    tb.copy_into(copy_target, src)
    assert np.array_equal(copy_target.array, src.array)
    assert producer.calls["borrowed"] == 2 and producer.calls["owned"] == 0
    assert tb.live_tensor_count() == live
    normalized = tb.convert(src, dtype="float32", scale=0.5)
    assert np.allclose(np.asarray(normalized), src.array.astype(np.float32) * 0.5)
    del normalized
    assert tb.live_tensor_count() == live


def test_a_failing_producer_is_a_clear_error_and_leaks_nothing():
    # A C producer sets a Python exception, which then propagates as itself (the GPU tests see
    # PyTorch's); a ctypes callback cannot leave one set, so this producer only fails.
    producer = FakeProducer(fail=True)
    fake = producer.Tensor(np.zeros((2, 2), np.float32))
    live = tb.live_tensor_count()
    with pytest.raises(tb.InvalidArgumentError, match="managed_tensor_from_py_object_no_sync failed"):
        tb.as_tensor(fake)
    with pytest.raises(tb.InvalidArgumentError, match="dltensor_from_py_object_no_sync failed"):
        tb.copy_into(fake, np.zeros((2, 2), np.float32))
    assert producer.deleted == 0 and tb.live_tensor_count() == live


def test_a_table_of_another_major_version_is_refused_with_a_message():
    producer = FakeProducer(major=2)
    fake = producer.Tensor(np.zeros((2, 2), np.float32))
    with pytest.raises(tb.NotSupportedError, match=r"offers version\(s\) 2\.3, none with major version 1"):
        tb.as_tensor(fake)
    assert producer.calls["owned"] == 0


def test_an_older_major_1_table_down_the_chain_is_used():
    producer = FakeProducer()
    producer.older = ExchangeAPI.from_buffer_copy(producer.api)
    # The head claims major 2 and has no functions: only the older table can serve the import.
    producer.api.header = Header(DLPackVersion(2, 0), ctypes.cast(ctypes.pointer(producer.older), ctypes.POINTER(Header)))
    producer.api.managed_tensor_from_py_object_no_sync = FROM_PY()
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = tb.as_tensor(producer.Tensor(array))
    assert producer.calls["owned"] == 1 and np.array_equal(np.asarray(t), array)
    del t
    assert producer.deleted == 1


def test_a_cyclic_chain_is_walked_at_most_eight_tables_deep():
    producer = FakeProducer(major=2)
    producer.api.header.prev_api = ctypes.cast(ctypes.pointer(producer.api), ctypes.POINTER(Header))
    with pytest.raises(tb.NotSupportedError, match=r"offers version\(s\) (2\.3, ){7}2\.3, none with major"):
        tb.as_tensor(producer.Tensor(np.zeros((2, 2), np.float32)))
    assert producer.calls["owned"] == 0


def test_an_import_refused_after_the_hand_over_gives_the_managed_tensor_back_once():
    producer = FakeProducer()
    fake = producer.Tensor(np.zeros((2, 3), np.float32))
    with pytest.raises(tb.InvalidArgumentError, match="layout"):
        tb.as_tensor(fake, "NHWC")  # rank 2 against four labels: refused after the producer gave it
    assert producer.calls["owned"] == 1 and producer.deleted == 1


def test_the_table_is_looked_up_once_per_type():
    producer = FakeProducer()
    first, second = producer.Tensor(np.zeros(3, np.uint8)), producer.Tensor(np.ones(3, np.uint8))
    assert _exchange.exchange_api(first) == _exchange.exchange_api(second) == ctypes.addressof(producer.api)
    assert _exchange.exchange_api(np.zeros(3)) == 0


# ---- the table tensorbridge offers ------------------------------------------------------------

def _offered():
    capsule = tb.Tensor.__dlpack_c_exchange_api__
    assert _exchange._capsule_valid(capsule, b"dlpack_exchange_api")
    return ExchangeAPI.from_address(_exchange._capsule_pointer(capsule, b"dlpack_exchange_api"))


def _with_gil(prototype, function):
    """A consumer calling one of the table's functions with the GIL held, as the API requires."""
    return ctypes.PYFUNCTYPE(prototype._restype_, *prototype._argtypes_)(ctypes.cast(function, ctypes.c_void_p).value)


def test_tensorbridge_offers_its_own_exchange_api_table():
    api = _offered()
    assert (api.header.version.major, api.header.version.minor) == (1, 3)
    array = np.arange(12, dtype=np.int16).reshape(3, 4)
    t = tb.as_tensor(array, "HW").permute("WH")
    live = tb.live_tensor_count()

    managed = ctypes.POINTER(DLManagedTensorVersioned)()
    assert _with_gil(FROM_PY, api.managed_tensor_from_py_object_no_sync)(id(t), ctypes.byref(managed)) == 0
    dl = managed.contents.dl_tensor
    assert dl.data == t.data_ptr and dl.ndim == 2 and list(dl.shape[:2]) == [4, 3]
    assert list(dl.strides[:2]) == [1, 4], "strides in elements"
    managed.contents.deleter(managed)

    borrowed = DLTensor()
    assert _with_gil(DLTENSOR_FROM_PY, api.dltensor_from_py_object_no_sync)(id(t), ctypes.byref(borrowed)) == 0
    assert borrowed.data == t.data_ptr and list(borrowed.shape[:2]) == [4, 3] and list(borrowed.strides[:2]) == [1, 4]
    assert tb.live_tensor_count() == live

    stream = ctypes.c_void_p(7)
    assert _with_gil(CURRENT_STREAM, api.current_work_stream)(2, 0, ctypes.byref(stream)) == 0
    assert stream.value is None, "tensorbridge's default stream is the legacy default stream"


def test_the_offered_table_makes_tensors_from_managed_tensors_and_allocates():
    api = _offered()
    producer = FakeProducer()
    fake = producer.Tensor(np.arange(6, dtype=np.uint8).reshape(2, 3))
    managed = ctypes.POINTER(DLManagedTensorVersioned)()
    assert producer.api.managed_tensor_from_py_object_no_sync(id(fake), ctypes.byref(managed)) == 0
    out = ctypes.c_void_p()
    assert _with_gil(TO_PY, api.managed_tensor_to_py_object_no_sync)(managed, ctypes.byref(out)) == 0
    made = ctypes.cast(out, ctypes.py_object).value
    ctypes.pythonapi.Py_DecRef(ctypes.py_object(made))  # the function returned a new reference
    assert isinstance(made, tb.Tensor) and made.data_ptr == fake.array.ctypes.data
    assert producer.deleted == 0
    del made
    assert producer.deleted == 1

    shape = (ctypes.c_int64 * 2)(5, 7)
    prototype = DLTensor(None, Device(1, 0), 2, DataType(2, 32, 1), shape, None, 0)
    allocated = ctypes.POINTER(DLManagedTensorVersioned)()
    assert api.managed_tensor_allocator(ctypes.byref(prototype), ctypes.byref(allocated), None, SET_ERROR()) == 0
    assert list(allocated.contents.dl_tensor.shape[:2]) == [5, 7] and allocated.contents.dl_tensor.data
    allocated.contents.deleter(allocated)


def test_the_offered_table_refuses_foreign_objects_with_a_buffer_error():
    api = _offered()
    managed = ctypes.POINTER(DLManagedTensorVersioned)()
    foreign = np.zeros(3)  # alive during the call: the table receives a borrowed PyObject*
    with pytest.raises(BufferError, match="not a live tensorbridge.Tensor"):
        _with_gil(FROM_PY, api.managed_tensor_from_py_object_no_sync)(id(foreign), ctypes.byref(managed))
