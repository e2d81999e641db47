"""Sharing tensors between processes, the parts every machine checks: host tensors are refused with
the reason, and bytes that are not a descriptor are refused before any driver call. The GPU round
trips between processes are in test_gpu_ipc.py."""
import numpy
import pytest

import tensorbridge as tb


def test_a_host_tensor_is_not_shareable_through_cuda_ipc():
    with pytest.raises(tb.NotSupportedError, match="only CUDA device memory is shared"):
        tb.as_tensor(numpy.zeros((2, 3), numpy.float32)).share()


@pytest.mark.parametrize("data, error, message", [
    (b"\0" * 512, tb.InvalidArgumentError, "not a tensorbridge IPC descriptor"),
    (b"TBIPC\0\0\0" + b"\x02" + b"\0" * 503, tb.InvalidArgumentError, "format version 2"),
    (b"TBIPC\0\0\0" + b"\x01\0\0\0" + (512).to_bytes(4, "little") + b"\0" * 496, tb.InvalidArgumentError,
     "checksum mismatch"),
    (b"short", ValueError, "512 bytes, not 5"),
])
def test_bytes_that_are_not_a_descriptor_are_refused_with_the_reason(data, error, message):
    with pytest.raises(error, match=message):
        tb.from_shared(data)
