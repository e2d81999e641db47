"""Concurrency stress for the Python package: 8 threads, with gc.collect() churn from a ninth,
over as_tensor / views / reformat / DLPack round trips with NumPy. The process's resident memory
must stay flat (within a tolerance) and the live handle count must come back to where it was.

TB_PY_STRESS_ITERATIONS sets the iterations per thread (default 150, about a second or two;
the recorded run in docs/RELIABILITY.md used 20000)."""
import gc
import os
import threading

import numpy as np

import tensorbridge as tb

THREADS = 8
ITERATIONS = int(os.environ.get("TB_PY_STRESS_ITERATIONS", "150"))
# Allowed RSS growth between the warm-up and the end: allocator caches and fragmentation, not a
# leak proportional to the work (one leaked 96-byte image per iteration would exceed it at the
# recorded size).
RSS_TOLERANCE_BYTES = 16 << 20


def rss_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def one_iteration(seed):
    image = np.arange(24, dtype=np.float32).reshape(3, 4, 2) + seed
    t = tb.as_tensor(image, "HWC")
    planar = t.permute("CHW")
    flipped = t[::-1]
    packed = tb.reformat(planar, "HWC")
    assert np.array_equal(np.asarray(packed.numpy()), image)
    assert np.array_equal(np.from_dlpack(flipped), image[::-1])
    back = tb.from_dlpack(np.ascontiguousarray(image[:, 1]))
    assert back.shape == (3, 2)
    converted = tb.convert(planar, "CHW", dtype="float32", scale=2.0, offset=1.0)
    assert np.allclose(np.asarray(converted.numpy()), image.transpose(2, 0, 1) * 2 + 1)


def run_threads(iterations):
    errors = []
    stop = threading.Event()

    def worker(index):
        try:
            for i in range(iterations):
                one_iteration(index * 100000 + i)
        except BaseException as error:  # noqa: BLE001 (reported below)
            errors.append(error)

    def collector():
        while not stop.is_set():
            gc.collect()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    churn = threading.Thread(target=collector)
    churn.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    churn.join()
    assert not errors, errors[:3]


def test_eight_threads_with_gc_churn_keep_memory_and_handles_flat():
    gc.collect()
    baseline_handles = tb.live_tensor_count()
    run_threads(max(ITERATIONS // 10, 5))  # warm-up: caches, lazy imports, allocator arenas
    gc.collect()
    warm_rss = rss_bytes()
    run_threads(ITERATIONS)
    gc.collect()
    assert tb.live_tensor_count() == baseline_handles
    growth = rss_bytes() - warm_rss
    assert growth < RSS_TOLERANCE_BYTES, f"RSS grew by {growth} bytes over {THREADS}x{ITERATIONS}"
