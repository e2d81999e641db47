"""Allocation on the GPU from Python: allocating operations never make the host wait behind a
busy side stream, outputs can come from PyTorch's caching allocator, and pool usage and live
handles return to their baseline. Skipped, with the reason, without a GPU or PyTorch."""
import gc
import time

import pytest

import tensorbridge as tb
from gpu_required import busy_stream, skip_module_unless_gpu

skip_module_unless_gpu()


def test_allocating_operations_and_releases_do_not_wait_for_a_busy_side_stream(torch):
    image = tb.as_tensor(torch.randint(0, 255, (1080, 1920, 3), dtype=torch.uint8, device="cuda"), "HWC")
    # Warm up: each kernel specialisation is compiled and loaded on first use, and loading a
    # module may wait for the device; the pools are opened.
    tb.reformat(image, "CHW")
    tb.convert(image, "CHW", "float32", scale=1 / 255)
    tb.empty((3, 1080, 1920), "float32", "CHW", device="cuda")
    torch.cuda.synchronize()
    side = busy_stream(torch)
    start = time.perf_counter()
    planar = tb.reformat(image, "CHW")
    normalized = tb.convert(image, "CHW", "float32", scale=1 / 255)
    scratch = tb.empty((3, 1080, 1920), "float32", "CHW", device="cuda")
    del planar, normalized, scratch
    host_ms = (time.perf_counter() - start) * 1000
    assert not side.query(), "the side stream finished before the measurement"
    assert host_ms < 20, f"allocating and releasing took {host_ms:.1f} ms behind a busy side stream"
    torch.cuda.synchronize()


def test_torch_allocator_makes_outputs_from_pytorchs_pool(torch):
    x = torch.randint(0, 255, (2, 64, 48, 3), dtype=torch.uint8, device="cuda")
    tb.set_allocator(tb.TorchAllocator())
    try:
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated()
        planar = tb.reformat(tb.as_tensor(x, "NHWC"), "NCHW")
        assert torch.cuda.memory_allocated() >= before + planar.nbytes
        assert torch.equal(torch.as_tensor(planar, device="cuda"), x.permute(0, 3, 1, 2))
        del planar
        gc.collect()
        assert torch.cuda.memory_allocated() == before
    finally:
        tb.set_allocator(None)
    assert not tb.allocator_installed("cuda")


def test_pool_usage_and_live_handles_return_to_baseline(torch):
    x = tb.as_tensor(torch.rand((4, 32, 32, 3), device="cuda"), "NHWC")
    tb.reformat(x, "NCHW")
    torch.cuda.synchronize()
    used, live = tb.pool_used_bytes(0), tb.live_tensor_count()
    streams = [torch.cuda.Stream() for _ in range(3)]
    for i in range(300):
        out = tb.convert(x, "NCHW", "float16", scale=2.0, stream=streams[i % 3])
        out = tb.reformat(out, "NHWC", stream=streams[(i + 1) % 3])
        del out
    gc.collect()
    torch.cuda.synchronize()
    assert tb.live_tensor_count() == live
    assert tb.pool_used_bytes(0) == used
    tb.trim_pool(0)
