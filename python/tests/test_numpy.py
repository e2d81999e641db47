"""The package on any machine: NumPy interop (zero-copy both ways), views, host operations
against NumPy references, lifetimes and every error path."""
import gc

import numpy as np
import pytest

import tensorbridge as tb

RNG = np.random.default_rng()


def random_array(shape, dtype):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return RNG.integers(0, 2, shape).astype(np.bool_)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return RNG.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    if dtype.kind == "c":
        return (RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)).astype(dtype)
    return RNG.standard_normal(shape).astype(dtype)


def test_as_tensor_is_zero_copy_and_describes_the_array():
    a = random_array((4, 6, 3), np.uint8)
    t = tb.as_tensor(a, "HWC")
    assert t.data_ptr == a.ctypes.data
    assert t.shape == (4, 6, 3) and t.strides == a.strides and t.ndim == 3
    assert t.dtype == np.uint8 and t.layout == "HWC" and t.nbytes == a.nbytes
    assert t.device == tb.Device("cpu", 0) and str(t.device) == "cpu"
    assert not t.is_cuda and not t.readonly and t.is_contiguous


def test_numpy_sees_writes_through_both_interfaces():
    a = np.zeros((3, 5), np.float32)
    t = tb.as_tensor(a)
    via_interface = np.asarray(t)
    via_dlpack = np.from_dlpack(t)
    a[1, 2] = 7.0
    assert via_interface[1, 2] == 7.0 and via_dlpack[1, 2] == 7.0
    assert via_interface.ctypes.data == via_dlpack.ctypes.data == a.ctypes.data


@pytest.mark.parametrize("dtype", ["bool", "int8", "uint8", "int16", "uint16", "int32", "int64",
                                   "uint64", "float16", "float32", "float64", "complex64", "complex128"])
def test_dtype_round_trip(dtype):
    a = random_array((2, 3), dtype)
    t = tb.as_tensor(a)
    assert t.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(np.asarray(t), a)
    np.testing.assert_array_equal(np.from_dlpack(t), a)


def test_producer_outlives_its_python_name_and_is_released_with_the_tensor():
    a = random_array((64, 64), np.float64)
    expected = a.copy()
    t = tb.as_tensor(a)
    del a
    gc.collect()
    np.testing.assert_array_equal(np.asarray(t), expected)
    view = t[1:]
    del t
    gc.collect()
    np.testing.assert_array_equal(np.asarray(view), expected[1:])


def test_read_only_arrays_stay_read_only():
    a = random_array((3, 3), np.int32)
    a.flags.writeable = False
    t = tb.as_tensor(a)
    assert t.readonly
    assert not np.asarray(t).flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        tb.copy_into(t, np.zeros((3, 3), np.int32))


def test_views_permute_select_and_slice_without_copying():
    a = random_array((5, 4, 6, 3), np.uint8)
    t = tb.as_tensor(a, "NHWC")
    np.testing.assert_array_equal(np.asarray(t.permute("NCHW")), a.transpose(0, 3, 1, 2))
    image = t[2]
    assert image.layout == "HWC" and image.data_ptr == a[2].ctypes.data
    np.testing.assert_array_equal(np.asarray(t[1:4]), a[1:4])
    np.testing.assert_array_equal(np.asarray(t[::-2]), a[::-2])
    np.testing.assert_array_equal(np.asarray(t[-1, ::2]), a[-1, ::2])
    assert t[1:4].layout == "NHWC"


@pytest.mark.parametrize("dtype", ["uint8", "float16", "float32", "float64", "complex128", "bool"])
@pytest.mark.parametrize("source,target,shape", [
    ("NHWC", "NCHW", (2, 7, 9, 3)), ("NCHW", "NHWC", (2, 3, 7, 9)), ("HWC", "CHW", (1, 1023, 4)),
    ("NCDHW", "NDHWC", (2, 3, 2, 3, 5)), ("ABCD", "DBCA", (3, 1, 4, 7)),
])
def test_reformat_matches_numpy_transpose(dtype, source, target, shape):
    a = random_array(shape, dtype)
    t = tb.reformat(tb.as_tensor(a, source), target)
    order = [source.index(label) for label in target]
    assert t.layout == target and t.is_contiguous
    np.testing.assert_array_equal(np.asarray(t), a.transpose(order))


def test_reformat_of_strided_views_and_reformat_into():
    a = random_array((3, 9, 10, 3), np.float32)
    view = a[:, ::2, ::-3]
    t = tb.reformat(tb.as_tensor(view, "NHWC"), "NCHW")
    np.testing.assert_array_equal(np.asarray(t), view.transpose(0, 3, 1, 2))
    out = np.zeros((3, 3, 5, 4), np.float32)
    assert tb.reformat_into(tb.as_tensor(out, "NCHW"), tb.as_tensor(view, "NHWC")).data_ptr == out.ctypes.data
    np.testing.assert_array_equal(out, view.transpose(0, 3, 1, 2))


def test_convert_normalizes_uint8_nhwc_into_float32_nchw():
    a = random_array((2, 5, 7, 3), np.uint8)
    mean, std = np.array([123.675, 116.28, 103.53]), np.array([58.395, 57.12, 57.375])
    t = tb.convert(tb.as_tensor(a, "NHWC"), "NCHW", "float32", scale=1 / std, offset=-mean / std)
    expected = (a.transpose(0, 3, 1, 2) - mean[:, None, None]) / std[:, None, None]
    assert t.dtype == np.float32 and t.layout == "NCHW"
    np.testing.assert_allclose(np.asarray(t), expected, rtol=2e-6, atol=2e-6)


def test_convert_reorders_channels_in_the_same_pass_bgr_to_rgb_and_bgra_to_rgba():
    x = np.random.default_rng(7).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    scale, offset = [0.5, 0.25, 2.0], [-1.0, 3.0, 0.125]
    out = np.asarray(tb.convert(tb.as_tensor(x, "NHWC"), "NCHW", "float32", scale, offset, channel_order=(2, 1, 0)))
    rgb = x[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32)
    expected = rgb * np.float32(scale)[None, :, None, None] + np.float32(offset)[None, :, None, None]
    np.testing.assert_array_equal(out, expected)
    bgra = np.random.default_rng(8).integers(0, 256, (4, 6, 4), dtype=np.uint8)
    rgba = np.empty((4, 6, 4), np.float32)
    tb.convert_into(tb.as_tensor(rgba, "HWC"), tb.as_tensor(bgra, "HWC"), channel_order=[2, 1, 0, 3])
    np.testing.assert_array_equal(rgba, bgra[..., [2, 1, 0, 3]].astype(np.float32))
    with pytest.raises(tb.InvalidArgumentError, match=r"order\[1\] = 5 is not a channel \(0\.\.3\)"):
        tb.convert(tb.as_tensor(x, "NHWC"), "NCHW", channel_order=(0, 5, 1))
    with pytest.raises(tb.InvalidArgumentError, match="needs a 'C' label"):
        tb.convert(tb.as_tensor(x, "NHWX"), channel_order=(0, 1, 2))


def test_convert_to_half_types_and_saturating_uint8():
    a = (RNG.standard_normal((4, 5, 2)) * 300).astype(np.float32)
    t = tb.as_tensor(a, "HWC")
    half = np.asarray(tb.convert(t, dtype="float16"))
    np.testing.assert_array_equal(half, a.astype(np.float16))
    as_u8 = np.asarray(tb.convert(t, dtype=np.uint8, scale=0.5, offset=10))
    np.testing.assert_array_equal(as_u8, np.clip(np.rint(a * np.float32(0.5) + np.float32(10)), 0, 255).astype(np.uint8))
    bf16 = tb.convert(t, "CHW", "bfloat16")
    assert tuple(bf16.shape) == (2, 4, 5)
    # bfloat16 is the top half of float32, rounded to nearest even (no NaN in `a`).
    bits = np.ascontiguousarray(a.transpose(2, 0, 1)).view(np.uint32).astype(np.uint64)
    expected = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    got = np.frombuffer(np.ascontiguousarray(np.asarray(bf16)).tobytes(), np.uint16).reshape(2, 4, 5)
    np.testing.assert_array_equal(got, expected)


def test_copy_into_between_different_strides():
    src = random_array((6, 8), np.int16)
    dst = np.zeros((8, 6), np.int16).T
    tb.copy_into(tb.as_tensor(dst), tb.as_tensor(src))
    np.testing.assert_array_equal(dst, src)


def test_clone_and_empty():
    a = random_array((3, 4), np.float32)[:, ::2]
    c = tb.as_tensor(a, "HW").clone()
    assert c.is_contiguous and c.layout == "HW" and c.data_ptr != a.ctypes.data
    np.testing.assert_array_equal(np.asarray(c), a)
    e = tb.empty((2, 3), "uint16", layout="HW")
    assert np.asarray(e).sum() == 0 and e.dtype == np.uint16


def test_zero_size_and_scalar_arrays():
    empty = np.zeros((0, 3), np.float32)
    assert tb.as_tensor(empty).shape == (0, 3)
    assert tb.reformat(tb.as_tensor(empty, "HW"), "WH").shape == (3, 0)
    scalar = np.array(5.5)
    assert float(np.asarray(tb.as_tensor(scalar))) == 5.5


def test_dlpack_protocol_rules_for_host_tensors():
    t = tb.as_tensor(random_array((2, 2), np.float32))
    assert t.__dlpack_device__() == (1, 0)
    with pytest.raises(ValueError, match="host tensor"):
        t.__dlpack__(stream=5)
    with pytest.raises(BufferError):
        t.__dlpack__(dl_device=(2, 0), copy=False)
    copied = np.from_dlpack(t, copy=True)
    assert copied.ctypes.data != t.data_ptr
    np.testing.assert_array_equal(copied, np.asarray(t))
    same = tb.from_dlpack(t.__dlpack__(max_version=(1, 0)))
    assert same.data_ptr == t.data_ptr
    legacy = tb.from_dlpack(t.__dlpack__())
    assert legacy.data_ptr == t.data_ptr
    capsule = t.__dlpack__(max_version=(1, 0))
    tb.from_dlpack(capsule)
    with pytest.raises(BufferError, match="unconsumed"):
        tb.from_dlpack(capsule)


@pytest.mark.parametrize("make,exception,fragment", [
    (lambda: tb.as_tensor(object()), TypeError, "exposes no"),
    (lambda: tb.as_tensor(np.zeros(3, ">f4")), TypeError, "big-endian"),
    (lambda: tb.as_tensor(np.zeros(3, object)), TypeError, "Python objects"),
    (lambda: tb.as_tensor(np.zeros(3, "M8[ns]")), TypeError, "datetimes"),
    (lambda: tb.as_tensor(np.zeros((2, 3)), "HWC"), ValueError, "has 3 labels but the tensor has rank 2"),
    (lambda: tb.as_tensor(np.zeros((2, 2)), "HH"), ValueError, "repeated"),
    (lambda: tb.as_tensor(np.zeros((2, 3)), "HW").permute("HC"), ValueError, "label 'C' is missing"),
    (lambda: tb.reformat(tb.as_tensor(np.zeros((2, 3)), "HW"), "HC"), ValueError, "not a permutation"),
    (lambda: tb.as_tensor(np.zeros((2, 3)), "HW")[5], ValueError, "index 5 is out of range"),
    (lambda: tb.as_tensor(np.zeros((2, 3)), "HW")[::0], ValueError, "slice step is 0"),
    (lambda: tb.as_tensor(np.zeros((2, 3)))["a"], TypeError, "ints and slices"),
    (lambda: tb.convert(tb.as_tensor(np.zeros((2, 3), np.float64)), dtype="float32"), TypeError, "not float64"),
    (lambda: tb.convert(tb.as_tensor(np.zeros((2, 3), np.uint8), "HC"), scale=[1, 2]), ValueError, "2 scale/offset values given for 3 channels"),
    (lambda: tb.convert(tb.as_tensor(np.zeros((2, 3), np.uint8), "HC"), dtype="int32"), TypeError, "not int32"),
    (lambda: tb.copy_into(np.zeros(3, np.float32), np.zeros(4, np.float32)), ValueError, "differs from destination shape"),
    (lambda: tb.empty((2,), "float8"), TypeError, "unknown dtype"),
    (lambda: tb.empty((2,), "uint8", device="cuda"), RuntimeError, "CUDA unavailable"),
    (lambda: tb.empty((2,), "uint8", device="tpu"), ValueError, "unknown device"),
    (lambda: tb.as_tensor(np.zeros([1] * 16)), ValueError, "maximum rank"),
    (lambda: tb.Tensor(), TypeError, "as_tensor"),
])
def test_errors_carry_the_library_message(make, exception, fragment):
    if "CUDA unavailable" in fragment and tb.cuda_device_count() > 0:
        pytest.skip("a GPU is present: device allocation succeeds")
    with pytest.raises(exception, match=fragment):
        make()


def test_library_errors_are_typed_and_name_their_status():
    with pytest.raises(tb.InvalidArgumentError) as info:
        tb.as_tensor(np.zeros((2, 2)), "HWC")
    assert info.value.status == "TB_ERROR_INVALID_ARGUMENT"
    assert isinstance(info.value, ValueError) and isinstance(info.value, tb.TensorBridgeError)


def test_convert_into_writes_an_existing_output_in_its_layout_and_dtype():
    x = np.arange(2 * 3 * 4 * 3, dtype=np.uint8).reshape(2, 3, 4, 3)
    out = tb.empty((2, 3, 3, 4), "float32", "NCHW")
    assert tb.convert_into(out, tb.as_tensor(x, "NHWC"), scale=[1, 2, 3], offset=0.5) is out
    expected = x.transpose(0, 3, 1, 2).astype(np.float32) * np.float32([1, 2, 3]).reshape(1, 3, 1, 1) + 0.5
    assert np.array_equal(np.asarray(out), expected)
    with pytest.raises(tb.InvalidArgumentError):
        tb.convert_into(tb.empty((2, 3), "float32", "HW"), tb.as_tensor(x, "NHWC"))
