"""NV12 video frames -> normalised float32 NCHW model input, side by side in one process (H100
figures in bench/RESULTS.md): tensorbridge.convert_frames (one kernel, into a preallocated batch),
the CV-CUDA 0.19 chain (cvtcolor -> convertto -> normalize -> reformat; skipped with the reason where
cvcuda is not importable) and the PyTorch expression of the same equations, against the same-run
device copy of (bytes read + bytes written) / 2 — the floor for a pass that reads its input once
and writes its output once. Ratio = copy floor / time (1.0 = copy speed). Also the single 1080p
frame launched back to back (1000 calls, host cost included when it exceeds the GPU's).

    python3 bench/frames.py        # needs torch; cvcuda optional
"""
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
import torch  # noqa: E402

import tensorbridge as tb  # noqa: E402

try:
    import cvcuda  # noqa: E402
except ImportError as error:  # noqa: F841
    cvcuda = None
    CVCUDA_MISSING = str(error)

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
SCALE, OFFSET = [1 / (255 * s) for s in STD], [-m / s for m, s in zip(MEAN, STD)]
CASES = [(1, 1080, 1920), (8, 1080, 1920), (64, 1080, 1920), (32, 720, 1280)]


def median_ms(work, stream, warmup=3, iterations=20):
    with torch.cuda.stream(stream):
        for _ in range(warmup):
            work()
        times = []
        for _ in range(iterations):
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record(stream)
            work()
            stop.record(stream)
            stop.synchronize()
            times.append(start.elapsed_time(stop))
    return statistics.median(times)


def torch_expression(nv12, h, w, out):
    """The BT.709 limited-range equations, chroma repeated per 2x2 block, normalised, in PyTorch."""
    y = nv12[:, :h].float()
    uv = nv12[:, h:].view(nv12.shape[0], h // 2, w // 2, 2).float()
    u = uv[..., 0].repeat_interleave(2, 1).repeat_interleave(2, 2) - 128
    v = uv[..., 1].repeat_interleave(2, 1).repeat_interleave(2, 2) - 128
    yl = (y - 16) * (255 / 219)
    r = yl + v * (255 / 224 * 1.5748)
    g = yl - u * (255 / 224 * 0.1873) - v * (255 / 224 * 0.4681)
    b = yl + u * (255 / 224 * 1.8556)
    rgb = torch.stack([r, g, b], 1).clamp_(0, 255)
    mean = torch.tensor(MEAN, device="cuda").view(1, 3, 1, 1) * 255
    std = torch.tensor(STD, device="cuda").view(1, 3, 1, 1) * 255
    torch.sub(rgb, mean, out=out).div_(std)


def cvcuda_chain(nv12_cv, base, scale):
    rgb = cvcuda.cvtcolor(nv12_cv, cvcuda.ColorConversion.YUV2RGB_NV12)
    as_float = cvcuda.convertto(rgb, cvcuda.Type.F32, scale=1 / 255)
    normalised = cvcuda.normalize(as_float, base=base, scale=scale, flags=cvcuda.NormalizeFlags.SCALE_IS_STDDEV)
    return cvcuda.reformat(normalised, "NCHW")


def main():
    print(f"device: {torch.cuda.get_device_name(0)}; torch {torch.__version__}; tensorbridge {tb.__version__}; "
          f"cvcuda {cvcuda.__version__ if cvcuda else 'not importable: ' + CVCUDA_MISSING}\n")
    print("| NV12 -> f32 NCHW normalised | copy floor (µs) | tensorbridge µs (ratio) | CV-CUDA chain µs (ratio) "
          "| PyTorch µs (ratio) | tb speed-up vs CV-CUDA / PyTorch |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    stream = torch.cuda.Stream()
    for n, h, w in CASES:
        nv12 = torch.randint(16, 236, (n, h * 3 // 2, w), dtype=torch.uint8, device="cuda")
        out = torch.empty(n, 3, h, w, dtype=torch.float32, device="cuda")
        moved = nv12.numel() + out.numel() * 4
        a = torch.empty(moved // 2, dtype=torch.uint8, device="cuda")
        b = torch.empty_like(a)
        floor = median_ms(lambda: b.copy_(a), stream) * 1000
        frames, target = tb.as_tensor(nv12), tb.as_tensor(out, "NCHW")
        ours = median_ms(lambda: tb.convert_frames(frames, scale=SCALE, offset=OFFSET, out=target, stream=stream),
                         stream) * 1000
        theirs = median_ms(lambda: torch_expression(nv12, h, w, out), stream) * 1000
        cv = "skipped"
        cv_us = None
        if cvcuda is not None:
            try:
                nv12_cv = cvcuda.as_tensor(nv12.view(n, h * 3 // 2, w, 1), "NHWC")
                base = cvcuda.as_tensor(torch.tensor(MEAN, device="cuda").view(1, 1, 1, 3), "NHWC")
                scale = cvcuda.as_tensor(torch.tensor(STD, device="cuda").view(1, 1, 1, 3), "NHWC")
                cv_us = median_ms(lambda: cvcuda_chain(nv12_cv, base, scale), stream) * 1000
                cv = f"{cv_us:.1f} ({floor / cv_us:.2f})"
            except Exception as error:  # report, do not hide: the table says why
                cv = f"failed: {type(error).__name__}: {str(error)[:60]}"
        speedup = f"{cv_us / ours:.1f}× / {theirs / ours:.1f}×" if cv_us else f"— / {theirs / ours:.1f}×"
        print(f"| {n}×{h}×{w} | {floor:.1f} | {ours:.1f} ({floor / ours:.2f}) | {cv} | {theirs:.1f} ({floor / theirs:.2f}) "
              f"| {speedup} |")
        del nv12, out, a, b
        torch.cuda.empty_cache()
    # One 1080p frame, 1000 calls back to back: the per-call cost a decode loop sees.
    nv12 = torch.randint(16, 236, (1620, 1920), dtype=torch.uint8, device="cuda")
    out = tb.as_tensor(torch.empty(3, 1080, 1920, device="cuda"), "CHW")
    frame = tb.as_tensor(nv12)
    for _ in range(20):
        tb.convert_frames(frame, scale=SCALE, offset=OFFSET, out=out, stream=stream)
    runs = []
    for _ in range(3):
        stream.synchronize()
        start = time.perf_counter()
        for _ in range(1000):
            tb.convert_frames(frame, scale=SCALE, offset=OFFSET, out=out, stream=stream)
        stream.synchronize()
        runs.append((time.perf_counter() - start) * 1000)
    print(f"\n1×1080p NV12 -> f32 CHW, 1000 back-to-back convert_frames calls: {statistics.median(runs):.2f} µs per "
          f"call (median of 3 runs: {', '.join(f'{r:.2f}' for r in runs)})")


if __name__ == "__main__":
    main()
