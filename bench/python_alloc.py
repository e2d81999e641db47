"""Host cost per call of the allocating operations (allocation issue), side by side in one process
with PyTorch and CuPy, on one 1080p uint8 HWC image on the GPU: reformat_into (output given)
beside reformat / convert / empty that allocate their output, with the built-in pool and with
PyTorch's caching allocator installed; then the host time of releasing a tensor while a PyTorch
side stream is busy for a second. Median of 15 repeats of 1000 back-to-back calls (the GPU keeps
up; the queue is drained between repeats). Prints markdown tables.

    python3 bench/python_alloc.py       # on a GPU machine with PyTorch (CuPy optional)
"""
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python" / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import tensorbridge as tb  # noqa: E402
import python_wrap as timing  # noqa: E402  (the same timing loop)


def median_us(call, sync):
    return timing.median_us(call, calls=1000, repeats=15, sync=sync)


def main():
    import torch

    sync = torch.cuda.synchronize
    x = torch.randint(0, 255, (1080, 1920, 3), dtype=torch.uint8, device="cuda")
    img = tb.as_tensor(x, "HWC")
    out = tb.empty((3, 1080, 1920), "uint8", "CHW", device="cuda")
    scale, offset = [1 / 58.4, 1 / 57.1, 1 / 57.4], [-2.1, -2.0, -1.8]
    rows = [
        ("tb.reformat_into(out, img) (output given)", lambda: tb.reformat_into(out, img)),
        ("tb.reformat(img, 'CHW') (allocates)", lambda: tb.reformat(img, "CHW")),
        ("tb.convert(img, 'CHW', 'float32', scale, offset) (allocates)",
         lambda: tb.convert(img, "CHW", "float32", scale, offset)),
        ("tb.empty((3,1080,1920), 'float32', device='cuda') then drop",
         lambda: tb.empty((3, 1080, 1920), "float32", "CHW", device="cuda")),
    ]
    results = [(name, median_us(call, sync)) for name, call in rows]
    tb.set_allocator(tb.TorchAllocator())
    try:
        results += [(name + " [TorchAllocator]", median_us(call, sync)) for name, call in rows[1:3]]
    finally:
        tb.set_allocator(None)
    results.append(("torch: x.permute(2, 0, 1).contiguous()",
                    median_us(lambda: x.permute(2, 0, 1).contiguous(), sync)))
    results.append(("torch: torch.empty((3,1080,1920), float32) then drop",
                    median_us(lambda: torch.empty((3, 1080, 1920), device="cuda"), sync)))
    try:
        import cupy

        xc = cupy.asarray(x)
        results.append(("cupy: cupy.ascontiguousarray(xc.transpose(2, 0, 1))",
                         median_us(lambda: cupy.ascontiguousarray(xc.transpose(2, 0, 1)), sync)))
    except ImportError:
        results.append(("cupy: not installed", float("nan")))

    into = results[0][1]
    permute = next(us for name, us in results if name.startswith("torch: x.permute"))
    print("| call (1080p uint8 HWC image) | host µs per call | ÷ reformat_into | ÷ torch permute().contiguous() |")
    print("| --- | ---: | ---: | ---: |")
    for name, us in results:
        print(f"| {name} | {us:.2f} | {us / into:.2f} | {us / permute:.2f} |")

    from gpu_required import busy_stream as busy_side_stream

    print()
    print("| release while a PyTorch side stream is busy for 1 s | host µs |")
    print("| --- | ---: |")
    for label, make in [
        ("tb.reformat output (built-in pool)", lambda: tb.reformat(img, "CHW")),
        ("tb.empty synchronous allocation", lambda: tb.empty((3, 1080, 1920), "uint8", "CHW", device="cuda")),
        ("torch.empty (caching allocator)", lambda: torch.empty((3, 1080, 1920), device="cuda")),
    ]:
        samples = []
        for _ in range(5):
            tensor = make()
            sync()
            side = busy_side_stream(torch, 1.0)
            start = time.perf_counter_ns()
            del tensor
            samples.append((time.perf_counter_ns() - start) / 1000)
            assert not side.query(), "side stream finished during the measurement"
            sync()
        print(f"| {label} | {statistics.median(samples):.1f} (max {max(samples):.1f}) |")


if __name__ == "__main__":
    main()
