"""CUDA IPC between processes (spawn start method): a PyTorch tensor (cudaMalloc memory) shared as
bytes and imported in a child over the same memory — contents equal, a write by the child visible
to the parent, the child's stream ordered after the parent's; tensorbridge's own pool memory
pickled through a multiprocessing Queue (its pool's file descriptor travels with it) after the
parent dropped its own reference; a Unix socket with send_shared/receive_shared; a C++ producer
(tb_ipc_child) imported here, and refused with the reason once it was killed; descriptors that
were changed, imported twice, revoked or imported by their own process refused with the reason;
and 1,000 exports and imports with no lease, handle, pool memory or file descriptor left behind.
Skipped without a GPU or PyTorch."""
import multiprocessing
import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

import tensorbridge as tb
from gpu_required import skip_module_unless_gpu

skip_module_unless_gpu()

ROOT = Path(__file__).resolve().parents[2]


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


def child_takes_from_a_queue(queue, results):
    """In the child: a tensorbridge.Tensor unpickled from a multiprocessing Queue."""
    import torch

    received = queue.get()
    view = torch.as_tensor(received.cuda(), device="cuda")
    results.put((type(received).__name__, received.shape, received.layout, float(view.sum().item())))
    view.add_(1)
    torch.cuda.synchronize()
    del view, received
    results.put(True)


def child_receives_from_a_socket(channel, results):
    import torch

    import tensorbridge

    with channel:  # multiprocessing passes the socket itself (a duplicate of its descriptor)
        received = tensorbridge.receive_shared(channel)
        results.put(float(torch.as_tensor(received.cuda(), device="cuda").sum().item()))


def child_imports_many(descriptors, results):
    import tensorbridge

    for descriptor in descriptors:
        tensorbridge.from_shared(descriptor)  # released at once
    results.put(tensorbridge.live_tensor_count())


def spawn(target, *args, **options):
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=target, args=(*args, results), **options)
    process.start()
    return process, results


def answer(results, process, timeout=60):
    """The child's next result; fails at once (with its exit code) when the child died."""
    import queue
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return results.get(timeout=1)
        except queue.Empty:
            if not process.is_alive():
                try:
                    return results.get(timeout=2)  # sent just before it exited
                except queue.Empty:
                    pytest.fail(f"the child exited ({process.exitcode}) without answering")
    pytest.fail(f"no answer from the child in {timeout} s")


def open_fds():
    return len(os.listdir("/proc/self/fd"))


def test_a_torch_tensor_is_shared_with_another_process_without_copying(torch):
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32, device="cuda").reshape(2, 3, 8, 8)
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        x.add_(1)  # pending on the stream when shared: the child's import waits for it
    expected = float(torch.arange(1, 2 * 3 * 8 * 8 + 1, dtype=torch.float64).sum())
    descriptor = tb.as_tensor(x, "NCHW").share(stream=stream)
    assert isinstance(descriptor, bytes) and len(descriptor) == 512
    assert tb.shared_pool_fd(descriptor) is None, "cudaMalloc memory needs no pool"
    process, results = spawn(child_reads_and_writes, descriptor)
    total, shape, layout, pointer = answer(results, process)
    assert total == expected and shape == (2, 3, 8, 8) and layout == "NCHW"
    assert answer(results, process) == 0, "the child's imported tensor was released"
    process.join(timeout=120)
    assert process.exitcode == 0
    torch.cuda.synchronize()
    assert bool((x == 7).all()), "the child's write is visible to the parent: same memory"


def test_pool_memory_pickles_through_a_queue_and_outlives_the_senders_reference(torch):
    baseline = tb.pool_used_bytes(0)
    held = tb.collect_shared()
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process, results = spawn(child_takes_from_a_queue, queue)
    t = tb.empty((4, 5, 3), "float32", "HWC", device="cuda")
    view = torch.as_tensor(t.cuda(), device="cuda")
    view.fill_(2)
    torch.cuda.synchronize()
    queue.put(t)
    del t  # the pickled export holds the memory now
    name, shape, layout, total = answer(results, process)
    assert (name, shape, layout, total) == ("Tensor", (4, 5, 3), "HWC", 2.0 * 60)
    assert answer(results, process)
    process.join(timeout=120)
    assert process.exitcode == 0
    torch.cuda.synchronize()
    assert bool((view == 3).all()), "the child's write is visible here: same memory"
    del view
    assert tb.collect_shared() == held, "the child's release ended the hold"
    torch.cuda.synchronize()
    assert tb.pool_used_bytes(0) == baseline


def test_a_unix_socket_carries_pool_memory_and_its_file_descriptor(torch):
    ours, theirs = socket.socketpair()
    process, results = spawn(child_receives_from_a_socket, theirs)
    theirs.close()
    t = tb.empty((256,), "float32", device="cuda")
    torch.as_tensor(t.cuda(), device="cuda").fill_(0.5)
    tb.send_shared(ours, t)
    assert answer(results, process) == 128.0
    process.join(timeout=120)
    ours.close()
    assert process.exitcode == 0


def tb_ipc_child():
    for build in ("build-gpu", "build"):
        program = ROOT / build / "cpp_tests" / "tb_ipc_child"
        if program.exists():
            return program
    pytest.skip("the C++ side of this test (tb_ipc_child) is not built: run scripts/gpu-check.sh, which "
                "builds it")


def test_a_cpp_producers_tensor_is_imported_in_python_and_refused_once_it_was_killed(torch):
    program = tb_ipc_child()
    producer = subprocess.Popen([program, "produce"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    descriptor = producer.stdout.read(512)
    imported = tb.from_shared(descriptor)
    assert (imported.shape, imported.layout, imported.dtype) == ((4, 64, 3), "HWC", "uint8")
    expected = torch.arange(4 * 64 * 3, dtype=torch.int64) % 256
    assert torch.equal(torch.as_tensor(imported.cuda(), device="cuda").flatten().cpu().long(), expected)
    del imported
    producer.communicate(b"done\n", timeout=60)
    assert producer.returncode == 0

    killed = subprocess.Popen([program, "produce"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    descriptor = killed.stdout.read(512)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    with pytest.raises(tb.CudaError, match="has exited"):
        tb.from_shared(descriptor)


def test_changed_revoked_and_own_descriptors_are_refused(torch):
    x = torch.zeros(16, device="cuda")
    descriptor = bytearray(tb.as_tensor(x).share())
    descriptor[300] ^= 1
    with pytest.raises(tb.InvalidArgumentError, match="checksum mismatch"):
        tb.from_shared(descriptor)
    descriptor[300] ^= 1
    with pytest.raises(tb.InvalidArgumentError, match="its own export"):
        tb.from_shared(descriptor)
    held = tb.collect_shared()
    tb.revoke_shared(descriptor)
    assert tb.collect_shared() == held - 1
    with pytest.raises(tb.InvalidArgumentError, match="not held"):
        tb.revoke_shared(descriptor)


def test_memory_from_other_pools_is_refused_with_the_reason(torch):
    # cudaMallocAsync memory (CuPy's asynchronous pool): the device's default pool, not shareable.
    # (tensorbridge.empty(..., stream=) is no reliable example: a block that tensorbridge's own
    # pool gave and the same stream freed may be handed out again, and that one is shareable.)
    cupy = pytest.importorskip("cupy", reason="optional framework not installed: CuPy")
    pool = cupy.cuda.MemoryAsyncPool()
    memory = pool.malloc(64)
    x = cupy.ndarray((16,), cupy.float32, memory)
    with pytest.raises(tb.NotSupportedError, match="stream-ordered pool"):
        tb.as_tensor(x).share()
    del x, memory


def test_a_thousand_exports_and_imports_leave_nothing_behind(torch):
    held, fds, baseline = tb.collect_shared(), open_fds(), tb.pool_used_bytes(0)
    xs = [torch.full((256,), float(i), device="cuda") for i in range(10)]
    pooled = [tb.empty((256,), "float32", device="cuda") for _ in range(10)]
    descriptors = [tb.as_tensor(xs[i % 10]).share() for i in range(1000)]
    assert tb.collect_shared() == held + 1000
    process, results = spawn(child_imports_many, descriptors)
    assert answer(results, process, timeout=300) == 0
    process.join(timeout=120)
    assert process.exitcode == 0
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    for i in range(1000):
        queue.put(pooled[i % 10])
    process, results = spawn(child_drains, queue, 1000)
    assert answer(results, process, timeout=300) == 0
    process.join(timeout=120)
    assert process.exitcode == 0
    del pooled
    assert tb.collect_shared() == held, "every export's hold ended"
    torch.cuda.synchronize()
    assert tb.pool_used_bytes(0) == baseline, "no pool memory left behind"
    # The queues' pipes, multiprocessing's descriptor sharer and the pool's own exported descriptor
    # stay open; a descriptor per tensor (2,000 of them here) would not fit under this bound.
    assert open_fds() <= fds + 10, "no file descriptor per tensor left behind"


def child_drains(queue, count, results):
    import tensorbridge

    for _ in range(count):
        queue.get()  # imported and released at once
    results.put(tensorbridge.live_tensor_count())


def resealed(descriptor, at, value):
    """The descriptor with byte `at` set to `value` and its checksum made right again (FNV-1a 64
    of bytes 0-503 followed by 0xff, as the format says): a well-formed descriptor that lies."""
    data = bytearray(descriptor)
    data[at] = value
    checksum = 0xcbf29ce484222325
    for byte in bytes(data[:504]) + b"\xff":
        checksum = ((checksum ^ byte) * 0x100000001b3) % (1 << 64)
    data[504:] = checksum.to_bytes(8, "little")
    return bytes(data)


def child_tries(descriptors, results):
    import tensorbridge

    outcomes = []
    for descriptor in descriptors:
        try:
            tensorbridge.from_shared(descriptor)
            outcomes.append("imported")
        except tensorbridge.TensorBridgeError as error:
            outcomes.append(f"{type(error).__name__}: {error}")
    results.put(outcomes)


def test_a_gpu_the_importer_does_not_see_and_a_tensor_outside_its_allocation_are_refused(torch):
    x = torch.zeros(64, device="cuda")
    descriptor = tb.as_tensor(x).share()
    lying = [resealed(descriptor, 24, descriptor[24] ^ 0xff),  # another GPU's UUID
             resealed(descriptor, 175, 0x10)]  # an offset far beyond the allocation
    process, results = spawn(child_tries, lying)
    uuid, outside = answer(results, process)
    process.join(timeout=60)
    assert uuid.startswith("InvalidArgumentError") and "not a device of this process" in uuid, uuid
    assert outside.startswith("InvalidArgumentError") and "-byte allocation" in outside, outside
    tb.revoke_shared(descriptor)
