"""Shared fixtures: the package from this checkout (or the installed one), and a leak check
around every test."""
import gc
import os
import sys
from pathlib import Path

import pytest

# TENSORBRIDGE_TEST_INSTALLED=1: test the installed package (a wheel in a virtual environment),
# never the checkout's python/ directory.
if os.environ.get("TENSORBRIDGE_TEST_INSTALLED") != "1":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tensorbridge  # noqa: E402
from tensorbridge import _keepalive  # noqa: E402


@pytest.fixture(autouse=True)
def no_leaked_handles():
    """Every test must release every library handle and keep-alive reference it made."""
    gc.collect()
    handles, kept = tensorbridge.live_tensor_count(), _keepalive.count()
    yield
    gc.collect()
    assert tensorbridge.live_tensor_count() == handles, "leaked TbTensor handles"
    assert _keepalive.count() == kept, "leaked keep-alive references"


@pytest.fixture(scope="module")
def torch():
    """PyTorch with a usable CUDA device, or the test is skipped saying which is missing."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    if not torch.cuda.is_available():
        pytest.skip("PyTorch sees no CUDA device")
    return torch
