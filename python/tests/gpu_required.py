"""Shared by the GPU test modules. Skip rules: skip only on a machine that has no NVIDIA driver or
GPU; and a PyTorch stream kept busy on the device for a given time.

Where the machine has one (``/dev/nvidia0`` or a working ``nvidia-smi``) but tensorbridge finds no
usable GPU — a driver that fails to load, a CUDA library version mismatch — the module fails
with the library's own message instead of skipping, so a broken GPU machine cannot pass."""
import os
import shutil
import subprocess

import pytest

from tensorbridge import cuda_device_count_or_error


def nvidia_gpu_present():
    """Whether this machine has an NVIDIA driver and GPU, asked of the OS, not of tensorbridge."""
    if os.path.exists("/dev/nvidia0"):
        return True
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        listed = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return listed.returncode == 0 and "GPU" in listed.stdout


def skip_module_unless_gpu():
    """Skips the calling test module where CUDA is unavailable and no NVIDIA GPU is present;
    fails it where a GPU is present but the library cannot use it."""
    count, error = cuda_device_count_or_error()
    if count > 0:
        return
    reason = f"tensorbridge reports {error}" if error else "tensorbridge reports 0 CUDA devices"
    if nvidia_gpu_present():
        pytest.fail(f"an NVIDIA GPU is present (/dev/nvidia0 or nvidia-smi) but {reason}",
                    pytrace=False)
    pytest.skip(f"no CUDA GPU (no /dev/nvidia0, no working nvidia-smi): {reason}",
                allow_module_level=True)


def busy_stream(torch, seconds=1.0):
    """A new PyTorch stream kept busy for about `seconds` by a spinning kernel (calibrated)."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    torch.cuda._sleep(20_000_000)
    end.record()
    end.synchronize()
    cycles_per_second = 20_000_000 / (start.elapsed_time(end) / 1000)
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        torch.cuda._sleep(int(cycles_per_second * seconds))
    return side
