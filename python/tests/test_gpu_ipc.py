"""CUDA IPC between Python processes (spawn start method): a PyTorch tensor (cudaMalloc memory)
shared as bytes, imported in a child process over the same memory — contents equal, a write by the
child visible to the parent, the child's stream ordered after the parent's — descriptors that were
changed, or imported by the process that made them, refused with the reason; and 1,000 exports and
imports in a row with no mapping left behind. Skipped without a GPU or PyTorch."""
import multiprocessing

import pytest

import tensorbridge as tb
from gpu_required import skip_module_unless_gpu

skip_module_unless_gpu()


def child_reads_and_writes(descriptor, results):
    """In the child: import, report a checksum of the contents and the pointer, write 7s."""
    import torch

    import tensorbridge

    imported = tensorbridge.from_shared(descriptor)
    view = torch.as_tensor(imported.cuda(), device="cuda")
    results.put((float(view.float().sum().item()), imported.shape, imported.layout, imported.data_ptr))
    view.fill_(7)
    torch.cuda.synchronize()
    del view, imported
    results.put(tensorbridge.live_tensor_count())


def child_imports_many(descriptors, results):
    import tensorbridge

    for descriptor in descriptors:
        tensorbridge.from_shared(descriptor)  # released at once
    results.put(tensorbridge.live_tensor_count())


def spawn(target, *args):
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=target, args=(*args, results))
    process.start()
    return process, results


def test_a_torch_tensor_is_shared_with_another_process_without_copying(torch):
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32, device="cuda").reshape(2, 3, 8, 8)
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        x.add_(1)  # pending on the stream when shared: the child's import waits for it
    descriptor = tb.as_tensor(x, "NCHW").share(stream=stream)
    assert isinstance(descriptor, bytes) and len(descriptor) == 512
    process, results = spawn(child_reads_and_writes, descriptor)
    total, shape, layout, pointer = results.get(timeout=120)
    assert total == float(x.sum().item()) and shape == (2, 3, 8, 8) and layout == "NCHW"
    assert results.get(timeout=120) == 0, "the child's imported tensor was released"
    process.join(timeout=120)
    assert process.exitcode == 0
    torch.cuda.synchronize()
    assert bool((x == 7).all()), "the child's write is visible to the parent: same memory"


def test_changed_descriptors_and_imports_in_the_same_process_are_refused(torch):
    x = torch.zeros(16, device="cuda")
    descriptor = bytearray(tb.as_tensor(x).share())
    descriptor[300] ^= 1
    with pytest.raises(tb.InvalidArgumentError, match="checksum mismatch"):
        tb.from_shared(descriptor)
    with pytest.raises(tb.CudaError, match="cannot import its own export"):
        tb.from_shared(tb.as_tensor(x).share())


def test_pool_memory_is_refused_with_the_reason(torch):
    with pytest.raises(tb.NotSupportedError, match="stream-ordered pool"):
        tb.empty((16,), "float32", device="cuda").share()


def test_a_thousand_imports_leave_nothing_behind(torch):
    xs = [torch.full((256,), float(i), device="cuda") for i in range(10)]
    descriptors = [tb.as_tensor(xs[i % 10]).share() for i in range(1000)]
    process, results = spawn(child_imports_many, descriptors)
    assert results.get(timeout=300) == 0
    process.join(timeout=120)
    assert process.exitcode == 0
