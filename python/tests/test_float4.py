"""float4 packed two to a byte, on the host: ``float4_e2m1fn_x2`` is DLPack (code 17, bits 4, lanes 2), the
form in which PyTorch exchanges ``torch.float4_e2m1fn_x2`` (one byte per pair, shapes counting pairs, no padded
flag). It crosses both DLPack forms zero-copy and takes views, copies and reformats as any one-byte type; DLPack's
default float4 (bits 4, lanes 1, packed) from another producer imports as pairs along the last dimension, or is
refused where a pair would straddle two bytes. The array interfaces and tb_convert refuse it with a reason.
test_gpu_float4.py round-trips PyTorch's CUDA tensors."""
import ctypes

import numpy
import pytest

import tensorbridge as tb
from tensorbridge import _dlpack, _dtypes
from tensorbridge._lib import (
    CLEANUP,
    DEVICE_CPU,
    DataType,
    Device,
    DLManagedTensorVersioned,
    DLPackVersion,
    DLTensor,
    lib,
)

PAIR = "float4_e2m1fn_x2"
SUBBYTE_PADDED = 1 << 2  # DLPACK_FLAG_BITMASK_IS_SUBBYTE_TYPE_PADDED


def wrap_pairs(buffer, shape, strides=None, dtype=(17, 4, 2)):
    """A host Tensor over a NumPy uint8 buffer, of ``dtype`` given as (code, bits, lanes); strides in bytes."""
    rank = len(shape)
    extents = (ctypes.c_int64 * max(rank, 1))(*shape)
    steps = None if strides is None else (ctypes.c_int64 * rank)(*strides)
    out = ctypes.c_void_p()
    lib.tb_tensor_wrap(buffer.ctypes.data, Device(DEVICE_CPU, 0), DataType(*dtype), rank, extents, steps, None,
                       False, CLEANUP(), None, ctypes.byref(out))
    return tb.Tensor._adopt(out.value, buffer)


class ForeignProducer:
    """A versioned DLPack capsule as another library would make it, over a NumPy buffer; counts deleter calls."""

    def __init__(self, buffer, dtype, shape, strides=None, flags=0):
        self.buffer, self.deletes = buffer, 0
        self.shape = (ctypes.c_int64 * max(len(shape), 1))(*shape)
        self.strides = None if strides is None else (ctypes.c_int64 * len(strides))(*strides)
        self.deleter = DLManagedTensorVersioned._fields_[2][1](self._delete)
        tensor = DLTensor(buffer.ctypes.data, Device(DEVICE_CPU, 0), len(shape), DataType(*dtype),
                          ctypes.cast(self.shape, ctypes.POINTER(ctypes.c_int64)),
                          None if strides is None else ctypes.cast(self.strides, ctypes.POINTER(ctypes.c_int64)), 0)
        self.managed = DLManagedTensorVersioned(DLPackVersion(1, 1), None, self.deleter, flags, tensor)

    def _delete(self, _managed):
        self.deletes += 1

    def capsule(self):
        return _dlpack._new(ctypes.addressof(self.managed), _dlpack.VERSIONED, None)


def test_the_pair_is_a_one_byte_dtype_of_the_librarys_table():
    entry = _dtypes._BY_NAME[PAIR]
    assert (entry.code, entry.bits, entry.lanes, entry.typestr) == (17, 4, 2, None)
    assert _dtypes._BY_NAME["float4_e2m1fn"].lanes == 1  # the padded one stays
    c_type = _dtypes.data_type(PAIR)
    assert (c_type.code, c_type.bits, c_type.lanes) == (17, 4, 2)
    t = tb.empty((4, 6), PAIR)
    assert str(t.dtype) == PAIR and t.shape == (4, 6) and t.strides == (6, 1) and t.nbytes == 24
    assert str(tb.empty((3,), entry.name, layout="W").dtype) == PAIR


@pytest.mark.parametrize("max_version", [None, (1, 0), (1, 1)])
def test_pairs_cross_dlpack_zero_copy_in_either_struct(max_version):
    buffer = numpy.arange(4 * 8, dtype=numpy.uint8)
    t = wrap_pairs(buffer, (4, 6), (8, 1))  # rows padded to 8 bytes
    again = tb.from_dlpack(t.__dlpack__(max_version=max_version))
    assert str(again.dtype) == PAIR and again.shape == (4, 6) and again.strides == (8, 1)
    assert again.data_ptr == buffer.ctypes.data


def test_views_copies_and_reformats_work_as_for_any_one_byte_type():
    buffer = numpy.arange(4 * 8, dtype=numpy.uint8)
    t = wrap_pairs(buffer, (4, 8)).with_layout("HW")
    view = t[1:3, 2:6].permute("WH")
    assert view.shape == (4, 2) and view.strides == (1, 8) and view.data_ptr == buffer.ctypes.data + 10
    exported = tb.from_dlpack(view.__dlpack__(max_version=(1, 1)))
    assert exported.data_ptr == view.data_ptr and exported.strides == (1, 8)
    target = numpy.zeros(8, numpy.uint8)
    tb.copy_into(wrap_pairs(target, (4, 2)).with_layout("WH"), view)
    numpy.testing.assert_array_equal(target, buffer.reshape(4, 8)[1:3, 2:6].T.reshape(-1))
    packed = tb.reformat(view, "HW")
    assert str(packed.dtype) == PAIR and packed.shape == (2, 4) and packed.is_contiguous
    copy = tb.from_dlpack(packed.clone().__dlpack__())
    landing = numpy.zeros(8, numpy.uint8)
    tb.copy_into(wrap_pairs(landing, (2, 4)), copy)
    numpy.testing.assert_array_equal(landing, buffer.reshape(4, 8)[1:3, 2:6].reshape(-1))


def test_the_array_interfaces_and_convert_refuse_pairs_with_a_reason():
    t = wrap_pairs(numpy.zeros(8, numpy.uint8), (8,))
    with pytest.raises(tb.NotSupportedError, match=f"{PAIR} has no NumPy typestr.*DLPack"):
        t.__array_interface__
    with pytest.raises(tb.NotSupportedError, match=f"not {PAIR}"):
        tb.convert(t, None, "float32")
    with pytest.raises(tb.NotSupportedError, match=f"not {PAIR}"):
        tb.convert(tb.as_tensor(numpy.zeros(8, numpy.float32)), None, PAIR)


def test_packed_float4_of_another_producer_imports_as_pairs_over_the_same_bytes():
    buffer = numpy.arange(4 * 8, dtype=numpy.uint8)
    producer = ForeignProducer(buffer, (17, 4, 1), (4, 12), (16, 1))  # 12 nibbles in rows of 16
    t = tb.from_dlpack(producer.capsule())
    assert str(t.dtype) == PAIR and t.shape == (4, 6) and t.strides == (8, 1)
    assert t.data_ptr == buffer.ctypes.data
    # Element [r, c] is nibble c % 2 (low first: DLPack's little bit-endian rule) of byte [r, c // 2].
    landing = numpy.zeros(24, numpy.uint8)
    tb.copy_into(wrap_pairs(landing, (4, 6)), t)
    numpy.testing.assert_array_equal(landing, buffer.reshape(4, 8)[:, :6].reshape(-1))
    del t
    assert producer.deletes == 1


@pytest.mark.parametrize("shape, strides, fragment", [
    ((3, 5), None, "shape\\[1\\] = 5 is odd"),
    ((4, 6), (1, 4), "strides\\[1\\] = 4 elements: the last dimension must be contiguous"),
    ((3, 4), (5, 1), "strides\\[0\\] = 5 elements is odd"),
    ((), None, "a scalar"),
])
def test_packed_float4_that_pairs_cannot_describe_is_refused_and_stays_the_producers(shape, strides, fragment):
    producer = ForeignProducer(numpy.zeros(64, numpy.uint8), (17, 4, 1), shape, strides)
    with pytest.raises(tb.NotSupportedError, match=fragment):
        tb.from_dlpack(producer.capsule())
    assert producer.deletes == 0


def test_the_padded_flag_keeps_one_float4_per_byte_and_is_refused_on_pairs():
    buffer = numpy.arange(16, dtype=numpy.uint8)
    padded = ForeignProducer(buffer, (17, 4, 1), (2, 8), flags=SUBBYTE_PADDED)
    t = tb.from_dlpack(padded.capsule())
    assert str(t.dtype) == "float4_e2m1fn" and t.shape == (2, 8)
    del t
    pairs = ForeignProducer(buffer, (17, 4, 2), (2, 8), flags=SUBBYTE_PADDED)
    with pytest.raises(tb.NotSupportedError, match="a pair of float4 fills its byte"):
        tb.from_dlpack(pairs.capsule())
    assert (padded.deletes, pairs.deletes) == (1, 0)
