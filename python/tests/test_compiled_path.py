"""The compiled fast path (tensorbridge._native): in use exactly when asked for, and the Tensor
base type it provides behaves as the ctypes one does — the handle is released with the object
(also when a reference cycle through the producer is collected), weak references work, bad
values are refused, and operands it cannot take go to the ctypes path. The whole suite runs on
both paths (scripts/test.sh), so every other test covers both as well."""
import gc
import os
import weakref

import numpy
import pytest

import tensorbridge as tb
from tensorbridge import _compiled
from tensorbridge._lib import lib


def test_the_path_in_use_is_the_one_asked_for():
    if os.environ.get("TENSORBRIDGE_PURE_PYTHON") == "1":
        assert _compiled.native is None
    elif os.environ.get("TENSORBRIDGE_REQUIRE_NATIVE") == "1":
        assert _compiled.native is not None, "tensorbridge._native did not import (scripts/build-python-native.sh)"
        assert issubclass(tb.Tensor, _compiled.native.TensorBase)
    else:
        pytest.skip("not a GPU test: set TENSORBRIDGE_REQUIRE_NATIVE=1 or TENSORBRIDGE_PURE_PYTHON=1 to say "
                    "which path this run must use")


class _Holder:
    tensor = None


def test_a_cycle_through_the_owner_is_collected_and_its_handle_released():
    base = tb.live_tensor_count()
    array = numpy.arange(6, dtype=numpy.int32)
    source = tb.as_tensor(array)
    lib.tb_tensor_retain(source._handle)  # the reference the adopted tensor below takes over
    holder = _Holder()
    holder.tensor = type(source)._adopt(source._handle, holder)  # tensor -> holder -> tensor
    del holder, source
    gc.collect()
    assert tb.live_tensor_count() == base


def test_weak_references_see_the_tensor_go():
    tensor = tb.as_tensor(numpy.zeros(3))
    ref = weakref.ref(tensor)
    assert ref() is tensor
    del tensor
    assert ref() is None


@pytest.mark.skipif(_compiled.native is None,
                    reason="not a GPU test: the ctypes twin of _adopt (internal) does not check its argument")
def test_adopt_refuses_what_is_not_a_handle():
    with pytest.raises(TypeError):
        tb.Tensor._adopt("not a handle")


def test_direct_construction_is_refused():
    with pytest.raises(TypeError, match="as_tensor"):
        tb.Tensor()


def test_operands_the_fast_path_cannot_take_go_to_the_ctypes_path():
    src = numpy.arange(24, dtype=numpy.uint8).reshape(2, 3, 4)
    dst = numpy.zeros((4, 2, 3), numpy.uint8)
    tb.reformat_into(tb.as_tensor(dst, "CHW"), tb.as_tensor(src, "HWC"))
    numpy.testing.assert_array_equal(dst, src.transpose(2, 0, 1))
    out = numpy.zeros_like(src)
    tb.copy_into(out, src)  # NumPy arrays themselves: no exchange API, the ctypes path wraps them
    numpy.testing.assert_array_equal(out, src)
    planar = tb.reformat(tb.as_tensor(src, "HWC"), "CHW")
    numpy.testing.assert_array_equal(numpy.asarray(planar), src.transpose(2, 0, 1))


@pytest.mark.skipif(_compiled.native is None, reason="not a GPU test: the compiled reader is not in use on this run")
def test_the_compiled_interface_reader_agrees_with_the_python_one():
    from tensorbridge import _interface

    array = numpy.arange(24, dtype=numpy.float32).reshape(2, 3, 4)
    base = array.__array_interface__
    dicts = [
        base,
        {**base, "strides": (48, 16, 4)},
        {**base, "data": (base["data"][0], True), "version": 2},
        {**base, "shape": (0, 3), "data": (None, False), "strides": None},
        {**base, "shape": [2, 3, 4]},  # a list: the Python reader takes it
        {**base, "typestr": b"<f4"},   # bytes: the Python reader takes it
    ]
    for interface in dicts:
        made = _compiled.native.import_interface(False, interface, None, array)
        handle = _interface.import_interface(_interface.from_array_interface, interface,
                                             _interface.ARRAY_INTERFACE, None)
        reference = tb.Tensor._adopt(handle, array)
        if made is NotImplemented:
            assert not isinstance(interface["shape"], tuple) or not isinstance(interface["typestr"], str)
            continue
        for name in ("shape", "strides", "dtype", "layout", "readonly", "data_ptr", "device"):
            assert getattr(made, name) == getattr(reference, name), (name, interface)


@pytest.mark.skipif(_compiled.native is None, reason="not a GPU test: the compiled reader is not in use on this run")
def test_a_bad_interface_dict_gets_the_python_readers_message():
    class Producer:
        __array_interface__ = {"data": (0, False), "shape": (2, "x"), "typestr": "<f4", "version": 3}

    with pytest.raises((TypeError, ValueError), match="shape"):
        tb.as_tensor(Producer())


def test_dlpack_exports_of_an_owned_tensor_on_either_path():
    tensor = tb.empty((2, 3), "float32")
    numpy.asarray(tensor)[...] = numpy.arange(6).reshape(2, 3)
    assert tensor.__dlpack_device__() == (1, 0)
    for max_version in (None, (1, 0), (1, 3)):
        capsule = tensor.__dlpack__(max_version=max_version)
        again = tb.from_dlpack(capsule)
        assert again.data_ptr == tensor.data_ptr and again.shape == (2, 3)
        del capsule, again
    numpy.testing.assert_array_equal(numpy.from_dlpack(tensor), numpy.arange(6).reshape(2, 3))
    tensor.__dlpack__(stream=-1)  # unconsumed: its destructor runs the deleter (leak-checked)
    with pytest.raises(ValueError, match="host tensor"):
        tensor.__dlpack__(stream=5)
    with pytest.raises(TypeError):
        tensor.__dlpack__(unknown=1)
    with pytest.raises(TypeError):
        tensor.__dlpack__(1)  # keyword-only


def test_a_read_only_tensor_needs_a_versioned_capsule_on_either_path():
    array = numpy.arange(4.0)
    array.flags.writeable = False
    readonly = tb.as_tensor(array).clone().__dlpack__(max_version=(1, 0))  # an owned copy
    del readonly
    source = tb.as_tensor(array)
    with pytest.raises(BufferError, match="read-only"):
        source.__dlpack__()


def test_interface_dicts_equal_the_python_ones_and_host_tensors_have_no_cai():
    for tensor in (tb.empty((2, 3, 4), "float32", "HWC"), tb.empty((2, 3, 4), "uint8")[:, 1:]):
        assert tensor.__array_interface__ == tensor._array_interface()
        assert not hasattr(tensor, "__cuda_array_interface__")
        numpy.testing.assert_array_equal(numpy.asarray(tensor), numpy.zeros(tensor.shape, tensor.dtype))


def test_a_stale_compiled_module_is_ignored_with_a_warning(monkeypatch):
    """A module built from another _native.c (a build left in a checkout) must not be used: the
    package's Python side and the module would disagree about what is done in C."""
    import importlib
    import sys
    import types

    stale = types.ModuleType("tensorbridge._native")
    stale.API_VERSION = _compiled.API_VERSION - 1
    monkeypatch.setitem(sys.modules, "tensorbridge._native", stale)
    monkeypatch.setattr(tb, "_native", stale, raising=False)
    monkeypatch.delenv("TENSORBRIDGE_PURE_PYTHON", raising=False)
    spec = importlib.util.find_spec("tensorbridge._compiled")
    fresh = importlib.util.module_from_spec(spec)
    with pytest.warns(RuntimeWarning, match="another version of _native.c"):
        spec.loader.exec_module(fresh)
    assert fresh.native is None


def test_convert_with_per_channel_coefficients_of_mixed_types_matches_numpy():
    """The compiled route takes the coefficients as tuples of floats (ints and tuples given here);
    the ctypes route is checked by the same test in the TENSORBRIDGE_PURE_PYTHON=1 run."""
    image = numpy.arange(2 * 3 * 4 * 3, dtype=numpy.uint8).reshape(2, 3, 4, 3)
    converted = tb.convert(tb.as_tensor(image, "NHWC"), "NCHW", "float32", [0.5, 2, -1.0], (1.0, 0.0, 3))
    expected = image.transpose(0, 3, 1, 2).astype(numpy.float32) * numpy.float32([0.5, 2, -1])[:, None, None] \
        + numpy.float32([1, 0, 3])[:, None, None]
    numpy.testing.assert_array_equal(numpy.asarray(converted), expected)
    with pytest.raises(ValueError, match="2 scale values and 3 offset values"):
        tb.convert(tb.as_tensor(image, "NHWC"), "NCHW", "float32", [1.0, 2.0], [0.0, 0.0, 0.0])


class _Producer:
    """A host producer that can be weakly referenced (NumPy arrays cannot)."""

    def __init__(self, array):
        self.array = array
        self.__array_interface__ = array.__array_interface__


def test_a_dlpack_export_keeps_the_python_producer_until_the_consumer_lets_go():
    producer = _Producer(numpy.arange(6.0))
    alive = weakref.ref(producer)
    consumer = numpy.from_dlpack(tb.as_tensor(producer))  # the Tensor itself is gone at once
    del producer
    gc.collect()
    assert alive() is not None, "the producer went while NumPy still used its memory"
    numpy.testing.assert_array_equal(consumer, numpy.arange(6.0))
    del consumer
    gc.collect()
    assert alive() is None, "the producer outlived the last consumer"
