"""The plan queries (reformat_plan, convert_plan) on any machine: they name the kernel family and
its choices for CUDA tensors described at stand-in addresses (never dereferenced, so no GPU is
needed), the CPU method for host arrays, and raise what the operation would raise."""
import ctypes
import re
from pathlib import Path

import numpy as np
import pytest

import tensorbridge as tb
from tensorbridge import _dtypes, _ops
from tensorbridge._lib import CLEANUP, DEVICE_CUDA, DataType, Device, lib


def described(address, dtype, shape, layout, strides=None):
    """A CUDA Tensor at ``address`` (tb_tensor_wrap trusts the device as given)."""
    entry = _dtypes._BY_NAME[dtype]
    extents = (ctypes.c_int64 * len(shape))(*shape)
    steps = None if strides is None else (ctypes.c_int64 * len(strides))(*strides)
    out = ctypes.c_void_p()
    lib.tb_tensor_wrap(address, Device(DEVICE_CUDA, 0), DataType(entry.code, entry.bits, 1), len(shape), extents,
                       steps, layout.encode() or None, False, CLEANUP(), None, ctypes.byref(out))
    return tb.Tensor._adopt(out.value)


NHWC, NCHW = (2, 4, 8, 3), (2, 3, 4, 8)


@pytest.mark.parametrize("case, dst, src, expected", [
    ("NHWC -> NCHW u8", (1 << 33, "uint8", NCHW, "NCHW"), (1 << 32, "uint8", NHWC, "NHWC"),
     "deinterleave small=3 vec=16"),
    ("NCHW -> NHWC u8", (1 << 33, "uint8", NHWC, "NHWC"), (1 << 32, "uint8", NCHW, "NCHW"),
     "interleave small=3 vec=16 ilp=1"),
    ("NHWC -> NCHW u8 C=64", (1 << 33, "uint8", (1, 64, 16, 16), "NCHW"), (1 << 32, "uint8", (1, 16, 16, 64), "NHWC"),
     "transpose_tiled tile_r=64 tile_s=256"),
    ("destination off 16-byte alignment", (1 << 33 | 8, "uint8", (1, 64, 16, 16), "NCHW"),
     (1 << 32, "uint8", (1, 16, 16, 64), "NHWC"), "general rank=2"),
    ("same layout", (1 << 33, "float32", NHWC, "NHWC"), (1 << 32, "float32", NHWC, "NHWC"), "memcpy"),
])
def test_reformat_plan_names_the_kernel_without_a_gpu(case, dst, src, expected):
    assert tb.reformat_plan(described(*dst), described(*src)) == expected, case


def test_pitched_rows_keep_the_register_kernels():
    # Rows padded to 256 bytes: the rows become a second batch dimension of the transpose; the
    # destination's 8-byte rows make the runs 8 bytes, two chunks a thread.
    rows_padded_to_256_bytes = (4 * 256, 256, 3, 1)
    src = described(1 << 32, "uint8", NHWC, "NHWC", rows_padded_to_256_bytes)
    assert tb.reformat_plan(described(1 << 33, "uint8", NCHW, "NCHW"), src) == "deinterleave small=3 vec=8 ilp=2"
    # A decoder frame: 1000-pixel rows of 3000 bytes at a 3072-byte pitch, into NCHW and back.
    frame = (13, 1000, 1000, 3)
    pitched = described(1 << 32, "uint8", frame, "NHWC", (1000 * 3072, 3072, 3, 1))
    planar = described(1 << 34, "uint8", (13, 3, 1000, 1000), "NCHW")
    assert tb.reformat_plan(planar, pitched) == "deinterleave small=3 vec=8 ilp=2"
    assert tb.reformat_plan(pitched, planar) == "interleave small=3 vec=8 ilp=2"
    # Rows whose pitch is not a multiple of even 4 bytes stay with the general kernel.
    odd = described(1 << 32, "uint8", NHWC, "NHWC", (4 * 25, 25, 3, 1))
    assert tb.reformat_plan(described(1 << 33, "uint8", NCHW, "NCHW"), odd) == "general rank=4"


def test_convert_plan_names_the_fused_normalisation_and_fp8_conversions():
    src = described(1 << 32, "uint8", NHWC, "NHWC")
    assert tb.convert_plan(described(1 << 33, "float32", NCHW, "NCHW"), src) == "deinterleave small=3 vec=4"
    flat = described(1 << 34, "float32", (1024,), "")
    elementwise = "elementwise vec=16 ilp=1 align_in=16 align_out=16"
    assert tb.convert_plan(described(1 << 35, "float8_e4m3fn", (1024,), ""), flat) == elementwise
    bytes_in = described(1 << 34, "uint8", (1024,), "")
    table = "elementwise vec=16 ilp=4 align_in=16 align_out=16 table=1 table_copies=32"
    assert tb.convert_plan(described(1 << 35, "float8_e5m2", (1024,), ""), bytes_in) == table
    # One element off on both sides: a head of 15 elements realigns both.
    shifted = described((1 << 34) + 4, "float32", (1023,), "")
    assert tb.convert_plan(described((1 << 35) + 1, "float8_e4m3fn", (1023,), ""), shifted) == elementwise
    # Same layout with per-channel coefficients: still one run, its 64-byte runs of float32
    # stored through the warp.
    hwc = described(1 << 34, "uint8", (4, 8, 3), "HWC")
    assert tb.convert_plan(described(1 << 35, "float32", (4, 8, 3), "HWC"), hwc) == \
        "elementwise vec=16 ilp=2 align_in=16 align_out=16 staged"


def test_host_arrays_are_named_by_the_cpu_method():
    nhwc, nchw = np.zeros(NHWC, np.uint8), np.zeros(NCHW, np.uint8)
    assert tb.reformat_plan(tb.as_tensor(nchw, "NCHW"), tb.as_tensor(nhwc, "NHWC")) == "host copy loop"
    assert tb.reformat_plan(tb.as_tensor(nhwc.copy(), "NHWC"), tb.as_tensor(nhwc, "NHWC")) == "host memcpy"
    planar = tb.as_tensor(np.zeros(NCHW, np.float32), "NCHW")
    assert tb.convert_plan(planar, tb.as_tensor(nhwc, "NHWC")) == "host convert loop"


def test_a_pageable_source_for_the_gpu_is_staged():
    host = tb.as_tensor(np.zeros(NHWC, np.uint8), "NHWC")
    assert tb.reformat_plan(described(1 << 33, "uint8", NCHW, "NCHW"), host) == "staged upload, memcpy"


def test_plan_queries_raise_what_the_operation_raises():
    src = described(1 << 32, "uint8", NHWC, "NHWC")
    with pytest.raises(tb.InvalidArgumentError, match="use tb_convert"):
        tb.reformat_plan(described(1 << 33, "float32", NCHW, "NCHW"), src)
    with pytest.raises(tb.InvalidArgumentError, match="overlap"):
        tb.reformat_plan(described(1 << 32, "uint8", NCHW, "NCHW"), src)
    with pytest.raises(tb.NotSupportedError, match="float64"):
        tb.convert_plan(described(1 << 33, "float64", NCHW, "NCHW"), src)


def test_the_name_buffer_matches_the_header_capacity():
    header = Path(__file__).resolve().parents[2] / "include" / "tensorbridge.h"
    if not header.exists():
        pytest.skip("not a GPU test: the checkout's header is not here (an installed package)")
    defined = re.search(r"#define TB_PLAN_NAME_CAPACITY (\d+)", header.read_text())
    assert defined and int(defined.group(1)) == _ops._PLAN_NAME_CAPACITY
