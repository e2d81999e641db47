"""The layout kernels' benchmark matrix, with PyTorch and CuPy timed in the same process on the same
stream: every element size (uint8, float16, float32, float64, complex128) x channels 1, 2, 3, 4,
8, 64 x NHWC->NCHW and NCHW->NHWC, at a large size (>= 256 MiB a side) and a small batch (about
40 MB a side); rows pitched to 256 bytes on the source or the destination (as NVCV and video
decoders lay them out); rank 5 NCDHW <-> NDHWC; the fused uint8 NHWC -> normalised float32 NCHW
(also from BGR to RGB in the same pass);
float8 conversions through tb_convert's affine; one 1080p HWC -> CHW launched 1000 times back to back.

Ratio = (bytes read + bytes written) / time, divided by the same-run device-to-device copy
bandwidth (torch's copy_ of (read + written) / 2 bytes, i.e. cudaMemcpyAsync, timed the same
way just before). Each call is timed by CUDA events around calls launched back to back behind a
GPU spin (compare_torch.median_ms with calls and lead_cycles), so Python's launch cost is not
counted as GPU time; each ratio is the median of --reps repetitions (default 3) of that, each
repetition measuring the copy again. Every tensorbridge output is checked against PyTorch's before
it is timed (reformat: equal; float8 and the float8 decodes: equal bytes; the normalisation:
within 2e-6, since PyTorch's (x - mean) / std rounds twice where tb_convert's fma rounds once); a
mismatch or an error makes the script exit with status 1 after the tables. The kernel column is
tensorbridge.reformat_plan / convert_plan: the kernel the library chose for the case.

    python3 bench/layout_matrix.py                       # everything (sized for < 4 minutes on one H100)
    python3 bench/layout_matrix.py --quick               # small sizes only, 2 repetitions
    python3 bench/layout_matrix.py --cases 'pitched|fp8'  # cases whose "group: name" matches
    python3 bench/layout_matrix.py --list                # the cases; needs no GPU or torch

Needs PyTorch with a CUDA GPU; CuPy is optional (its column then says why it is missing). Set
TENSORBRIDGE_LIBRARY to the library to measure (e.g. $PWD/.prebuilt/libtensorbridge.so).
"""
import argparse
import datetime
import math
import re
import statistics
import sys
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

ITEM = {"uint8": 1, "float16": 2, "bfloat16": 2, "float32": 4, "float64": 8, "complex128": 16,
        "float8_e4m3fn": 1, "float8_e5m2": 1}
SHORT = {"uint8": "u8", "float16": "f16", "bfloat16": "bf16", "float32": "f32", "float64": "f64",
         "complex128": "c128", "float8_e4m3fn": "e4m3fn", "float8_e5m2": "e5m2"}
MATRIX_DTYPES = ("uint8", "float16", "float32", "float64", "complex128")
CHANNELS = (1, 2, 3, 4, 8, 64)
LARGE = 1 << 28        # bytes of the larger side, at least: 256 MiB
SMALL = 40_000_000     # about 40 MB a side
TARGET_FLOOR = 32 << 20  # cases whose larger side is below 32 MiB have no bandwidth target
PITCH = 256
MEAN, STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
LEAD_CYCLES = 200_000  # about 0.1 ms of GPU spin before each timed interval


@dataclass(frozen=True)
class Case:
    """One row: ``src`` (shape in ``src_layout``) written in ``dst_layout`` as ``dst_dtype``."""

    group: str
    name: str
    kind: str  # "reformat", "normalize" or "convert"
    src_dtype: str
    dst_dtype: str
    src_layout: str
    dst_layout: str
    shape: tuple
    pitched: str = ""  # "src" or "dst": that side's rows (the dimension before W) padded to PITCH
    scale: float = 1.0
    target: float = 0.97
    channel_order: tuple = ()  # normalize: output channel k reads source channel channel_order[k]

    @property
    def order(self):
        """The source dimension of each destination dimension (the identity without layouts)."""
        if not self.dst_layout:
            return tuple(range(len(self.shape)))
        return tuple(self.src_layout.index(label) for label in self.dst_layout)

    @property
    def dst_shape(self):
        return tuple(self.shape[d] for d in self.order)

    @property
    def count(self):
        return math.prod(self.shape)

    @property
    def read(self):
        return self.count * ITEM[self.src_dtype]

    @property
    def written(self):
        return self.count * ITEM[self.dst_dtype]

    @property
    def has_target(self):
        return max(self.read, self.written) >= TARGET_FLOOR

    @property
    def title(self):
        return f"{self.group}: {self.name}"


def batch_for(per_item_bytes, size):
    """Batch extent so that the batch holds ``size`` bytes: at least ``size`` for the large size,
    the nearest for the small one."""
    if size == LARGE:
        return max(1, -(-size // per_item_bytes))
    return max(1, round(size / per_item_bytes))


def sizes(quick):
    return ((SMALL, "small"),) if quick else ((LARGE, "large"), (SMALL, "small"))


def matrix_cases(quick):
    cases = []
    for size, label in sizes(quick):
        side = 512 if size == LARGE else 224
        for dtype in MATRIX_DTYPES:
            for c in CHANNELS:
                n = batch_for(side * side * c * ITEM[dtype], size)
                nhwc = (n, side, side, c)
                for to_nchw in (True, False):
                    shape = nhwc if to_nchw else (n, c, side, side)
                    src, dst = ("NHWC", "NCHW") if to_nchw else ("NCHW", "NHWC")
                    name = f"{src}->{dst} {SHORT[dtype]} C={c} {'x'.join(map(str, shape))}"
                    cases.append(Case(f"matrix {label}", name, "reformat", dtype, dtype, src, dst, shape))
    return cases


def row_bytes(shape, layout, dtype):
    """Bytes of one row (the dimensions after H) of a packed tensor."""
    return math.prod(shape[layout.index("H") + 1:]) * ITEM[dtype]


def pitched_cases(quick):
    cases = []
    for size, label in sizes(quick):
        side = 1000  # 1000-pixel rows: a 256-byte pitch pads them in every variant below
        for dtype in ("uint8", "float32"):
            for c in (3, 4):
                n = batch_for(side * side * c * ITEM[dtype], size)
                for to_nchw in (True, False):
                    src, dst = ("NHWC", "NCHW") if to_nchw else ("NCHW", "NHWC")
                    shape = (n, side, side, c) if to_nchw else (n, c, side, side)
                    for side_pitched in ("src", "dst"):
                        case = Case(f"pitched {label}", "", "reformat", dtype, dtype, src, dst, shape, side_pitched,
                                    target=0.95)
                        layout, extents = (src, shape) if side_pitched == "src" else (dst, case.dst_shape)
                        row = row_bytes(extents, layout, dtype)
                        assert row % PITCH, f"{layout} rows of {row} bytes need no padding"
                        pitch = -(-row // PITCH) * PITCH
                        name = (f"{src}->{dst} {SHORT[dtype]} C={c} {'x'.join(map(str, shape))}, {side_pitched} rows "
                                f"{row} B at pitch {pitch} B")
                        cases.append(replace(case, name=name))
    return cases


def rank5_cases(quick):
    cases = []
    for size, label in sizes(quick):
        d, side = (16, 128) if size == LARGE else (8, 112)
        for dtype in ("uint8", "float16", "float32"):
            for c in (3, 64):
                n = batch_for(d * side * side * c * ITEM[dtype], size)
                for to_ncdhw in (True, False):
                    src, dst = ("NDHWC", "NCDHW") if to_ncdhw else ("NCDHW", "NDHWC")
                    shape = (n, d, side, side, c) if to_ncdhw else (n, c, d, side, side)
                    name = f"{src}->{dst} {SHORT[dtype]} C={c} {'x'.join(map(str, shape))}"
                    cases.append(Case(f"rank 5 {label}", name, "reformat", dtype, dtype, src, dst, shape))
    return cases


def normalize_cases(quick):
    shapes = [((256, 224, 224, 3), 0.92)] if quick else [((64, 1080, 1920, 3), 0.95), ((256, 224, 224, 3), 0.92)]
    orders = [((), "u8 NHWC->f32 NCHW"), ((2, 1, 0), "u8 BGR NHWC->f32 RGB NCHW")]
    return [Case("normalize", f"{label} {'x'.join(map(str, shape))} (mean/std per channel)", "normalize",
                 "uint8", "float32", "NHWC", "NCHW", shape, target=target, channel_order=order)
            for order, label in orders for shape, target in shapes]


def float8_cases(quick):
    pairs = [(src, dst, 1.0) for src in ("uint8", "float16", "bfloat16", "float32")
             for dst in ("float8_e4m3fn", "float8_e5m2")]
    pairs += [(src, dst, 1.0) for src in ("float8_e4m3fn", "float8_e5m2") for dst in ("float16", "bfloat16", "float32")]
    pairs += [("float32", "float8_e4m3fn", 0.5), ("bfloat16", "float8_e4m3fn", 0.5), ("float8_e4m3fn", "bfloat16", 2.0),
              ("float8_e4m3fn", "float32", 2.0)]
    cases = []
    for size, label in sizes(quick):
        for src, dst, scale in pairs:
            count = batch_for(max(ITEM[src], ITEM[dst]), size)
            affine = "" if scale == 1.0 else f", scale {scale}"
            name = f"{SHORT[src]}->{SHORT[dst]} {count} elements{affine}"
            cases.append(Case(f"float8 {label}", name, "convert", src, dst, "", "", (count,), scale=scale, target=0.95))
    return cases


def all_cases(quick):
    return (matrix_cases(quick) + pitched_cases(quick) + rank5_cases(quick) + normalize_cases(quick)
            + float8_cases(quick))


LATENCY_TITLE = "latency: HWC->CHW u8 1080x1920x3, 1000 calls back to back"
LATENCY_TARGET_US = 6.0


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes only, 2 repetitions")
    parser.add_argument("--cases", metavar="REGEX", help="only cases whose 'group: name' matches (re.search, any case)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions per case (default 3; --quick: 2)")
    parser.add_argument("--iterations", type=int, default=15, help="timed intervals per measurement (default 15)")
    parser.add_argument("--no-cupy", action="store_true", help="leave CuPy out")
    parser.add_argument("--list", action="store_true", help="print the selected cases and exit (no GPU needed)")
    arguments = parser.parse_args(argv)
    arguments.reps = arguments.reps if arguments.reps is not None else (2 if arguments.quick else 3)
    if arguments.reps < 2:
        parser.error("--reps must be at least 2: each ratio is a median over repetitions")
    if arguments.iterations < 1:
        parser.error("--iterations must be at least 1")
    try:
        arguments.pattern = re.compile(arguments.cases, re.IGNORECASE) if arguments.cases else None
    except re.error as error:
        parser.error(f"--cases {arguments.cases!r}: {error}")
    return arguments


def selected(arguments):
    cases = [c for c in all_cases(arguments.quick) if not arguments.pattern or arguments.pattern.search(c.title)]
    latency = not arguments.pattern or bool(arguments.pattern.search(LATENCY_TITLE))
    return cases, latency


def list_cases(cases, latency):
    print("| case | MB moved | target |\n| --- | ---: | ---: |")
    for c in cases:
        print(f"| {c.title} | {(c.read + c.written) / 1e6:.1f} | {c.target if c.has_target else '—'} |")
    if latency:
        print(f"| {LATENCY_TITLE} | 12.4 | ≤ {LATENCY_TARGET_US} µs |")
    print(f"\n{len(cases) + latency} case(s)")


# ---- running (needs torch and a GPU) -----------------------------------------------------------

class Runner:
    """Builds each case's tensors, checks tensorbridge against PyTorch, times the three libraries
    and the copy baseline, and prints one table per group."""

    def __init__(self, arguments, torch, tb, compare_torch, cupy, cupy_missing):
        self.args, self.torch, self.tb, self.compare, self.cupy = arguments, torch, tb, compare_torch, cupy
        self.cupy_missing = cupy_missing
        self.stream = torch.cuda.Stream()
        self.handle = self.stream.cuda_stream
        self.cupy_stream = cupy.cuda.ExternalStream(self.handle) if cupy else None
        self.lead = LEAD_CYCLES if hasattr(torch.cuda, "_sleep") else 0
        self.failures, self.misses = [], []

    # -- tensors --
    def random(self, shape, dtype):
        """Random values of ``dtype``. The 16- and 8-bit floats are normal(0, 64) (finite in
        float8_e4m3fn, whose largest value is 448, but for odds of 1e-12) with no value near 0:
        none rounds to -0.0, which tb_convert's affine (x * 1 + 0) turns into +0.0 and .to()
        keeps, so the bytes could not be compared."""
        torch = self.torch
        if dtype == "uint8":
            return torch.randint(0, 256, shape, dtype=torch.uint8, device="cuda")
        if dtype in ("float32", "float64", "complex128"):
            return torch.randn(shape, dtype=getattr(torch, dtype), device="cuda")
        values = torch.randn(shape, device="cuda") * 64
        return torch.where(values.abs() < 0.01, 1.0, values).to(getattr(torch, dtype))

    def pitched_view(self, shape, layout, dtype, fill):
        """A tensor of ``shape`` whose rows (the dimension before W) are PITCH-aligned, over a
        padded buffer filled with ``fill``; also the buffer."""
        torch = self.torch
        h = layout.index("H")
        inner = math.prod(shape[h + 1:])
        pitch = -(-inner * ITEM[dtype] // PITCH) * PITCH // ITEM[dtype]
        base = torch.full(tuple(shape[:h + 1]) + (pitch,), fill, dtype=getattr(torch, dtype), device="cuda")
        return base[..., :inner].unflatten(h + 1, tuple(shape[h + 1:])), base, inner

    def empty(self, case, fill):
        """A destination for ``case`` (pitched if the case says so); also its padded buffer and row
        length, or None."""
        torch = self.torch
        if case.pitched == "dst":
            return self.pitched_view(case.dst_shape, case.dst_layout, case.dst_dtype, fill)
        return torch.full(case.dst_shape, fill, dtype=getattr(torch, case.dst_dtype), device="cuda"), None, None

    # -- timing --
    def time_ms(self, work, calls):
        return self.compare.median_ms(work, warmup=3, iterations=self.args.iterations, stream=self.stream,
                                      calls=calls, lead_cycles=self.lead)

    def time_cupy_ms(self, work, calls):
        with self.cupy_stream:
            return self.time_ms(work, calls)

    def ratios(self, case, works):
        """Median over repetitions of copy time / time for each of ``works`` (name -> callable or
        None), plus the repetitions' tensorbridge ratios and the copy GB/s."""
        torch = self.torch
        moved = case.read + case.written
        a = torch.empty(moved // 2, dtype=torch.uint8, device="cuda")
        b = torch.empty_like(a)
        copy = lambda: b.copy_(a)  # noqa: E731
        probe = self.time_ms(copy, 1)
        calls = max(1, min(200, math.ceil(0.5 / probe)))  # about half a millisecond of copies an interval
        found = {name: [] for name in works}
        copy_gbps = []
        for _ in range(self.args.reps):
            copy_ms = self.time_ms(copy, calls)
            copy_gbps.append(moved / (copy_ms * 1e6))
            for name, work in works.items():
                if work is None:
                    continue
                timer = self.time_cupy_ms if name == "CuPy" else self.time_ms
                found[name].append(copy_ms / timer(work, calls))
        del a, b
        medians = {name: statistics.median(r) if r else None for name, r in found.items()}
        return medians, found.get("tensorbridge", []), statistics.median(copy_gbps)

    # -- cases --
    def reformat(self, case):
        torch, tb, cp = self.torch, self.tb, self.cupy
        fill = 7  # the padding's value: it must survive every write
        if case.pitched == "src":
            src, _, _ = self.pitched_view(case.shape, case.src_layout, case.src_dtype, fill)
            src.copy_(self.random(case.shape, case.src_dtype))
        else:
            src = self.random(case.shape, case.src_dtype)
        dst_tb, base, inner = self.empty(case, fill)
        dst_torch, _, _ = self.empty(case, fill)
        order = case.order
        dst_torch.copy_(src.permute(order))
        torch.cuda.synchronize()  # inputs were made on the default stream; self.stream does not wait for it
        src_t, dst_t = tb.as_tensor(src, case.src_layout), tb.as_tensor(dst_tb, case.dst_layout)
        kernel = tb.reformat_plan(dst_t, src_t)
        tb.reformat_into(dst_t, src_t, stream=self.handle)
        self.stream.synchronize()
        problems = []
        if not torch.equal(dst_tb, dst_torch):
            problems.append("tensorbridge's output differs from PyTorch's permute().copy_()")
        if base is not None and not bool((base[..., inner:] == fill).all()):
            problems.append("tensorbridge wrote into the destination's row padding")
        works = {
            "tensorbridge": lambda: tb.reformat_into(dst_t, src_t, stream=self.handle),
            "PyTorch": lambda: dst_torch.copy_(src.permute(order)),
        }
        if cp is not None:
            dst_cupy = self.empty(case, fill)[0]  # held by the closure, with CuPy's views of the tensors
            src_cp, dst_cp = cp.asarray(src), cp.asarray(dst_cupy)
            works["CuPy"] = lambda: (dst_cupy, cp.copyto(dst_cp, src_cp.transpose(order)))
            if case.pitched:
                works["2D copy"] = self.pitched_copy(case)
        return kernel, problems, works

    def pitched_copy(self, case):
        """The device's own copy of a pitched case's rows (cudaMemcpy2DAsync, through CuPy): the
        same padded rows on the pitched side, packed on the other: what a copy of those bytes
        costs in that pattern."""
        torch, cp = self.torch, self.cupy
        shape, layout, dtype = ((case.shape, case.src_layout, case.src_dtype) if case.pitched == "src"
                                else (case.dst_shape, case.dst_layout, case.dst_dtype))
        view, base, inner = self.pitched_view(shape, layout, dtype, 0)
        width = inner * ITEM[dtype]
        pitch = base.stride(-2) * ITEM[dtype]
        rows = view.numel() // inner
        packed = torch.empty(rows * width, dtype=torch.uint8, device="cuda")
        device_to_device = 3  # cudaMemcpyDeviceToDevice
        if case.pitched == "src":
            args = (packed.data_ptr(), width, base.data_ptr(), pitch)
        else:
            args = (base.data_ptr(), pitch, packed.data_ptr(), width)
        return lambda: (base, packed, cp.cuda.runtime.memcpy2DAsync(*args, width, rows, device_to_device, self.handle))

    def normalize(self, case):
        torch, tb, cp = self.torch, self.tb, self.cupy
        src = self.random(case.shape, "uint8")
        mean = torch.tensor(MEAN, device="cuda").view(1, 3, 1, 1)
        std = torch.tensor(STD, device="cuda").view(1, 3, 1, 1)
        scale, offset = [1 / s for s in STD], [-m / s for m, s in zip(MEAN, STD)]
        torch.cuda.synchronize()  # as in reformat()
        src_t = tb.as_tensor(src, "NHWC")
        order = case.channel_order or None
        out = tb.convert(src_t, "NCHW", "float32", scale, offset, stream=self.handle, channel_order=order)
        # convert_plan takes no channel order; an order keeps the deinterleave (the planner's
        # tests pin it), which then writes each source channel to its output row.
        kernel = tb.convert_plan(out, src_t) + (" reorder=1" if order else "")
        picked = src.flip(-1) if order else src  # (2, 1, 0): BGR -> RGB
        with torch.cuda.stream(self.stream):
            got = torch.from_dlpack(out)
            expected = (picked.permute(0, 3, 1, 2).float() - mean) / std
        self.stream.synchronize()
        problems = []
        if tuple(got.shape) != case.dst_shape or not torch.allclose(got, expected, rtol=2e-6, atol=2e-6):
            problems.append("tensorbridge's normalisation differs from PyTorch's (x - mean) / std beyond 2e-6")
        del got, expected
        # Timed into the output made above (tb_convert, no allocation), as a loop reusing its
        # output runs; PyTorch's expression allocates its temporaries and result.
        # PyTorch and CuPy: the flip is a view, read by the same expression.
        works = {"tensorbridge": lambda: tb.convert_into(out, src_t, scale, offset, stream=self.handle,
                                                         channel_order=order),
                 "PyTorch": lambda: ((src.flip(-1) if order else src).permute(0, 3, 1, 2).float() - mean) / std}
        if cp is not None:
            src_cp = cp.asarray(src)
            src_cp = src_cp[..., ::-1] if order else src_cp
            mean_cp, std_cp = cp.asarray(mean), cp.asarray(std)
            works["CuPy"] = lambda: (src_cp.transpose(0, 3, 1, 2).astype(cp.float32) - mean_cp) / std_cp
        return kernel, problems, works

    def convert(self, case):
        torch, tb = self.torch, self.tb
        src = self.random(case.shape, case.src_dtype)
        target = getattr(torch, case.dst_dtype)
        s = case.scale
        torch.cuda.synchronize()  # as in reformat()
        src_t = tb.as_tensor(src)
        convert = lambda: tb.convert(src_t, None, case.dst_dtype, s, 0.0, stream=self.handle)  # noqa: E731
        if s == 1.0:
            reference = lambda: src.to(target)  # noqa: E731
        else:
            reference = lambda: (src.float() * s).to(target)  # noqa: E731
        out = convert()
        kernel = tb.convert_plan(out, src_t)
        with torch.cuda.stream(self.stream):
            got = torch.from_dlpack(out)
            expected = reference()
        self.stream.synchronize()
        problems = []
        if got.dtype != target or not torch.equal(got.view(torch.uint8), expected.view(torch.uint8)):
            problems.append(f"tensorbridge's bytes differ from PyTorch's {'.to()' if s == 1.0 else '(x.float() * s).to()'}")
        del got, expected
        # Both timed into an output made once: tb_convert into `out`; PyTorch's copy_ converts
        # into a preallocated tensor when there is no scale (with one, its expression allocates).
        torch_out = torch.empty_like(src, dtype=target)
        works = {"tensorbridge": lambda: tb.convert_into(out, src_t, s, 0.0, stream=self.handle),
                 "PyTorch": (lambda: torch_out.copy_(src)) if s == 1.0 else reference}
        return kernel, problems, works

    def run_case(self, case):
        build = {"reformat": self.reformat, "normalize": self.normalize, "convert": self.convert}[case.kind]
        kernel, problems, works = build(case)
        if self.cupy is None or case.kind == "convert":
            works.setdefault("CuPy", None)
        medians, reps, copy_gbps = self.ratios(case, works)
        return kernel, problems, medians, reps, copy_gbps

    def cell(self, value):
        return "—" if value is None else f"{value:.3f}"

    def table(self, group, cases):
        cupy_note = "" if self.cupy is not None else f" (CuPy: {self.cupy_missing})"
        if group.startswith("float8"):
            cupy_note = " (CuPy has no float8 types: its column is empty; PyTorch: x.to(dtype), or (x.float() * s).to(dtype) with a scale)"
        print(f"\n### {group}{cupy_note}\n")
        pitched = any(case.pitched for case in cases) and self.cupy is not None
        if pitched:
            print("2D copy: the device's cudaMemcpy2DAsync of the same rows (pitched on the same side, packed on "
                  "the other), as a ratio to the packed copy like every other column.\n")
        extra = " 2D copy |" if pitched else ""
        print(f"| case | MB moved | kernel (tensorbridge) | copy GB/s | tensorbridge | tb min–max | PyTorch | CuPy "
              f"|{extra} target | met |")
        print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |" + (" ---: |" if pitched else "") + " ---: | --- |")
        for case in cases:
            mb = (case.read + case.written) / 1e6
            try:
                kernel, problems, medians, reps, copy_gbps = self.run_case(case)
            except Exception as error:  # report, do not hide: the row says what failed
                self.failures.append(f"{case.title}: {type(error).__name__}: {error}")
                print(f"| {case.name} | {mb:.1f} | — | — | ERROR: {type(error).__name__}: {str(error)[:80]} "
                      f"| — | — | — |{' — |' if pitched else ''} — | — |", flush=True)
                self.release()
                continue
            self.failures.extend(f"{case.title}: {p}" for p in problems)
            ours = medians["tensorbridge"]
            if not case.has_target:
                met = "—"
            elif problems:
                met = "**WRONG**"
            elif ours >= case.target:
                met = "yes"
            else:
                met = "**NO**"
                self.misses.append(f"{case.title}: {ours:.3f} < {case.target}")
            spread = f"{min(reps):.3f}–{max(reps):.3f}" if reps else "—"
            two_d = f" {self.cell(medians.get('2D copy'))} |" if pitched else ""
            print(f"| {case.name} | {mb:.1f} | {kernel} | {copy_gbps:.0f} | {self.cell(ours)} | {spread} "
                  f"| {self.cell(medians.get('PyTorch'))} | {self.cell(medians.get('CuPy'))} |{two_d} "
                  f"{case.target if case.has_target else '—'} | {met} |", flush=True)
            self.release()

    def release(self):
        """Gives cached memory back between cases (sizes vary by 16x)."""
        self.torch.cuda.synchronize()
        self.torch.cuda.empty_cache()
        self.tb.trim_pool(0)
        if self.cupy is not None:
            self.cupy.get_default_memory_pool().free_all_blocks()

    def latency(self):
        """One 1080p HWC -> CHW reformat, 1000 calls back to back (host cost included where it
        exceeds the GPU's), beside PyTorch, CuPy and a device copy of the same bytes."""
        torch, tb, cp = self.torch, self.tb, self.cupy
        image = self.random((1080, 1920, 3), "uint8")
        out = torch.empty((3, 1080, 1920), dtype=torch.uint8, device="cuda")
        torch.cuda.synchronize()  # as in reformat()
        src_t, dst_t = tb.as_tensor(image, "HWC"), tb.as_tensor(out, "CHW")
        tb.reformat_into(dst_t, src_t, stream=self.handle)
        self.stream.synchronize()
        if not torch.equal(out, image.permute(2, 0, 1)):
            self.failures.append(f"{LATENCY_TITLE}: tensorbridge's output differs from PyTorch's")
        a = torch.empty(image.numel(), dtype=torch.uint8, device="cuda")
        b = torch.empty_like(a)
        timer = self.compare.back_to_back_us
        with torch.cuda.stream(self.stream):
            rows = [("tensorbridge reformat_into", timer(lambda: tb.reformat_into(dst_t, src_t, stream=self.handle),
                                                          self.stream)),
                    ("PyTorch out.copy_(x.permute(2, 0, 1))", timer(lambda: out.copy_(image.permute(2, 0, 1)),
                                                                   self.stream))]
            if cp is not None:
                image_cp, out_cp = cp.asarray(image), cp.asarray(out)
                with self.cupy_stream:
                    rows.append(("CuPy copyto(out, x.transpose(2, 0, 1))",
                                 timer(lambda: cp.copyto(out_cp, image_cp.transpose(2, 0, 1)), self.stream)))
            rows.append(("device copy of the same bytes (copy_)", timer(lambda: b.copy_(a), self.stream)))
        print(f"\n### {LATENCY_TITLE}\n")
        print(f"kernel (tensorbridge): {tb.reformat_plan(dst_t, src_t)}\n")
        print("| library | µs per call (median of 3 runs) | runs | target | met |\n| --- | ---: | --- | ---: | --- |")
        for name, (us, runs) in rows:
            ours = name.startswith("tensorbridge")
            met = ("yes" if us <= LATENCY_TARGET_US else "**NO**") if ours else "—"
            if ours and us > LATENCY_TARGET_US:
                self.misses.append(f"{LATENCY_TITLE}: {us:.2f} µs > {LATENCY_TARGET_US} µs")
            target = f"≤ {LATENCY_TARGET_US}" if ours else "—"
            print(f"| {name} | {us:.2f} | {', '.join(f'{r:.2f}' for r in runs)} | {target} | {met} |")
        self.release()


def main(argv=None):
    arguments = parse_arguments(sys.argv[1:] if argv is None else argv)
    cases, latency = selected(arguments)
    if arguments.list:
        list_cases(cases, latency)
        return 0
    if not cases and not latency:
        print(f"layout_matrix: no case matches --cases {arguments.cases!r} (--list shows them)", file=sys.stderr)
        return 2
    try:
        import torch
    except ImportError as error:
        print(f"layout_matrix: needs PyTorch with a CUDA GPU, and torch is not importable ({error}); "
              "--list shows the cases without one", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("layout_matrix: needs a CUDA GPU, and PyTorch sees none (torch.cuda.is_available() is False); "
              "--list shows the cases without one", file=sys.stderr)
        return 2
    import tensorbridge as tb
    import compare_torch  # bench/ is the script's directory
    cupy, cupy_missing = None, "left out (--no-cupy)"
    if not arguments.no_cupy:
        try:
            import cupy
        except ImportError as error:
            cupy, cupy_missing = None, f"not importable: {error}"
    runner = Runner(arguments, torch, tb, compare_torch, cupy, cupy_missing)
    print(f"device: {torch.cuda.get_device_name(0)}; torch {torch.__version__} (CUDA {torch.version.cuda}); "
          f"cupy {cupy.__version__ if cupy else cupy_missing}; tensorbridge {tb.__version__} "
          f"({tb._library._name}); {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"command: python3 bench/layout_matrix.py {' '.join(sys.argv[1:] if argv is None else argv)}".rstrip())
    print(f"ratio = (read + written) / time ÷ same-run copy bandwidth; median of {arguments.reps} repetitions, "
          f"each the median of {arguments.iterations} intervals of back-to-back calls"
          f"{'' if runner.lead else ' (torch.cuda._sleep missing: no GPU spin before intervals)'}")
    groups = {}
    for case in cases:
        groups.setdefault(case.group, []).append(case)
    for group, members in groups.items():
        runner.table(group, members)
    if latency:
        try:
            runner.latency()
        except Exception as error:  # report, do not hide
            runner.failures.append(f"{LATENCY_TITLE}: {type(error).__name__}: {error}")
            print(f"\n{LATENCY_TITLE}: ERROR {type(error).__name__}: {error}")
    print(f"\n{len(cases) + latency} case(s); below target: {len(runner.misses)}; wrong or failed: "
          f"{len(runner.failures)}")
    for line in runner.misses:
        print(f"  below target: {line}")
    for line in runner.failures:
        print(f"  FAILED: {line}")
    return 1 if runner.failures else 0


if __name__ == "__main__":
    sys.exit(main())
