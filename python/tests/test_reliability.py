"""Regression tests for the package's reliability defects, one test (or table) per defect:
re-entrant as_tensor, a DLPack capsule consumed from two threads, out-of-range integers, the
DLPack consumer protocol, hostile producers, and read-only tensors through legacy DLPack."""
import ctypes
import threading

import numpy as np
import pytest

import tensorbridge as tb
from tensorbridge import _dlpack, _interface, _lib


class ArrayInterfaceProducer:
    """Anything exposing a (possibly doctored) NumPy array interface over ``array``."""

    def __init__(self, array, **changes):
        self.array = array
        self.__array_interface__ = dict(array.__array_interface__, **changes)


class CudaArrayInterfaceProducer:
    def __init__(self, array, **changes):
        self.array = array
        self.__cuda_array_interface__ = dict(array.__array_interface__, version=3, **changes)


# ---- 1. as_tensor is re-entrant ---------------------------------------------------------------


class HostileStrides:
    """Strides whose len() and iteration import another array in the middle of the outer import."""

    def __init__(self, strides, other):
        self.strides, self.other, self.inner = strides, other, []

    def __len__(self):
        self.inner.append(tb.as_tensor(self.other))
        return len(self.strides)

    def __iter__(self):
        self.inner.append(tb.as_tensor(self.other))
        return iter(self.strides)


def test_as_tensor_is_reentrant_through_hostile_strides():
    outer = np.arange(24, dtype=np.float32).reshape(4, 6)
    other = np.full((9, 9, 9), 7, np.float64)
    strides = HostileStrides(outer.strides, other)
    t = tb.as_tensor(ArrayInterfaceProducer(outer, strides=strides))
    assert strides.inner, "the hostile strides ran during the import"
    assert all(inner.data_ptr == other.ctypes.data for inner in strides.inner)
    assert t.data_ptr == outer.ctypes.data and t.shape == (4, 6) and t.dtype == np.float32
    np.testing.assert_array_equal(np.asarray(t), outer)


def test_as_tensor_reentered_while_the_descriptor_is_busy_uses_a_fresh_one():
    a, b = np.zeros(3, np.uint8), np.ones(5, np.int16)
    tb.as_tensor(a)  # creates this thread's descriptor
    slot = _interface._scratch.slot
    before = bytes(slot[0])
    slot[4] = True  # as if an outer import were filling it
    try:
        t = tb.as_tensor(b)
    finally:
        slot[4] = False
    assert bytes(slot[0]) == before and t.data_ptr == b.ctypes.data and t.shape == (5,)


# ---- 2. one capsule, two consuming threads ----------------------------------------------------


def test_dlpack_capsule_consumed_from_two_threads_is_imported_once():
    for _ in range(200):
        array = np.arange(16.0)
        capsule = array.__dlpack__(max_version=(1, 0))
        barrier, results = threading.Barrier(2), []

        def consume():
            barrier.wait()
            try:
                results.append(tb.from_dlpack(capsule))
            except BufferError as error:
                results.append(error)

        threads = [threading.Thread(target=consume) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        tensors = [r for r in results if isinstance(r, tb.Tensor)]
        errors = [r for r in results if isinstance(r, BufferError)]
        assert len(tensors) == 1 and len(errors) == 1, results
        assert "unconsumed" in str(errors[0]) and tensors[0].data_ptr == array.ctypes.data


def test_failed_dlpack_import_leaves_the_capsule_unconsumed():
    array = np.zeros((2, 3), np.float32)
    capsule = array.__dlpack__(max_version=(1, 0))
    with pytest.raises(ValueError, match="labels"):
        tb.from_dlpack(capsule, "NHWC")
    assert _dlpack._is_valid(capsule, _dlpack.VERSIONED), "the capsule still owns the tensor"
    assert tb.from_dlpack(capsule, "HW").data_ptr == array.ctypes.data


# ---- 3. integers that do not fit their C field ------------------------------------------------

BIG = 2**64


@pytest.mark.parametrize("make,exception,fragment", [
    (lambda a: ArrayInterfaceProducer(a, shape=(BIG + 4,)), OverflowError, r"shape'\]\[0\] = .* int64"),
    (lambda a: ArrayInterfaceProducer(a, shape=(2**63,)), OverflowError, r"shape'\]\[0\]"),
    (lambda a: ArrayInterfaceProducer(a, shape=(-(2**63) - 1,)), OverflowError, r"shape'\]\[0\]"),
    (lambda a: ArrayInterfaceProducer(a, strides=(BIG + 1,)), OverflowError, r"strides'\]\[0\]"),
    (lambda a: ArrayInterfaceProducer(a, data=(BIG + 0x1000, False)), OverflowError, r"data'\]\[0\] = .* uint64"),
    (lambda a: ArrayInterfaceProducer(a, data=(-1, False)), OverflowError, r"data'\]\[0\]"),
    (lambda a: ArrayInterfaceProducer(a, version=2**40), OverflowError, r"version'\] = .* int32"),
    (lambda a: CudaArrayInterfaceProducer(a, stream=BIG), OverflowError, r"stream'\] = .* uint64"),
    (lambda a: ArrayInterfaceProducer(a, shape=(4.5,)), TypeError, r"shape'\]\[0\] must be an integer"),
    (lambda a: ArrayInterfaceProducer(a, version="3"), TypeError, r"version'\] must be an integer"),
    (lambda a: CudaArrayInterfaceProducer(a, stream=1.5), TypeError, r"stream'\] must be an integer"),
])
def test_out_of_range_integers_raise_instead_of_truncating(make, exception, fragment):
    with pytest.raises(exception, match=fragment):
        tb.as_tensor(make(np.zeros(4, np.uint8)))


def test_out_of_range_arguments_raise_instead_of_truncating():
    t = tb.as_tensor(np.arange(4, dtype=np.int32))
    with pytest.raises(OverflowError, match=r"shape\[0\]"):
        tb.empty((BIG + 2,), "uint8")
    with pytest.raises(OverflowError, match="index"):
        t[BIG]
    with pytest.raises(OverflowError, match="row_alignment"):
        tb.empty((2,), "uint8", row_alignment=BIG)
    assert t[-(BIG * 4): BIG * 4].shape == (4,), "slice bounds beyond int64 clamp, as in Python"


def test_shape_of_2_pow_63_never_comes_back_negative():
    with pytest.raises(OverflowError):
        tb.as_tensor(ArrayInterfaceProducer(np.zeros(1, np.uint8), shape=(2**63,)))


# ---- 4. the DLPack consumer protocol ----------------------------------------------------------


class RecordingProducer:
    """A DLPack producer that records how it is asked; ``legacy`` ones refuse max_version."""

    def __init__(self, capsule, device=(1, 0), legacy=False):
        self.capsule, self.device, self.legacy, self.calls = capsule, device, legacy, []

    def __dlpack_device__(self):
        self.calls.append("__dlpack_device__")
        return self.device

    def __dlpack__(self, **arguments):
        self.calls.append(arguments)
        if self.legacy and "max_version" in arguments:
            raise TypeError("__dlpack__() got an unexpected keyword argument 'max_version'")
        return self.capsule


def test_dlpack_consumer_asks_a_cpu_producer_for_no_stream():
    array = np.arange(5, dtype=np.int64)
    producer = RecordingProducer(array.__dlpack__(max_version=(1, 0)))
    assert tb.as_tensor(producer).data_ptr == array.ctypes.data
    assert producer.calls == ["__dlpack_device__", {"max_version": (1, 1)}]


def test_dlpack_consumer_falls_back_to_legacy_only_on_type_error():
    array = np.arange(5, dtype=np.int64)
    producer = RecordingProducer(array.__dlpack__(), legacy=True)
    assert tb.as_tensor(producer).data_ptr == array.ctypes.data
    assert producer.calls == ["__dlpack_device__", {"max_version": (1, 1)}, {}]


def _fake_cuda_capsule(array):
    """A versioned capsule claiming CUDA device 0 over host memory, with no deleter. Without a
    GPU nothing dereferences it: the library imports the description, and the first use fails."""
    shape = (ctypes.c_int64 * 1)(array.size)
    managed = _lib.DLManagedTensorVersioned()
    managed.version.major, managed.version.minor = 1, 1
    managed.dl_tensor.data = array.ctypes.data
    managed.dl_tensor.device = _lib.Device(_lib.DEVICE_CUDA, 0)
    managed.dl_tensor.ndim = 1
    managed.dl_tensor.dtype = _lib.DataType(2, 32, 1)
    managed.dl_tensor.shape = ctypes.cast(shape, ctypes.POINTER(ctypes.c_int64))
    capsule = _dlpack._new(ctypes.addressof(managed), _dlpack.VERSIONED, None)
    return capsule, (managed, shape)


@pytest.mark.parametrize("stream,expected", [(None, 1), (7, 7), (0, 1)])
def test_dlpack_consumer_passes_its_stream_to_a_cuda_producer(stream, expected):
    if tb.cuda_device_count() > 0:
        pytest.skip("a GPU is present: the fake CUDA capsule over host memory would be used")
    array = np.zeros(4, np.float32)
    capsule, keep = _fake_cuda_capsule(array)
    producer = RecordingProducer(capsule, device=(2, 0))
    t = tb.as_tensor(producer, stream=stream)
    assert producer.calls == ["__dlpack_device__", {"max_version": (1, 1), "stream": expected}]
    assert t.device == tb.Device("cuda", 0)
    with pytest.raises(tb.CudaUnavailableError, match="CUDA unavailable"):
        t.clone()
    del t, keep


# ---- 5. hostile producers ---------------------------------------------------------------------


class Raises:
    def __init__(self, attribute, error):
        self.attribute, self.error = attribute, error

    def __getattr__(self, name):
        if name == self.attribute:
            raise self.error
        raise AttributeError(name)


class Returns:
    """Exposes ``attribute`` as the given value (or, for methods, a function returning it)."""

    def __init__(self, **attributes):
        for name, value in attributes.items():
            object.__setattr__(self, name, value)


def _doctored(**changes):
    return dict(np.zeros((2, 3), np.float32).__array_interface__, **changes)


_ARRAY = np.zeros((2, 3), np.float32)
_USED = _ARRAY.__dlpack__()
tb.from_dlpack(_USED)  # now a used capsule
_WRONG_NAME = _dlpack._new(_ARRAY.ctypes.data, b"not_dltensor", None)


@pytest.mark.parametrize("producer,exception,fragment", [
    (Raises("__cuda_array_interface__", ValueError("producer broke")), ValueError, "producer broke"),
    (Raises("__array_interface__", RuntimeError("producer broke")), RuntimeError, "producer broke"),
    (Returns(__cuda_array_interface__=[1, 2]), TypeError, "must be a dict"),
    (Returns(__array_interface__="abc"), TypeError, "must be a dict"),
    (Returns(__array_interface__={"typestr": "<f4", "data": (0, False)}), ValueError, "no 'shape' entry"),
    (Returns(__array_interface__=_doctored(shape=5)), TypeError, "sequence of integers"),
    (Returns(__array_interface__=_doctored(shape=("2", 3))), TypeError, r"shape'\]\[0\] must be an integer"),
    (Returns(__array_interface__=_doctored(data="x")), TypeError, "pointer, read_only"),
    (Returns(__array_interface__=_doctored(data=("x", False))), TypeError, r"data'\]\[0\] must be an integer"),
    (Returns(__array_interface__=_doctored(typestr=4)), TypeError, "typestr'] must be a str"),
    (Returns(__array_interface__=_doctored(typestr="<f4" * 6)), ValueError, "too long"),
    (Returns(__array_interface__=_doctored(typestr="<f\x004")), ValueError, "NUL"),
    (Returns(__array_interface__=_doctored(typestr="<q9")), tb.TensorBridgeError, "typestr"),
    (Returns(__array_interface__=_doctored(strides=(4,))), ValueError, "1 strides for 2 dimensions"),
    (Returns(__array_interface__=_doctored(shape=(-2, 3))), tb.InvalidArgumentError, "negative"),
    (Returns(__array_interface__=_doctored(shape=(1,) * 16)), ValueError, "maximum rank"),
    (Returns(__array_interface__=_doctored(mask=object())), tb.TensorBridgeError, "mask"),
    (Returns(__dlpack__=lambda **kw: 42, __dlpack_device__=lambda: (1, 0)), BufferError, "not a DLPack capsule"),
    (Returns(__dlpack__=lambda **kw: _WRONG_NAME, __dlpack_device__=lambda: (1, 0)), BufferError, "unconsumed"),
    (Returns(__dlpack__=lambda **kw: _USED, __dlpack_device__=lambda: (1, 0)), BufferError, "unconsumed"),
    (Returns(__dlpack__=lambda **kw: 1 / 0, __dlpack_device__=lambda: (1, 0)), ZeroDivisionError, "division"),
    (Returns(__dlpack__=lambda **kw: None, __dlpack_device__=lambda: "cuda"), TypeError, "device_type, device_id"),
    (Returns(__dlpack__=lambda **kw: None, __dlpack_device__=lambda: ("cpu", 0)), TypeError, "must be an integer"),
])
def test_hostile_producers_get_clear_exceptions(producer, exception, fragment):
    with pytest.raises(exception, match=fragment):
        tb.as_tensor(producer)


# ---- 6. read-only tensors and legacy DLPack ---------------------------------------------------


def test_read_only_tensor_refuses_legacy_dlpack_and_marks_versioned():
    array = np.arange(6, dtype=np.int32)
    array.flags.writeable = False
    t = tb.as_tensor(array)
    for legacy in ({}, {"max_version": None}, {"max_version": (0, 8)}):
        with pytest.raises(BufferError, match="read-only .* legacy DLPack cannot mark read-only"):
            t.__dlpack__(**legacy)
    back = np.from_dlpack(t)
    assert back.ctypes.data == array.ctypes.data and not back.flags.writeable
    assert tb.from_dlpack(t.__dlpack__(max_version=(1, 0))).readonly
