"""PyTorch's equivalents of bench/layout_bench.cpp's cases, timed the same way in the same run
(median of CUDA-event-timed iterations after warm-up, random inputs), against a device-to-device
copy of the same bytes. Prints a markdown table.

    python3 bench/compare_torch.py
"""
import statistics
import time

import torch


def median_ms(work, warmup=3, iterations=15, stream=None, calls=1, lead_cycles=0):
    """Median milliseconds per call of ``work`` between CUDA events on ``stream`` (None: the
    current stream), after ``warmup`` untimed calls. Each timed interval holds ``calls`` calls in a
    row (its time divided by ``calls``), so that calls much shorter than a millisecond are timed
    back to back; with ``lead_cycles`` the GPU first spins that many clock cycles
    (``torch.cuda._sleep``) before the start event, so that the host's cost of launching the first
    call is hidden behind the spin instead of timed as GPU idle time. The defaults time one call
    per interval, as the layout tables in bench/RESULTS.md were."""
    with torch.cuda.stream(stream):
        for _ in range(warmup):
            work()
        times = []
        for _ in range(iterations):
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            if lead_cycles:
                torch.cuda._sleep(lead_cycles)
            start.record()
            for _ in range(calls):
                work()
            stop.record()
            stop.synchronize()
            times.append(start.elapsed_time(stop) / calls)
    return statistics.median(times)


def back_to_back_us(work, stream, calls=1000, runs=3):
    """Per-call time of ``calls`` launches in a row (host cost included where it exceeds the GPU's),
    median of ``runs``; also the runs' values."""
    for _ in range(20):
        work()
    times = []
    for _ in range(runs):
        stream.synchronize()
        start = time.perf_counter()
        for _ in range(calls):
            work()
        stream.synchronize()
        times.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(times), times


def copy_gbps(nbytes):
    a = torch.randint(0, 256, (nbytes,), dtype=torch.uint8, device="cuda")
    b = torch.empty_like(a)
    ms = median_ms(lambda: b.copy_(a))
    return 2 * nbytes / (ms * 1e6)


def random_tensor(shape, dtype):
    if dtype == torch.uint8:
        return torch.randint(0, 256, shape, dtype=dtype, device="cuda")
    return torch.randn(shape, dtype=dtype, device="cuda")


def main():
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}\n")
    print("| PyTorch case | MB moved | time (ms) | GB/s | copy GB/s | ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    shapes = [(64, 1080, 1920, 3), (256, 224, 224, 3), (32, 512, 512, 64), (64, 1080, 1920, 4)]
    for nhwc in shapes:
        for dtype, label in ((torch.uint8, "u8"), (torch.float32, "f32")):
            for to_nchw in (True, False):
                src = random_tensor(nhwc if to_nchw else (nhwc[0], nhwc[3], nhwc[1], nhwc[2]), dtype)
                order = (0, 3, 1, 2) if to_nchw else (0, 2, 3, 1)
                dst = torch.empty_like(src.permute(order), memory_format=torch.contiguous_format)
                ms = median_ms(lambda: dst.copy_(src.permute(order)))
                nbytes = src.numel() * src.element_size()
                gbps = 2 * nbytes / (ms * 1e6)
                copy = copy_gbps(nbytes)
                name = f"{'NHWC->NCHW' if to_nchw else 'NCHW->NHWC'} {label} {'x'.join(map(str, nhwc))}"
                print(f"| {name} permute().contiguous() | {2 * nbytes / 1e6:.1f} | {ms:.4f} | {gbps:.0f} | {copy:.0f} | {gbps / copy:.3f} |")
                del src, dst
                torch.cuda.empty_cache()
    mean = torch.tensor([123.675, 116.28, 103.53], device="cuda").view(1, 3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375], device="cuda").view(1, 3, 1, 1)
    for nhwc in ((64, 1080, 1920, 3), (256, 224, 224, 3)):
        src = random_tensor(nhwc, torch.uint8)
        ms = median_ms(lambda: (src.permute(0, 3, 1, 2).float() - mean) / std)
        n = src.numel()
        copy = copy_gbps(4 * n)
        gbps = 5 * n / (ms * 1e6)
        print(f"| normalize u8 NHWC->f32 NCHW {'x'.join(map(str, nhwc))} (x.permute().float()-mean)/std | {5 * n / 1e6:.1f} | {ms:.4f} | {gbps:.0f} | {copy:.0f} | {gbps / copy:.3f} |")
        del src
        torch.cuda.empty_cache()
    image = random_tensor((1080, 1920, 3), torch.uint8)
    out = torch.empty((3, 1080, 1920), dtype=torch.uint8, device="cuda")
    for _ in range(20):
        out.copy_(image.permute(2, 0, 1))
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(1000):
        out.copy_(image.permute(2, 0, 1))
    stop.record()
    stop.synchronize()
    print(f"\n| PyTorch latency case | µs per call (1000 back-to-back) |\n| --- | ---: |\n| HWC->CHW u8 1080x1920x3 | {start.elapsed_time(stop):.2f} |")


if __name__ == "__main__":
    main()
