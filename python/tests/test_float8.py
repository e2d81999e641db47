"""float8 (DLPack 1.1 codes 7-14): the library's dtype table names them; host conversions
float32/float16/bfloat16/uint8 -> float8_e4m3fn / float8_e5m2 and back are bit-identical to
ml_dtypes' (the conversions PyTorch's .to(torch.float8_*) makes: nearest, ties to even; e4m3fn
overflow -> NaN, e5m2 overflow -> inf) over every float16 value, edge values and a million random
float32 bit patterns (-0.0 excepted: the affine makes it +0.0); the array interfaces refuse float8 with a message that names DLPack, and
DLPack carries it. The GPU kernels (test_gpu_float8.py) give the same bytes."""
import ctypes

import numpy
import pytest

import tensorbridge as tb
from tensorbridge import _dtypes
from tensorbridge._lib import CLEANUP, DEVICE_CPU, DataType, Device, lib

ml_dtypes = pytest.importorskip("ml_dtypes", reason="not a GPU test: ml_dtypes is not installed (pip install ml_dtypes)")

FORMATS = {"float8_e4m3fn": ml_dtypes.float8_e4m3fn, "float8_e5m2": ml_dtypes.float8_e5m2}


def wrap_bytes(buffer, dtype_name):
    """A host Tensor of ``dtype_name`` over a NumPy uint8 buffer (the C ABI's tb_tensor_wrap: NumPy
    has no typestr for float8, so the array interface cannot say which format the bytes are)."""
    entry = _dtypes._BY_NAME[dtype_name]
    shape = (ctypes.c_int64 * 1)(buffer.size)
    out = ctypes.c_void_p()
    lib.tb_tensor_wrap(buffer.ctypes.data, Device(DEVICE_CPU, 0), DataType(entry.code, entry.bits, 1), 1, shape,
                       None, None, False, CLEANUP(), None, ctypes.byref(out))
    return tb.Tensor._adopt(out.value, buffer)


def float32_sample():
    """Every float16 value, the formats' edges and a million random float32 bit patterns."""
    rng = numpy.random.default_rng(8)
    halves = numpy.arange(1 << 16, dtype=numpy.uint16).view(numpy.float16).astype(numpy.float32)
    edges = numpy.array([0.0, -0.0, 448.0, 464.0, 464.0001, 480.0, 57344.0, 61439.0, 61440.0, 65536.0,
                         2.0 ** -9, 2.0 ** -10, 2.0 ** -16, 2.0 ** -17, numpy.inf, -numpy.inf, numpy.nan],
                        numpy.float32)
    random = rng.integers(0, 1 << 32, 1 << 20, dtype=numpy.uint64).astype(numpy.uint32).view(numpy.float32)
    return numpy.concatenate([halves, edges, -edges, random])


def to_float8_bytes(values, name):
    out = numpy.zeros(values.size, numpy.uint8)
    tb.copy_into(wrap_bytes(out, name), tb.convert(tb.as_tensor(values), None, name))
    return out


@pytest.mark.parametrize("name", FORMATS)
def test_float32_to_float8_is_bit_identical_to_ml_dtypes(name):
    values = float32_sample()
    with numpy.errstate(invalid="ignore", over="ignore"):  # NaN and overflow are part of the sample
        expected = values.astype(FORMATS[name]).view(numpy.uint8)
    got = to_float8_bytes(values, name)
    nan = numpy.isnan(values)
    # convert computes y = x * 1 + 0 first, which turns -0.0 into +0.0 as float32 arithmetic does
    # (on the GPU too); PyTorch's .to() has no affine and keeps the sign.
    negative_zero = (values == 0) & numpy.signbit(values)
    assert (got[negative_zero] == 0).all()
    mismatch = numpy.flatnonzero((got != expected) & ~nan & ~negative_zero)
    assert mismatch.size == 0, [(values[i], hex(got[i]), hex(expected[i])) for i in mismatch[:8]]
    # NaN in, NaN out (the sign of a NaN is not a value).
    assert numpy.isnan(got[nan].view(FORMATS[name]).astype(numpy.float32)).all()


@pytest.mark.parametrize("name", FORMATS)
def test_every_float8_byte_reads_back_as_ml_dtypes_reads_it(name):
    every = numpy.arange(256, dtype=numpy.uint8)
    back = numpy.asarray(tb.convert(wrap_bytes(every, name), None, "float32"))
    expected = every.view(FORMATS[name]).astype(numpy.float32)
    numpy.testing.assert_array_equal(back, expected)  # NaN positions equal too


@pytest.mark.parametrize("source", ["uint8", "float16", "bfloat16"])
def test_other_inputs_and_the_affine_convert_through_float32(source):
    values = numpy.arange(-8, 248, dtype=numpy.float32) if source != "uint8" else numpy.arange(256, dtype=numpy.float32)
    typed = values.astype(ml_dtypes.bfloat16 if source == "bfloat16" else source)
    x = tb.as_tensor(typed) if source != "bfloat16" else tb.convert(tb.as_tensor(values), None, "bfloat16")
    scale, offset = 0.5, -3.0
    out = numpy.zeros(values.size, numpy.uint8)
    tb.copy_into(wrap_bytes(out, "float8_e4m3fn"), tb.convert(x, None, "float8_e4m3fn", scale, offset))
    reference = (typed.astype(numpy.float32) * numpy.float32(scale) + numpy.float32(offset))
    numpy.testing.assert_array_equal(out, reference.astype(ml_dtypes.float8_e4m3fn).view(numpy.uint8))


def test_the_array_interfaces_refuse_float8_and_dlpack_carries_it():
    t = tb.convert(tb.as_tensor(numpy.array([1.0, -2.5, 448.0], numpy.float32)), None, "float8_e4m3fn")
    assert str(t.dtype) == "float8_e4m3fn"
    with pytest.raises(tb.NotSupportedError, match="exchange it through DLPack"):
        t.__array_interface__
    again = tb.from_dlpack(t.__dlpack__(max_version=(1, 0)))
    assert str(again.dtype) == "float8_e4m3fn" and again.data_ptr == t.data_ptr
    back = numpy.asarray(tb.convert(again, None, "float32"))
    numpy.testing.assert_array_equal(back, [1.0, -2.5, 448.0])


@pytest.mark.parametrize("name, code, bits", [("float6_e2m3fn", 15, 6), ("float6_e3m2fn", 16, 6),
                                              ("float4_e2m1fn", 17, 4)])
def test_sub_byte_floats_are_held_padded_and_travel_through_versioned_dlpack(name, code, bits):
    buffer = numpy.arange(8, dtype=numpy.uint8)
    t = wrap_bytes(buffer, name)  # one element per byte: DLPack's padded form
    assert str(t.dtype) == name and t.shape == (8,) and t.data_ptr == buffer.ctypes.data
    again = tb.from_dlpack(t.__dlpack__(max_version=(1, 1)))  # the export sets the padded flag
    assert str(again.dtype) == name and again.data_ptr == buffer.ctypes.data
    with pytest.raises((BufferError, tb.NotSupportedError), match="padded"):
        t.__dlpack__()  # a legacy DLManagedTensor cannot say "padded"
    with pytest.raises(tb.NotSupportedError, match="DLPack"):
        t.__array_interface__
    assert _dtypes._BY_NAME[name].code == code and _dtypes._BY_NAME[name].bits == bits