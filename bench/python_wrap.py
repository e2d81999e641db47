"""Per-call cost of wrapping (on the compiled fast path when built; TENSORBRIDGE_PURE_PYTHON=1 for
the ctypes path alone): tensorbridge.as_tensor on a torch tensor (through DLPack's C exchange
API when torch.Tensor carries one), on a CUDA Array Interface object and on a DLPack producer,
operations on torch tensors, and torch.as_tensor(t.cuda(), device="cuda"), against
torch.as_tensor, torch's own copy and cupy.asarray on the same objects. Median over 25 repeats of 2000 calls (creation and release of
the result included). Prints a markdown table.

    python3 bench/python_wrap.py            # on a GPU machine with PyTorch (and CuPy)
    python3 bench/python_wrap.py --numpy    # host only: as_tensor on NumPy arrays
"""
import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))
import tensorbridge as tb  # noqa: E402


def median_us(call, calls=2000, repeats=25, sync=None):
    """Median host µs per call over `repeats` runs of `calls` calls (gc off); `sync` (if given)
    drains the GPU queue after the warm-up and after each run."""
    for _ in range(200):
        call()
    if sync:
        sync()
    samples = []
    gc.disable()
    try:
        for _ in range(repeats):
            start = time.perf_counter_ns()
            for _ in range(calls):
                call()
            samples.append((time.perf_counter_ns() - start) / calls / 1000)
            if sync:
                sync()
    finally:
        gc.enable()
    return statistics.median(samples)


class CudaArrayInterfaceObject:
    """A bare producer: only a (precomputed) __cuda_array_interface__."""

    def __init__(self, interface):
        self.__cuda_array_interface__ = interface


class DLPackProducer:
    """A bare producer: only __dlpack__ / __dlpack_device__, forwarded to a torch tensor."""

    def __init__(self, tensor):
        self._tensor = tensor

    def __dlpack__(self, **kwargs):
        return self._tensor.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._tensor.__dlpack_device__()


def main():
    rows = []
    if "--numpy" in sys.argv:
        import numpy

        array = numpy.zeros((1080, 1920, 3), numpy.uint8)
        rows.append(("tensorbridge.as_tensor(numpy array, 'HWC')", median_us(lambda: tb.as_tensor(array, "HWC"))))
        rows.append(("numpy.asarray(tensorbridge tensor)", median_us(lambda t=tb.as_tensor(array): numpy.asarray(t))))
    else:
        import torch

        x = torch.zeros((1080, 1920, 3), dtype=torch.uint8, device="cuda")
        cai = CudaArrayInterfaceObject(x.__cuda_array_interface__)
        producer = DLPackProducer(x)
        t = tb.as_tensor(x, "HWC")
        rows.append(("tensorbridge.as_tensor(CAI object, 'HWC')", median_us(lambda: tb.as_tensor(cai, "HWC"))))
        rows.append(("torch.as_tensor(CAI object, device='cuda')", median_us(lambda: torch.as_tensor(cai, device="cuda"))))
        try:
            import cupy

            rows.append(("cupy.asarray(CAI object)", median_us(lambda: cupy.asarray(cai))))
        except ImportError:
            rows.append(("cupy.asarray(CAI object)", float("nan")))
        exchange = bool(tb._exchange.exchange_api(x))
        rows.append((f"tensorbridge.as_tensor(torch tensor, 'HWC') [{'C exchange API' if exchange else 'CAI'}]",
                     median_us(lambda: tb.as_tensor(x, "HWC"))))
        out = torch.zeros((3, 1080, 1920), dtype=torch.uint8, device="cuda")
        img = torch.zeros((1, 224, 224, 3), dtype=torch.uint8, device="cuda")
        out_small = torch.zeros((1, 3, 224, 224), dtype=torch.uint8, device="cuda")
        labelled = tb.as_tensor(img, "NHWC"), tb.as_tensor(out_small, "NCHW")
        rows.append(("tensorbridge.reformat_into(as_tensor(out), as_tensor(img)) 1x224x224x3 from torch",
                     median_us(lambda: tb.reformat_into(tb.as_tensor(out_small, "NCHW"), tb.as_tensor(img, "NHWC")))))
        rows.append(("tensorbridge.reformat_into(out, img) 1x224x224x3, both wrapped beforehand",
                     median_us(lambda: tb.reformat_into(labelled[1], labelled[0]))))
        rows.append(("tensorbridge.copy_into(torch_out, torch_in) 1080p (operands borrowed in C)",
                     median_us(lambda: tb.copy_into(out, x.permute(2, 0, 1)))))
        rows.append(("torch: out.copy_(img.permute(0, 3, 1, 2)) 1x224x224x3",
                     median_us(lambda: out_small.copy_(img.permute(0, 3, 1, 2)))))
        batch = tb.as_tensor(torch.zeros((8, 224, 224, 3), dtype=torch.uint8, device="cuda"), "NHWC")
        rows.append(("batch[3] (a view of a wrapped 8x224x224x3 batch)", median_us(lambda: batch[3])))
        rows.append(("torch: batch[3] of the torch tensor, for comparison",
                     median_us(lambda t=torch.zeros((8, 224, 224, 3), device="cuda"): t[3])))
        rows.append(("tensorbridge.as_tensor(DLPack producer, 'HWC')", median_us(lambda: tb.as_tensor(producer, "HWC"))))
        rows.append(("torch.from_dlpack(DLPack producer)", median_us(lambda: torch.from_dlpack(producer))))
        rows.append(("torch.as_tensor(t.cuda(), device='cuda')", median_us(lambda: torch.as_tensor(t.cuda(), device="cuda"))))
        rows.append(("torch.from_dlpack(tensorbridge tensor)", median_us(lambda: torch.from_dlpack(t))))
        # Where torch.from_dlpack's time goes: the producer's two calls, torch's C consumer of the
        # capsule, and the current-stream lookup torch.from_dlpack makes in Python first.
        rows.append(("  of which ours: t.__dlpack_device__() + t.__dlpack__(stream=1, max_version=(1, 0))",
                     median_us(lambda: (t.__dlpack_device__(), t.__dlpack__(stream=1, max_version=(1, 0))))))
        rows.append(("  torch._C._from_dlpack(t.__dlpack__(stream=1, max_version=(1, 0)))",
                     median_us(lambda: torch._C._from_dlpack(t.__dlpack__(stream=1, max_version=(1, 0))))))
        rows.append(("  torch.cuda.current_stream('cuda:0').cuda_stream",
                     median_us(lambda: torch.cuda.current_stream("cuda:0").cuda_stream)))
        try:
            import cupy

            xc = cupy.zeros((1080, 1920, 3), dtype=cupy.uint8)
            rows.append(("tensorbridge.as_tensor(cupy array, 'HWC')", median_us(lambda: tb.as_tensor(xc, "HWC"))))
            rows.append(("torch.as_tensor(cupy array, device='cuda'), for comparison",
                         median_us(lambda: torch.as_tensor(xc, device="cuda"))))
            rows.append(("torch.from_dlpack(cupy array), for comparison", median_us(lambda: torch.from_dlpack(xc))))
            wrapped = tb.as_tensor(xc, "HWC")  # keeps the CuPy array: exported through an alias holding it
            rows.append(("torch.from_dlpack(tb.as_tensor(cupy array)) (wrapped beforehand)",
                         median_us(lambda: torch.from_dlpack(wrapped))))
        except ImportError:
            pass
    from tensorbridge import _compiled

    print(f"Python fast path: {'compiled (_native)' if _compiled.native is not None else 'ctypes only'}")
    print("| call | median µs per call |")
    print("| --- | ---: |")
    for name, us in rows:
        print(f"| {name} | {us:.2f} |")


if __name__ == "__main__":
    main()
