"""Two GPUs, with device 0 current throughout: PyTorch and CuPy tensors on device 1 come in on device
1, are processed there and go back with it; an allocation for device 1 comes from device 1's pool
(device 0's untouched), and an installed allocator is asked for device 1; operands on two devices
are either handled (peer access) or refused with the reason; a tensor on device 1 shared with
another process maps on device 1 there. Skipped, with the reason, on a machine with fewer than
two GPUs (scripts/gpu-check.sh allows that skip only there, as for the MultiGpu C++ tests)."""
import multiprocessing

import pytest

import tensorbridge as tb
from gpu_required import skip_module_unless_gpu

skip_module_unless_gpu()
if tb.cuda_device_count() < 2:
    pytest.skip(f"needs two GPUs: this machine has {tb.cuda_device_count()}", allow_module_level=True)


def test_torch_tensors_on_device_one_are_processed_there_and_go_back_with_it(torch):
    assert torch.cuda.current_device() == 0
    x = torch.randint(0, 255, (2, 16, 24, 3), dtype=torch.uint8, device="cuda:1")
    t = tb.as_tensor(x, "NHWC")
    assert t.device == tb.Device("cuda", 1) and t.data_ptr == x.data_ptr()
    planar = tb.reformat(t, "NCHW")
    normalized = tb.convert(t, "NCHW", "float32", scale=1 / 255)
    assert planar.device == tb.Device("cuda", 1) and normalized.device == tb.Device("cuda", 1)
    back = torch.from_dlpack(planar)
    assert back.device == torch.device("cuda", 1)
    assert torch.equal(back, x.permute(0, 3, 1, 2))
    assert torch.allclose(torch.as_tensor(normalized.cuda(), device="cuda:1"), x.permute(0, 3, 1, 2).float() / 255)
    assert torch.cuda.current_device() == 0, "device 0 is still current"


def test_cupy_arrays_on_device_one_are_processed_there(torch):
    cupy = pytest.importorskip("cupy", reason="optional framework not installed: CuPy")
    with cupy.cuda.Device(1):
        x = cupy.arange(4 * 5 * 3, dtype=cupy.float32).reshape(4, 5, 3)
    t = tb.as_tensor(x, "HWC")
    assert t.device == tb.Device("cuda", 1)
    planar = tb.reformat(t, "CHW")
    with cupy.cuda.Device(1):
        back = cupy.from_dlpack(planar)
        assert back.device.id == 1
        assert bool((back == x.transpose(2, 0, 1)).all())


def test_an_allocation_for_device_one_comes_from_device_ones_pool_and_installed_allocator(torch):
    before = (tb.pool_used_bytes(0), tb.pool_used_bytes(1))
    t = tb.empty((1 << 20,), "uint8", device="cuda:1")
    assert t.device == tb.Device("cuda", 1)
    assert tb.pool_used_bytes(1) >= before[1] + (1 << 20) and tb.pool_used_bytes(0) == before[0]
    del t
    torch.cuda.synchronize(1)
    tb.set_allocator(tb.TorchAllocator())
    try:
        allocated = torch.cuda.memory_allocated(1), torch.cuda.memory_allocated(0)
        u = tb.empty((1 << 20,), "uint8", device="cuda:1")
        assert torch.cuda.memory_allocated(1) >= allocated[0] + (1 << 20), "PyTorch was asked for device 1"
        assert torch.cuda.memory_allocated(0) == allocated[1]
        del u
    finally:
        tb.set_allocator(None)


def test_operands_on_two_devices_are_handled_or_refused_with_the_reason(torch):
    x = torch.randint(0, 255, (8, 8, 3), dtype=torch.uint8, device="cuda:1")
    out = torch.empty((3, 8, 8), dtype=torch.uint8, device="cuda:0")
    try:
        tb.reformat_into(tb.as_tensor(out, "CHW"), tb.as_tensor(x, "HWC"))
    except (tb.DeviceMismatchError, tb.NotSupportedError) as error:
        assert "cuda:0" in str(error) and "cuda:1" in str(error), str(error)
    else:
        torch.cuda.synchronize(0)
        torch.cuda.synchronize(1)
        assert torch.equal(out.cpu(), x.permute(2, 0, 1).cpu()), "handled through peer access"


def child_reports_the_device(descriptor, results):
    import torch

    import tensorbridge

    torch.cuda.set_device(0)
    imported = tensorbridge.from_shared(descriptor)
    view = torch.as_tensor(imported.cuda(), device=f"cuda:{imported.device.index}")
    results.put((imported.device.index, float(view.sum().item())))
    del view, imported


def test_a_tensor_on_device_one_is_shared_with_another_process_on_device_one(torch):
    x = torch.full((1000,), 2.0, device="cuda:1")
    descriptor = tb.as_tensor(x).share()
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=child_reports_the_device, args=(descriptor, results))
    process.start()
    assert results.get(timeout=120) == (1, 2000.0)
    process.join(timeout=120)
    assert process.exitcode == 0
