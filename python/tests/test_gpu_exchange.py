"""PyTorch tensors through DLPack's C exchange API (torch.Tensor.__dlpack_c_exchange_api__) on the
GPU: zero-copy imports that keep the storage alive, operations on torch tensors, the producer's
current stream ordered before tensorbridge's work without a host synchronisation, and handles
and refcounts back to their baseline. Skipped, with the reason, without a GPU, PyTorch, or an
exchange API in this PyTorch."""
import gc
import sys

import pytest

import tensorbridge as tb
from tensorbridge import _exchange
from gpu_required import skip_module_unless_gpu

skip_module_unless_gpu()
torch = pytest.importorskip("torch", reason="PyTorch is not installed")
if not _exchange.exchange_api(torch.zeros(1)):
    pytest.skip(f"torch {torch.__version__} has no __dlpack_c_exchange_api__", allow_module_level=True)


def test_as_tensor_of_a_torch_tensor_goes_through_the_exchange_api_and_shares_memory():
    x = torch.randint(0, 255, (4, 6, 3), dtype=torch.uint8, device="cuda")
    refs = sys.getrefcount(x)
    t = tb.as_tensor(x, "HWC")
    assert t.data_ptr == x.data_ptr() and t.layout == "HWC" and t.is_cuda
    back = torch.as_tensor(t.cuda(), device="cuda")
    back[0, 0, 0] = 7
    torch.cuda.synchronize()
    assert x[0, 0, 0].item() == 7
    del x
    gc.collect()
    assert t.shape == (4, 6, 3)  # the managed tensor keeps torch's storage alive
    del t, back
    gc.collect()


def test_operations_take_torch_tensors_directly_and_match_torch():
    x = torch.randint(0, 255, (2, 32, 48, 3), dtype=torch.uint8, device="cuda")
    out = torch.empty((2, 3, 32, 48), dtype=torch.uint8, device="cuda")
    live = tb.live_tensor_count()
    tb.reformat_into(tb.as_tensor(out, "NCHW"), tb.as_tensor(x, "NHWC"))
    tb.copy_into(out, x.permute(0, 3, 1, 2))
    torch.cuda.synchronize()
    assert torch.equal(out, x.permute(0, 3, 1, 2))
    normalized = tb.convert(tb.as_tensor(x, "NHWC"), "NCHW", "float32", scale=1 / 255)
    assert torch.allclose(torch.as_tensor(normalized, device="cuda"), x.permute(0, 3, 1, 2).float() / 255)
    del normalized
    gc.collect()
    assert tb.live_tensor_count() == live


def test_the_producers_current_stream_is_ordered_before_tensorbridges_work_without_host_sync():
    from gpu_required import busy_stream as busy_side_stream

    x = torch.zeros((1 << 20,), dtype=torch.int32, device="cuda")
    out = tb.empty((1 << 20,), "int32", device="cuda")
    tb.copy_into(out, tb.as_tensor(x))  # warm up: nothing below compiles or allocates anew
    torch.cuda.synchronize()
    side = busy_side_stream(torch, 0.5)
    with torch.cuda.stream(side):
        x.fill_(3)  # written on the busy side stream
        t = tb.as_tensor(x)  # the exchange API names the side stream as the producer's
    tb.copy_into(out, t)  # on the legacy default stream: must wait for the side stream on the device
    assert not side.query(), "the host waited for the producer's stream"
    torch.cuda.synchronize()
    assert torch.equal(torch.as_tensor(out, device="cuda"), torch.full((1 << 20,), 3, dtype=torch.int32, device="cuda"))


def test_gpu_exports_of_either_path_agree_and_torch_reads_them_without_copying():
    x = torch.randint(0, 255, (2, 8, 6, 3), dtype=torch.uint8, device="cuda")
    t = tb.reformat(tb.as_tensor(x, "NHWC"), "NCHW")  # owned by tensorbridge: the common export
    assert t.__cuda_array_interface__ == t._cuda_array_interface()
    assert t.__dlpack_device__() == t._dlpack_device() == (2, 0)
    assert not hasattr(t, "__array_interface__")
    via_cai = torch.as_tensor(t, device="cuda")
    via_dlpack = torch.from_dlpack(t)
    assert via_cai.data_ptr() == via_dlpack.data_ptr() == t.data_ptr
    torch.testing.assert_close(via_dlpack, x.permute(0, 3, 1, 2))
    torch.testing.assert_close(via_cai, x.permute(0, 3, 1, 2))
