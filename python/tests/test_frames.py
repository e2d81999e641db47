"""tensorbridge.convert_frames on the CPU: NV12, I420 and P016 frames, as one tensor or as planes
(pitched, batched), to RGB/BGR in HWC/CHW/NHWC/NCHW, against the textbook equations in float64
(frames_reference.py): within one uint8 step, and 1e-3 on the 0-255 scale for float32. The GPU
kernel gives the same bytes as this CPU path (test_gpu_frames.py)."""
import numpy
import pytest

import tensorbridge as tb
from frames_reference import i420, nv12, random_planes, rgb

RNG = numpy.random.default_rng(420)


def as_numpy(t):
    return numpy.asarray(t)


@pytest.mark.parametrize("standard", ["bt601", "bt709"])
@pytest.mark.parametrize("full_range", [False, True])
def test_one_nv12_tensor_to_float32_chw_matches_the_equations(standard, full_range):
    y, u, v = random_planes(RNG, 1, 6, 10)
    frame = nv12(y, u, v)[0]
    got = as_numpy(tb.convert_frames(frame, standard=standard, full_range=full_range))
    assert got.shape == (3, 6, 10) and got.dtype == numpy.float32
    want = rgb(y[0], u[0], v[0], standard, full_range).transpose(2, 0, 1)
    numpy.testing.assert_allclose(got, want, atol=1e-3, rtol=1e-5)


def test_uint8_hwc_output_is_within_one_step_and_bgr_reverses_channels():
    y, u, v = random_planes(RNG, 1, 8, 16)
    frame = nv12(y, u, v)[0]
    want = rgb(y[0], u[0], v[0])
    got = as_numpy(tb.convert_frames(frame, "HWC", "uint8"))
    assert got.shape == (8, 16, 3) and numpy.abs(got.astype(float) - numpy.round(want)).max() <= 1
    bgr = as_numpy(tb.convert_frames(frame, "HWC", "uint8", bgr=True))
    assert (bgr == got[..., ::-1]).all()


def test_batched_pitched_planes_with_mean_std_into_a_caller_tensor():
    n, h, w = 3, 10, 14
    y, u, v = random_planes(RNG, n, h, w)
    # Planes inside wider buffers: a row pitch of 32 bytes, as decoders and NVCV images use.
    y_buffer = numpy.zeros((n, h, 32), numpy.uint8)
    uv_buffer = numpy.zeros((n, h // 2, 32), numpy.uint8)
    y_buffer[:, :, :w] = y
    uv_buffer[:, :, :w] = numpy.stack([u, v], -1).reshape(n, h // 2, w)
    planes = [y_buffer[:, :, :w, None], uv_buffer[:, :, :w].reshape(n, h // 2, w // 2, 2)]
    mean, std = numpy.array([0.485, 0.456, 0.406]), numpy.array([0.229, 0.224, 0.225])
    out = numpy.zeros((n, 3, h, w), numpy.float32)
    target = tb.as_tensor(out, "NCHW")
    assert tb.convert_frames(planes, scale=list(1 / (255 * std)), offset=list(-mean / std), out=target) is target
    want = ((rgb(y, u, v) / 255 - mean) / std).transpose(0, 3, 1, 2)
    numpy.testing.assert_allclose(out, want, atol=1e-4, rtol=1e-5)


def test_a_batch_of_two_pixel_wide_frames_is_a_batch():
    # (N, 3H/2, W) with W = 2 ends in 2, which is no channel extent of a whole frame (that is 1).
    y, u, v = random_planes(RNG, 3, 2, 2)
    got = as_numpy(tb.convert_frames(nv12(y, u, v)))
    assert got.shape == (3, 3, 2, 2)
    numpy.testing.assert_allclose(got, rgb(y, u, v).transpose(0, 3, 1, 2), atol=1e-3, rtol=1e-5)


def test_uv_plane_as_alternating_samples_matches_pairs():
    y, u, v = random_planes(RNG, 1, 4, 8)
    uv = numpy.stack([u[0], v[0]], -1)
    pairs = as_numpy(tb.convert_frames([y[0], uv]))
    alternating = as_numpy(tb.convert_frames([y[0], uv.reshape(2, 8)]))
    assert (pairs == alternating).all()


def test_i420_as_three_planes_and_as_one_packed_tensor():
    y, u, v = random_planes(RNG, 2, 8, 12)
    planes = as_numpy(tb.convert_frames([y, u, v], "NHWC", format="i420", standard="bt601"))
    packed = as_numpy(tb.convert_frames(i420(y, u, v), "NHWC", format="yuv420p", standard="bt601"))
    assert (planes == packed).all()
    numpy.testing.assert_allclose(planes, rgb(y, u, v, "bt601"), atol=1e-3, rtol=1e-5)


def test_p010_samples_in_the_high_bits():
    y10, u10, v10 = (a >> 6 for a in random_planes(RNG, 1, 6, 8, bits=16))  # ten-bit values
    y, u, v = (a.astype(numpy.uint16) << 6 for a in (y10, u10, v10))
    got = as_numpy(tb.convert_frames(nv12(y, u, v), "NCHW", format="p010"))
    want = rgb(y, u, v, bits=16).transpose(0, 3, 1, 2)
    numpy.testing.assert_allclose(got, want, atol=1e-3, rtol=1e-5)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "uint8"])
def test_other_outputs_are_the_float32_result_converted(dtype):
    y, u, v = random_planes(RNG, 1, 4, 8)
    frame = nv12(y, u, v)[0]
    reference = tb.convert(tb.convert_frames(frame), None, dtype)
    got = tb.convert_frames(frame, dtype=dtype)
    same = tb.convert(got, None, "float32"), tb.convert(reference, None, "float32")
    assert (as_numpy(same[0]) == as_numpy(same[1])).all()


@pytest.mark.parametrize("frames, kwargs, message", [
    (numpy.zeros((9, 7), numpy.uint8), {}, "even, non-zero height and width"),
    (numpy.zeros((10, 8), numpy.uint8), {}, "not a multiple of 3"),
    (numpy.zeros((6, 8), numpy.uint16), {}, "NV12 samples are uint8"),
    ([numpy.zeros((4, 8), numpy.uint8), numpy.zeros((2, 3, 2), numpy.uint8)], {}, "does not match a 4×8 luma plane"),
    ([numpy.zeros((4, 8), numpy.uint8)] * 3, {}, "NV12 frames come as 1 tensor or 2 planes, not 3"),
    (numpy.zeros((6, 8), numpy.uint8), {"layout": "HW"}, "needs H, W and C labels"),
    (numpy.zeros((6, 8), numpy.uint8), {"layout": "XHWC"}, "has the label 'X'"),
    (numpy.zeros((6, 8), numpy.uint8), {"dtype": "int32"}, "not int32"),
    (numpy.zeros((6, 8), numpy.uint8), {"scale": [1.0, 2.0]}, "2 scale/offset values given for 3 channels"),
])
def test_bad_frames_get_a_clear_error(frames, kwargs, message):
    with pytest.raises(tb.TensorBridgeError, match=message):
        tb.convert_frames(frames, **kwargs)


def test_bad_format_names_and_outputs():
    frame = numpy.zeros((6, 8), numpy.uint8)
    with pytest.raises(ValueError, match="format='nv21'"):
        tb.convert_frames(frame, format="nv21")
    with pytest.raises(tb.InvalidArgumentError, match="does not hold 1 frame"):
        tb.convert_frames(frame, out=tb.as_tensor(numpy.zeros((3, 4, 4), numpy.float32), "CHW"))
    readonly = numpy.zeros((3, 4, 8), numpy.float32)
    readonly.flags.writeable = False
    with pytest.raises(tb.ReadOnlyError):
        tb.convert_frames(frame, out=tb.as_tensor(readonly, "CHW"))
    # The output inside the frame's own bytes.
    buffer = numpy.zeros(4096, numpy.uint8)
    with pytest.raises(tb.InvalidArgumentError, match="overlap"):
        tb.convert_frames(buffer[:48].reshape(6, 8), out=tb.as_tensor(buffer[:96].reshape(4, 8, 3), "HWC"))
