"""NV12 video frames -> normalised float32 NCHW model input, side by side in one process (H100
figures in bench/RESULTS.md): tensorbridge.convert_frames (one kernel, into a preallocated batch),
the CV-CUDA 0.19 chain (cvtcolor -> convertto -> normalize -> reformat; skipped with the reason where
cvcuda is not importable) and the PyTorch expression of the same equations, against the same-run
device copy of (bytes read + bytes written) / 2 — the floor for a pass that reads its input once
and writes its output once. Ratio = copy floor / time (1.0 = copy speed). Also the single 1080p
frame launched back to back (1000 calls, host cost included when it exceeds the GPU's).

    python3 bench/frames.py              # needs torch; cvcuda optional
    python3 bench/frames.py --ours-only  # tensorbridge rows alone (tuning: TENSORBRIDGE_FRAME_KERNEL)
"""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
import torch  # noqa: E402

import tensorbridge as tb  # noqa: E402
import compare_torch  # noqa: E402  (bench/ is the script's directory)

try:
    import cvcuda  # noqa: E402
except ImportError as error:  # noqa: F841
    cvcuda = None
    CVCUDA_MISSING = str(error)

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
SCALE, OFFSET = [1 / (255 * s) for s in STD], [-m / s for m, s in zip(MEAN, STD)]
CASES = [(1, 1080, 1920), (8, 1080, 1920), (64, 1080, 1920), (32, 720, 1280)]


def median_ms(work, stream):
    """``compare_torch.median_ms`` on ``stream``, 20 timed calls."""
    return compare_torch.median_ms(work, iterations=20, stream=stream)


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


def cvcuda_chain(nv12_cv, base, scale, stream):
    """CV-CUDA's four operators, each on ``stream`` (the timed one: CV-CUDA's own current stream
    would run them outside the events)."""
    rgb = cvcuda.cvtcolor(nv12_cv, cvcuda.ColorConversion.YUV2RGB_NV12, stream=stream)
    as_float = cvcuda.convertto(rgb, cvcuda.Type.F32, scale=1 / 255, stream=stream)
    normalised = cvcuda.normalize(as_float, base=base, scale=scale, flags=cvcuda.NormalizeFlags.SCALE_IS_STDDEV,
                                  stream=stream)
    return cvcuda.reformat(normalised, "NCHW", stream=stream)


def cvcuda_stream(stream):
    """The torch stream as a CV-CUDA stream (cvcuda.as_stream takes the object or its handle)."""
    for argument in (stream, stream.cuda_stream):
        try:
            return cvcuda.as_stream(argument)
        except Exception:  # noqa: BLE001 - try the next form
            continue
    print("cvcuda.as_stream accepted neither the torch stream nor its handle: CV-CUDA rows skipped")
    return None


def ours_only_rows(stream):
    """Other outputs of the same frames (tuning rows): uint8 NHWC and float16 NCHW."""
    print("\n| NV12 -> other outputs (tensorbridge) | copy floor (µs) | tensorbridge µs (ratio) |")
    print("| --- | ---: | ---: |")
    for n, h, w, layout, dtype in [(8, 1080, 1920, "NHWC", torch.uint8), (8, 1080, 1920, "NCHW", torch.float16),
                                   (64, 1080, 1920, "NHWC", torch.uint8)]:
        nv12 = torch.randint(16, 236, (n, h * 3 // 2, w), dtype=torch.uint8, device="cuda")
        shape = (n, 3, h, w) if layout == "NCHW" else (n, h, w, 3)
        out = torch.empty(shape, dtype=dtype, device="cuda")
        moved = nv12.numel() + out.numel() * out.element_size()
        a = torch.empty(moved // 2, dtype=torch.uint8, device="cuda")
        b = torch.empty_like(a)
        floor = median_ms(lambda: b.copy_(a), stream) * 1000
        frames, target = tb.as_tensor(nv12), tb.as_tensor(out, layout)
        ours = median_ms(lambda: tb.convert_frames(frames, out=target, stream=stream), stream) * 1000
        print(f"| {n}×{h}×{w} -> {layout} {str(dtype).split('.')[-1]} | {floor:.1f} | {ours:.1f} ({floor / ours:.2f}) |")
        del nv12, out, a, b
        torch.cuda.empty_cache()


def main():
    ours_only = "--ours-only" in sys.argv
    print(f"device: {torch.cuda.get_device_name(0)}; torch {torch.__version__}; tensorbridge {tb.__version__}; "
          f"cvcuda {cvcuda.__version__ if cvcuda else 'not importable: ' + CVCUDA_MISSING}; "
          f"TENSORBRIDGE_FRAME_KERNEL={os.environ.get('TENSORBRIDGE_FRAME_KERNEL', '(default)')}\n")
    print("| NV12 -> f32 NCHW normalised | copy floor (µs) | tensorbridge µs (ratio) | CV-CUDA chain µs (ratio) "
          "| PyTorch µs (ratio) | tb speed-up vs CV-CUDA / PyTorch |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    stream = torch.cuda.Stream()
    cv_stream = cvcuda_stream(stream) if cvcuda is not None and not ours_only else None
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
        theirs = None if ours_only else median_ms(lambda: torch_expression(nv12, h, w, out), stream) * 1000
        cv, cv_us = "skipped", None
        if cv_stream is not None:
            try:
                nv12_cv = cvcuda.as_tensor(nv12.view(n, h * 3 // 2, w, 1), "NHWC")
                base = cvcuda.as_tensor(torch.tensor(MEAN, device="cuda").view(1, 1, 1, 3), "NHWC")
                scale = cvcuda.as_tensor(torch.tensor(STD, device="cuda").view(1, 1, 1, 3), "NHWC")
                cv_us = median_ms(lambda: cvcuda_chain(nv12_cv, base, scale, cv_stream), stream) * 1000
                cv = f"{cv_us:.1f} ({floor / cv_us:.2f})"
            except Exception as error:  # report, do not hide: the table says why
                cv = f"failed: {type(error).__name__}: {str(error)[:60]}"
        torch_cell = "skipped" if theirs is None else f"{theirs:.1f} ({floor / theirs:.2f})"
        speedup = " / ".join("—" if t is None else f"{t / ours:.1f}×" for t in (cv_us, theirs))
        print(f"| {n}×{h}×{w} | {floor:.1f} | {ours:.1f} ({floor / ours:.2f}) | {cv} | {torch_cell} | {speedup} |")
        del nv12, out, a, b
        torch.cuda.empty_cache()
    # One 1080p frame, 1000 calls back to back: the per-call cost a decode loop sees, beside a
    # device copy of the same bytes (read + written) launched the same way.
    nv12 = torch.randint(16, 236, (1620, 1920), dtype=torch.uint8, device="cuda")
    planar = torch.empty(3, 1080, 1920, device="cuda")
    out, frame = tb.as_tensor(planar, "CHW"), tb.as_tensor(nv12)
    a = torch.empty((nv12.numel() + planar.numel() * 4) // 2, dtype=torch.uint8, device="cuda")
    b = torch.empty_like(a)
    with torch.cuda.stream(stream):
        copy_us, _ = compare_torch.back_to_back_us(lambda: b.copy_(a), stream)
    ours_us, runs = compare_torch.back_to_back_us(
        lambda: tb.convert_frames(frame, scale=SCALE, offset=OFFSET, out=out, stream=stream), stream)
    print(f"\n1×1080p NV12 -> f32 CHW, 1000 calls back to back: {ours_us:.2f} µs per call (runs: "
          f"{', '.join(f'{r:.2f}' for r in runs)}); a device copy of the same bytes the same way: {copy_us:.2f} µs "
          f"(ratio {copy_us / ours_us:.2f})")
    ours_only_rows(stream)


if __name__ == "__main__":
    main()
