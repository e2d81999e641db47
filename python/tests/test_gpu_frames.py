"""convert_frames on the GPU gives the same bytes as the CPU path (test_frames.py checks that path
against the textbook equations): NV12, P016 and I420, one tensor or planes, batched, pitched rows,
widths that are not a multiple of the kernel's eight pixels, every output dtype, planar,
interleaved and arbitrarily strided outputs (the kernel's three store paths), both luma load
paths, BGR and a per-channel affine; on a stream of ours. Skipped without a GPU or PyTorch."""
import numpy
import pytest

import tensorbridge as tb
from frames_reference import i420, nv12, random_planes
from gpu_required import skip_module_unless_gpu

skip_module_unless_gpu()

RNG = numpy.random.default_rng(709)
MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
SCALE, OFFSET = [1 / (255 * s) for s in STD], [-m / s for m, s in zip(MEAN, STD)]


def raw_bytes(torch, t):
    """The bytes of a tensorbridge tensor (any dtype, float8 included) as a NumPy uint8 array."""
    return torch.from_dlpack(t).contiguous().view(torch.uint8).cpu().numpy()


def both_ways(torch, frames_host, kwargs, out_shape=None, pad=0):
    """convert_frames on host copies (CPU path) and on device copies (GPU kernel) of the same
    planes; with ``out_shape`` into an output with ``pad`` extra elements per row (strided)."""
    host = [numpy.ascontiguousarray(p) if isinstance(p, numpy.ndarray) else p for p in frames_host]
    stream = torch.cuda.Stream()
    device = [torch.from_numpy(numpy.ascontiguousarray(p)).cuda() for p in host]
    if out_shape is None:
        cpu = tb.convert_frames(host if len(host) > 1 else host[0], **kwargs)
        gpu = tb.convert_frames(device if len(device) > 1 else device[0], stream=stream, **kwargs)
        stream.synchronize()
        return raw_bytes(torch, cpu), raw_bytes(torch, gpu)
    layout = kwargs.pop("layout")
    dtype = getattr(torch, kwargs.pop("dtype", "float32"))
    wide = torch.zeros(*out_shape[:-1], out_shape[-1] + pad, dtype=dtype, device="cuda")
    out = tb.as_tensor(wide[..., :out_shape[-1]], layout)
    cpu = tb.convert_frames(host if len(host) > 1 else host[0], layout, str(out.dtype), **kwargs)
    tb.convert_frames(device if len(device) > 1 else device[0], out=out, stream=stream, **kwargs)
    stream.synchronize()
    return raw_bytes(torch, cpu), raw_bytes(torch, tb.as_tensor(wide[..., :out_shape[-1]].contiguous(), layout))


@pytest.mark.parametrize("height, width", [(36, 64), (18, 1002), (2, 2)])
@pytest.mark.parametrize("layout, dtype", [("NCHW", "float32"), ("NHWC", "uint8"), ("NHWC", "float32"),
                                           ("NCHW", "float16")])
def test_nv12_batches_give_the_cpu_bytes(torch, height, width, layout, dtype):
    y, u, v = random_planes(RNG, 3, height, width)
    cpu, gpu = both_ways(torch, [nv12(y, u, v)], dict(layout=layout, dtype=dtype, scale=SCALE, offset=OFFSET))
    assert cpu.shape == gpu.shape and (cpu == gpu).all()


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "uint8", "float8_e4m3fn", "float8_e5m2"])
def test_every_output_dtype_gives_the_cpu_bytes(torch, dtype):
    y, u, v = random_planes(RNG, 2, 16, 40)
    for bgr in (False, True):
        cpu, gpu = both_ways(torch, [nv12(y, u, v)], dict(layout="NCHW", dtype=dtype, bgr=bgr, scale=SCALE,
                                                          offset=OFFSET))
        assert (cpu == gpu).all(), (dtype, bgr)


def test_planes_pitched_i420_p016_and_full_range_give_the_cpu_bytes(torch):
    y, u, v = random_planes(RNG, 2, 20, 48)
    stream = torch.cuda.Stream()
    # Pitched planes inside 256-byte rows, as NVCV images and decoders hand them out.
    y_rows = torch.zeros(2, 20, 256, dtype=torch.uint8, device="cuda")
    uv_rows = torch.zeros(2, 10, 256, dtype=torch.uint8, device="cuda")
    y_rows[:, :, :48] = torch.from_numpy(y).cuda()
    uv_rows[:, :, :48] = torch.from_numpy(numpy.stack([u, v], -1).reshape(2, 10, 48)).cuda()
    planes = [tb.as_tensor(y_rows[:, :, :48]), tb.as_tensor(uv_rows[:, :, :48].reshape(2, 10, 24, 2))]
    got = tb.convert_frames(planes, "NHWC", standard="bt601", full_range=True, stream=stream)
    want = tb.convert_frames(nv12(y, u, v), "NHWC", standard="bt601", full_range=True)
    stream.synchronize()
    assert (raw_bytes(torch, got) == raw_bytes(torch, want)).all()
    # Luma that starts off the 8-byte grid: the kernel's scalar luma loads.
    shifted = torch.zeros(2, 20, 256, dtype=torch.uint8, device="cuda")
    shifted[:, :, 3:51] = torch.from_numpy(y).cuda()
    got = tb.convert_frames([tb.as_tensor(shifted[:, :, 3:51]), planes[1]], "NHWC", standard="bt601",
                            full_range=True, stream=stream)
    stream.synchronize()
    assert (raw_bytes(torch, got) == raw_bytes(torch, want)).all()
    for frames, fmt in [([y, u, v], "i420"), ([i420(y, u, v)], "i420")]:
        cpu, gpu = both_ways(torch, frames, dict(layout="NCHW", format=fmt))
        assert (cpu == gpu).all(), fmt
    y16, u16, v16 = random_planes(RNG, 2, 10, 24, bits=16)
    cpu, gpu = both_ways(torch, [nv12(y16, u16, v16)], dict(layout="NCHW", format="p016", scale=SCALE,
                                                            offset=OFFSET))
    assert (cpu == gpu).all()


def test_strided_outputs_use_the_general_store_and_give_the_cpu_bytes(torch):
    y, u, v = random_planes(RNG, 2, 12, 40)
    for layout, shape in [("NCHW", (2, 3, 12, 40)), ("NHWC", (2, 12, 40, 3))]:
        cpu, gpu = both_ways(torch, [nv12(y, u, v)], dict(layout=layout, dtype="float32"), out_shape=shape, pad=3)
        assert (cpu == gpu).all(), layout


def test_frames_on_two_memories_are_refused(torch):
    y, u, v = random_planes(RNG, 1, 4, 8)
    with pytest.raises(tb.InvalidArgumentError, match="all be on the GPU"):
        tb.convert_frames([torch.from_numpy(y[0]).cuda(), numpy.stack([u[0], v[0]], -1)])
