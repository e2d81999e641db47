"""The seeds' flows on a GPU with PyTorch, CuPy, Numba and JAX: zero-copy both ways through the
CUDA Array Interface and DLPack, writes visible through shared memory, the producer's side stream
ordered before the consumer, lifetimes, a dtype table, strided and empty views, and reformat /
convert results equal to PyTorch's. Each framework is skipped, with the reason, when it is not
installed or no GPU is usable."""
import gc
import time

import pytest

import tensorbridge as tb
from gpu_required import busy_stream, skip_module_unless_gpu

skip_module_unless_gpu()


# ---- PyTorch (the seeds' own example) ---------------------------------------------------------


def test_seed_flow_torch_to_tensorbridge_to_torch_is_zero_copy(torch):
    x = torch.randint(0, 255, (480, 640, 3), dtype=torch.uint8, device="cuda")
    t = tb.as_tensor(x, "HWC")
    assert t.data_ptr == x.data_ptr() and t.is_cuda and t.layout == "HWC"
    back = torch.as_tensor(t.cuda(), device="cuda")
    assert back.data_ptr() == x.data_ptr()
    back[0, 0, 0] = 7
    torch.cuda.synchronize()
    assert x[0, 0, 0].item() == 7, "writes are visible through the shared memory"
    cloned = back.clone()
    assert cloned.data_ptr() != x.data_ptr()


def test_plan_names_what_runs_for_packed_and_pitched_torch_tensors(torch):
    x = torch.randint(0, 256, (2, 64, 96, 3), dtype=torch.uint8, device="cuda")
    out = torch.empty(2, 3, 64, 96, dtype=torch.uint8, device="cuda")
    dst = tb.as_tensor(out, "NCHW")
    assert tb.reformat_plan(dst, tb.as_tensor(x, "NHWC")) == "deinterleave small=3 vec=16"
    # Rows of 288 bytes padded to 512 (a 256-byte aligned pitch, as NVCV and decoders use).
    pitched = torch.zeros(2, 64, 512, dtype=torch.uint8, device="cuda")[:, :, :288].unflatten(2, (96, 3))
    pitched.copy_(x)
    src = tb.as_tensor(pitched, "NHWC")
    assert tb.reformat_plan(dst, src) == "deinterleave small=3 vec=16", "the rows are a second batch dimension"
    tb.reformat_into(dst, src)
    torch.cuda.synchronize()
    assert torch.equal(out, x.permute(0, 3, 1, 2))


def test_dlpack_both_ways_with_torch(torch):
    x = torch.randn(4, 5, 6, device="cuda")
    t = tb.from_dlpack(torch.utils.dlpack.to_dlpack(x), "NHW")
    assert t.data_ptr == x.data_ptr()
    y = torch.from_dlpack(t)
    assert y.data_ptr() == x.data_ptr() and torch.equal(y, x)
    z = torch.utils.dlpack.from_dlpack(t.__dlpack__())  # legacy capsule
    assert z.data_ptr() == x.data_ptr()


def test_reformat_and_convert_equal_torch(torch):
    x = torch.randint(0, 256, (3, 37, 41, 3), dtype=torch.uint8, device="cuda")
    t = tb.as_tensor(x, "NHWC")
    planar = torch.as_tensor(tb.reformat(t, "NCHW"), device="cuda")
    assert torch.equal(planar, x.permute(0, 3, 1, 2))
    mean = torch.tensor([123.675, 116.28, 103.53], device="cuda")
    std = torch.tensor([58.395, 57.12, 57.375], device="cuda")
    normalized = torch.as_tensor(tb.convert(t, "NCHW", "float32", (1 / std).tolist(), (-mean / std).tolist()), device="cuda")
    expected = (x.permute(0, 3, 1, 2).float() - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    torch.testing.assert_close(normalized, expected, rtol=2e-6, atol=2e-6)
    strided = x[:, ::2, 1::3]
    got = torch.as_tensor(tb.reformat(tb.as_tensor(strided, "NHWC"), "NCHW"), device="cuda")
    assert torch.equal(got, strided.permute(0, 3, 1, 2))


def test_convert_with_a_channel_order_equals_torch_bgr_to_rgb_in_every_kernel(torch):
    mean = torch.tensor([123.675, 116.28, 103.53], device="cuda")
    std = torch.tensor([58.395, 57.12, 57.375], device="cuda")
    scale, offset = (1 / std).tolist(), (-mean / std).tolist()
    bgr = torch.randint(0, 256, (3, 37, 41, 3), dtype=torch.uint8, device="cuda")
    rgb = bgr.flip(-1)
    cases = [  # (source, its layout, output layout, expected: rgb in the output layout)
        (bgr, "NHWC", "NCHW", rgb.permute(0, 3, 1, 2)),  # the deinterleave, through the inverse
        (bgr.permute(0, 3, 1, 2).contiguous(), "NCHW", "NHWC", rgb),  # the interleave
        (bgr, "NHWC", "NHWC", rgb),  # same layout: the general kernel
    ]
    for source, layout, out_layout, expected in cases:
        got = tb.convert(tb.as_tensor(source, layout), out_layout, "float32", scale, offset, channel_order=(2, 1, 0))
        mean_, std_ = (v.view(1, 3, 1, 1) if out_layout == "NCHW" else v for v in (mean, std))
        torch.testing.assert_close(torch.as_tensor(got, device="cuda"), (expected.float() - mean_) / std_,
                                   rtol=2e-6, atol=2e-6, msg=f"{layout}->{out_layout}")
    spread = torch.empty((3, 3, 37, 41), dtype=torch.float16, device="cuda")
    tb.convert_into(tb.as_tensor(spread, "NCHW"), tb.as_tensor(bgr, "NHWC"), channel_order=[1, 1, 1])
    assert torch.equal(spread, bgr[..., 1:2].permute(0, 3, 1, 2).expand(3, 3, 37, 41).half())


class CaiV3:
    """A CUDA Array Interface v3 producer naming its stream, as CuPy exports (PyTorch exports v2
    without a stream)."""

    def __init__(self, tensor, stream):
        self._tensor = tensor
        self.__cuda_array_interface__ = dict(tensor.__cuda_array_interface__, version=3, stream=stream)


def test_producer_side_stream_is_ordered_before_the_consumer(torch):
    side = torch.cuda.Stream()
    big = torch.empty(1 << 28, dtype=torch.uint8, device="cuda")
    x = torch.zeros(1 << 22, dtype=torch.uint8, device="cuda")
    torch.cuda.synchronize()
    with torch.cuda.stream(side):
        for _ in range(4):
            big.fill_(1)  # slow work ahead of the write the consumer must see
        x.fill_(9)
    t = tb.as_tensor(CaiV3(x, side.cuda_stream), "W")  # no host synchronization anywhere
    assert t.__cuda_array_interface__.get("stream") == side.cuda_stream
    copy = tb.reformat(t, "W")  # runs on the legacy default stream: must wait for `side`
    result = torch.as_tensor(copy, device="cuda")
    torch.cuda.synchronize()
    assert int(result.min()) == 9 and int(result.max()) == 9


def test_import_reformat_convert_return_while_the_producer_is_busy_and_wait_on_the_device(torch):
    x = torch.randint(0, 256, (3, 37, 41, 3), dtype=torch.uint8, device="cuda")
    scale, offset = [0.5, 2.0, -1.0], [1.0, 0.0, 3.0]
    warm = tb.as_tensor(x, "NHWC")  # compile and load the kernels before any stream is busy
    tb.reformat(warm, "NCHW")
    tb.convert(warm, "NCHW", "float32", scale, offset)
    y = torch.zeros_like(x)
    torch.cuda.synchronize()
    producer, consumer = busy_stream(torch, 1.0), torch.cuda.Stream()
    with torch.cuda.stream(producer):
        y.copy_(x)  # y holds the data only once the producer's spin has ended
    start = time.perf_counter()
    t = tb.as_tensor(CaiV3(y, producer.cuda_stream), "NHWC")
    planar = tb.reformat(t, "NCHW", stream=consumer)
    normalized = tb.convert(t, "NCHW", "float32", scale, offset, stream=consumer)
    host_ms = (time.perf_counter() - start) * 1000
    assert not producer.query(), "the producer finished early: nothing was shown"
    assert not consumer.query(), "the consumer finished while the producer was busy: it did not wait"
    assert host_ms < 100, f"the calls blocked the host for {host_ms:.1f} ms behind the producer"
    consumer.synchronize()
    assert torch.equal(torch.as_tensor(planar, device="cuda"), x.permute(0, 3, 1, 2))
    s, o = (torch.tensor(v, device="cuda").view(1, 3, 1, 1) for v in (scale, offset))
    expected = x.permute(0, 3, 1, 2).float() * s + o
    torch.testing.assert_close(torch.as_tensor(normalized, device="cuda"), expected, rtol=1e-6, atol=1e-6)
    del t
    torch.cuda.synchronize()


def test_lifetimes_after_del_and_gc_of_either_side(torch):
    x = torch.arange(1000, dtype=torch.float32, device="cuda")
    t = tb.as_tensor(x, "W")
    del x
    gc.collect()
    torch.cuda.empty_cache()
    assert torch.as_tensor(t, device="cuda")[999].item() == 999.0
    y = torch.as_tensor(t, device="cuda")
    del t
    gc.collect()
    assert y[10].item() == 10.0


@pytest.mark.parametrize("dtype", ["bool", "uint8", "int8", "int16", "int32", "int64", "float16",
                                   "bfloat16", "float32", "float64", "complex64"])
def test_dtype_table_with_torch(torch, dtype):
    torch_dtype = getattr(torch, dtype)
    x = (torch.randn(3, 4, device="cuda") * 10).to(torch_dtype)
    t = tb.as_tensor(x)
    assert t.data_ptr == x.data_ptr()
    back = torch.from_dlpack(t)
    assert back.dtype == torch_dtype and torch.equal(back, x)


def test_empty_and_non_contiguous_views_with_torch(torch):
    empty = torch.empty(0, 3, device="cuda")
    assert tb.as_tensor(empty).shape == (0, 3)
    x = torch.randn(6, 8, device="cuda").t()[::2]
    t = tb.as_tensor(x)
    assert t.strides == tuple(s * 4 for s in x.stride())
    assert torch.equal(torch.from_dlpack(t), x)


def test_streams_from_torch_objects(torch):
    stream = torch.cuda.Stream()
    x = torch.randn(2, 3, 4, device="cuda")
    out = tb.reformat(tb.as_tensor(x, "HWC"), "CHW", stream=stream)
    stream.synchronize()
    assert torch.equal(torch.as_tensor(out, device="cuda"), x.permute(2, 0, 1))


# ---- CuPy -------------------------------------------------------------------------------------


def test_cupy_both_ways():
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed")
    a = cupy.arange(24, dtype=cupy.float32).reshape(2, 3, 4)
    t = tb.as_tensor(a, "HWC")
    assert t.data_ptr == a.data.ptr
    view = cupy.asarray(t.permute("CHW"))
    assert view.data.ptr == a.data.ptr and cupy.array_equal(view, a.transpose(2, 0, 1))
    via_dlpack = cupy.from_dlpack(tb.reformat(t, "CHW"))
    assert cupy.array_equal(via_dlpack, a.transpose(2, 0, 1))
    with cupy.cuda.Stream(non_blocking=True) as stream:
        out = tb.reformat(t, "CHW", stream=stream)
        stream.synchronize()
    assert cupy.array_equal(cupy.asarray(out), a.transpose(2, 0, 1))


# ---- Numba ------------------------------------------------------------------------------------


def test_numba_both_ways():
    numba_cuda = pytest.importorskip("numba.cuda", reason="Numba (CUDA) is not installed")
    import numpy as np

    host = np.arange(12, dtype=np.int32).reshape(3, 4)
    device_array = numba_cuda.to_device(host)
    t = tb.as_tensor(device_array, "HW")
    assert t.data_ptr == device_array.__cuda_array_interface__["data"][0]
    back = numba_cuda.as_cuda_array(tb.reformat(t, "WH"))
    np.testing.assert_array_equal(back.copy_to_host(), host.T)


# ---- JAX --------------------------------------------------------------------------------------


def test_jax_both_ways():
    jax = pytest.importorskip("jax", reason="JAX is not installed")
    import numpy as np

    gpus = [d for d in jax.devices() if d.platform == "gpu"]
    if not gpus:
        pytest.skip("JAX sees no GPU")
    x = jax.device_put(jax.numpy.arange(24, dtype=jax.numpy.float32).reshape(2, 3, 4), gpus[0])
    t = tb.as_tensor(x, "HWC")
    planar = tb.reformat(t, "CHW")
    y = jax.dlpack.from_dlpack(planar)
    np.testing.assert_array_equal(np.asarray(y), np.asarray(x).transpose(2, 0, 1))
