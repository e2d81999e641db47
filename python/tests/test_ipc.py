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


def test_host_tensors_pickle_for_multiprocessing_as_a_copy_with_their_layout():
    import pickle
    from multiprocessing.reduction import ForkingPickler

    array = numpy.arange(12, dtype=numpy.int16).reshape(3, 4)
    received = pickle.loads(ForkingPickler.dumps(tb.as_tensor(array, "HW")))
    assert (received.shape, received.layout, received.dtype) == ((3, 4), "HW", "int16")
    assert numpy.array_equal(received.numpy(), array)
    array[0, 0] = 99
    assert received.numpy()[0, 0] == 0, "a copy: host memory is not shared between processes"


def test_helpers_refuse_what_is_not_this_processs_descriptor():
    with pytest.raises(tb.InvalidArgumentError, match="not a tensorbridge IPC descriptor"):
        tb.shared_pool_fd(b"\0" * 512)
    with pytest.raises(tb.InvalidArgumentError, match="not a tensorbridge IPC descriptor"):
        tb.revoke_shared(b"\0" * 512)
    with pytest.raises(ValueError, match="512 bytes, not 3"):
        tb.revoke_shared(b"abc")
    assert tb.collect_shared() >= 0


def test_receiving_from_a_socket_that_closes_early_or_sends_garbage_is_an_error():
    import socket

    ours, theirs = socket.socketpair()
    ours.sendall(b"\0" * 100)
    ours.close()
    with pytest.raises(tb.InvalidArgumentError, match="closed after 100 of the descriptor's 512 bytes"):
        tb.receive_shared(theirs)
    theirs.close()
    ours, theirs = socket.socketpair()
    ours.sendall(b"\0" * 512)
    with pytest.raises(tb.InvalidArgumentError, match="not a tensorbridge IPC descriptor"):
        tb.receive_shared(theirs)
    ours.close()
    theirs.close()
