"""float8 on the GPU with PyTorch: tensorbridge's kernels convert float32 -> float8_e4m3fn /
float8_e5m2 to the same bytes as PyTorch's .to() on the same device, and float8 -> float32
exactly; float8 tensors cross both ways zero-copy (``as_tensor`` falls back to DLPack where
PyTorch's __cuda_array_interface__ has no typestr for them). Skipped without a GPU or PyTorch."""
import numpy
import pytest

import tensorbridge as tb
from gpu_required import skip_module_unless_gpu

skip_module_unless_gpu()

FORMATS = ["float8_e4m3fn", "float8_e5m2"]


def float32_sample(torch):
    """Every float16 value, the formats' edges and a million random float32 bit patterns."""
    rng = numpy.random.default_rng(8)
    halves = numpy.arange(1 << 16, dtype=numpy.uint16).view(numpy.float16).astype(numpy.float32)
    edges = numpy.array([0.0, 448.0, 464.0, 464.0001, 480.0, 57344.0, 61439.0, 61440.0, 65536.0, 2.0 ** -9,
                         2.0 ** -10, 2.0 ** -16, 2.0 ** -17, numpy.inf], numpy.float32)
    random = rng.integers(0, 1 << 32, 1 << 20, dtype=numpy.uint64).astype(numpy.uint32).view(numpy.float32)
    return torch.from_numpy(numpy.concatenate([halves, edges, -edges, random])).cuda()


@pytest.mark.parametrize("name", FORMATS)
def test_float32_to_float8_on_the_gpu_matches_torch_to(torch, name):
    x = float32_sample(torch)
    expected = x.to(getattr(torch, name)).view(torch.uint8)
    got = torch.from_dlpack(tb.convert(tb.as_tensor(x), None, name)).view(torch.uint8)
    # PyTorch keeps -0.0 and NaN signs; tb_convert's affine (x * 1 + 0) makes -0.0 +0.0.
    keep = ~torch.isnan(x) & ~((x == 0) & torch.signbit(x))
    mismatch = torch.nonzero((got != expected) & keep).flatten()
    assert mismatch.numel() == 0, [(x[i].item(), got[i].item(), expected[i].item()) for i in mismatch[:8]]
    assert ((got[torch.isnan(x)] & 0x7f) == 0x7f).all()


@pytest.mark.parametrize("name", FORMATS)
def test_every_float8_byte_decodes_exactly_on_the_gpu(torch, name):
    every = torch.arange(256, dtype=torch.int32, device="cuda").to(torch.uint8).view(getattr(torch, name))
    got = torch.from_dlpack(tb.convert(tb.as_tensor(every), None, "float32"))
    expected = every.to(torch.float32)
    assert torch.equal(torch.isnan(got), torch.isnan(expected))
    finite = ~torch.isnan(expected)
    assert torch.equal(got[finite], expected[finite])


@pytest.mark.parametrize("name", FORMATS)
def test_float8_tensors_cross_both_ways_zero_copy(torch, name):
    x = torch.randn(64, 3, device="cuda").to(getattr(torch, name))
    t = tb.as_tensor(x, "NC")
    assert t.data_ptr == x.data_ptr() and str(t.dtype) == name and t.is_cuda
    back = torch.from_dlpack(t)
    assert back.dtype == x.dtype and back.data_ptr() == x.data_ptr()
    assert torch.equal(back.view(torch.uint8), x.view(torch.uint8))
    made = tb.empty((8, 8), name, device="cuda")
    assert torch.from_dlpack(made).dtype == x.dtype
    with pytest.raises(tb.NotSupportedError, match="DLPack"):
        t.__cuda_array_interface__
