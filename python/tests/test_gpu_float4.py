"""torch.float4_e2m1fn_x2 on the GPU: PyTorch exports it through DLPack as (code 17, bits 4, lanes 2), shape and
strides counting pairs, no padded flag; tensorbridge holds it as ``float4_e2m1fn_x2``. CUDA tensors cross both ways
zero-copy (the same data pointer, shape, strides and bytes) through every import path PyTorch offers — the C
exchange API or DLPack capsules, legacy and versioned — including strided and transposed views; tensorbridge's own
float4_e2m1fn_x2 tensors and GPU reformats of them read back in PyTorch as the same bytes. Skipped without a GPU,
without PyTorch, or with a PyTorch whose DLPack cannot carry float4 (it says why)."""
import pytest

import tensorbridge as tb
from gpu_required import skip_module_unless_gpu

skip_module_unless_gpu()

PAIR = "float4_e2m1fn_x2"


@pytest.fixture(scope="module")
def torch4(torch):
    """PyTorch with torch.float4_e2m1fn_x2 and a DLPack export of it, or the test is skipped saying which lacks."""
    if not hasattr(torch, PAIR):
        pytest.skip(f"PyTorch {torch.__version__} has no torch.float4_e2m1fn_x2")
    probe = torch.zeros(2, dtype=torch.uint8, device="cuda").view(torch.float4_e2m1fn_x2)
    try:
        torch.utils.dlpack.to_dlpack(probe)
    except (RuntimeError, BufferError, TypeError) as error:
        pytest.skip(f"PyTorch {torch.__version__} cannot export float4_e2m1fn_x2 through DLPack: {error}")
    return torch


def random_pairs(torch, *shape):
    """A CUDA float4_e2m1fn_x2 tensor of random bytes (every pattern is a valid pair)."""
    generator = torch.Generator(device="cuda").manual_seed(4)
    return torch.randint(0, 256, shape, dtype=torch.uint8, device="cuda", generator=generator).view(
        torch.float4_e2m1fn_x2)


def same_tensor(torch, ours, theirs):
    """``ours`` (tensorbridge) describes exactly ``theirs`` (PyTorch) without a copy."""
    assert str(ours.dtype) == PAIR and ours.is_cuda
    assert ours.data_ptr == theirs.data_ptr()
    assert ours.shape == tuple(theirs.shape) and ours.strides == tuple(theirs.stride())  # one byte a pair


def back_in_torch(torch, back, original):
    """``back`` (PyTorch, from tensorbridge) is ``original`` again: dtype, memory, geometry, bytes."""
    assert back.dtype == torch.float4_e2m1fn_x2 and back.device == original.device
    assert back.data_ptr() == original.data_ptr()
    assert back.shape == original.shape and back.stride() == original.stride()
    assert torch.equal(back.view(torch.uint8), original.view(torch.uint8))


IMPORTS = {
    "as_tensor": lambda torch, x: tb.as_tensor(x),  # the C exchange API where PyTorch offers it, else DLPack
    "legacy_capsule": lambda torch, x: tb.from_dlpack(torch.utils.dlpack.to_dlpack(x)),
    "versioned_capsule": lambda torch, x: tb.from_dlpack(x.__dlpack__(max_version=(1, 1))),
}
EXPORTS = {
    "torch_from_dlpack": lambda torch, t: torch.from_dlpack(t),
    "legacy_capsule": lambda torch, t: torch.utils.dlpack.from_dlpack(t.__dlpack__()),
}


@pytest.mark.parametrize("export", EXPORTS)
@pytest.mark.parametrize("import_", IMPORTS)
def test_pairs_cross_both_ways_zero_copy(torch4, import_, export):
    x = random_pairs(torch4, 64, 48)
    t = IMPORTS[import_](torch4, x)
    same_tensor(torch4, t, x)
    back_in_torch(torch4, EXPORTS[export](torch4, t), x)


@pytest.mark.parametrize("view", ["columns", "transposed", "rows_stepped"])
def test_views_of_pairs_cross_both_ways_zero_copy(torch4, view):
    x = random_pairs(torch4, 32, 40)
    y = {"columns": lambda: x[:, 4:20], "transposed": lambda: x.t(), "rows_stepped": lambda: x[1::3, 8:]}[view]()
    t = tb.as_tensor(y)
    same_tensor(torch4, t, y)
    back_in_torch(torch4, torch4.from_dlpack(t), y)


def test_tensorbridge_pairs_and_gpu_reformats_read_back_as_the_same_bytes(torch4):
    x = random_pairs(torch4, 24, 40)
    made = tb.empty((24, 40), PAIR, "HW", device="cuda")
    as_torch = torch4.from_dlpack(made)
    assert as_torch.dtype == torch4.float4_e2m1fn_x2 and as_torch.data_ptr() == made.data_ptr
    tb.copy_into(made, tb.as_tensor(x, "HW"))
    torch4.cuda.synchronize()
    assert torch4.equal(as_torch.view(torch4.uint8), x.view(torch4.uint8))
    transposed = tb.reformat(tb.as_tensor(x, "HW"), "WH")  # a GPU copy into new memory
    got = torch4.from_dlpack(transposed)
    assert got.dtype == torch4.float4_e2m1fn_x2 and got.shape == (40, 24) and got.is_contiguous()
    assert torch4.equal(got.view(torch4.uint8), x.view(torch4.uint8).t().contiguous())


def test_the_cuda_array_interface_and_convert_refuse_pairs(torch4):
    t = tb.as_tensor(random_pairs(torch4, 8, 8))
    with pytest.raises(tb.NotSupportedError, match=f"{PAIR} has no NumPy typestr.*DLPack"):
        t.__cuda_array_interface__
    with pytest.raises(tb.NotSupportedError, match=f"not {PAIR}"):
        tb.convert(t, None, "float32")
