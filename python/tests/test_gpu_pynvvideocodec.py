"""PyNvVideoCodec with tensorbridge on the GPU: an H.264 clip (encoded with libx264 by
scripts/make-test-clip.py, since the GPU machine has no video encoder) decoded by NVDEC on a stream
of ours in the primary context. RGB output: each frame wrapped zero-copy (DLPack: a DecodedFrame
has no __cuda_array_interface__ of its own) and converted to float32 CHW before the next decode
call reuses its memory, checked against the CPU decoder's RGB within codec tolerance. NV12 output
(the decoder's native one): the samples equal the CPU decoder's exactly, and convert_frames — from
the DLPack tensor and from the CUDA Array Interface planes of ``frame.cuda()`` — gives the bytes
the CPU path gives for the CPU decoder's samples. Skipped, with the reason, without a GPU,
PyNvVideoCodec, cuda.bindings or PyTorch."""
from pathlib import Path

import numpy
import pytest

import tensorbridge as tb
from gpu_required import skip_module_unless_gpu

skip_module_unless_gpu()
nvc = pytest.importorskip("PyNvVideoCodec", reason="optional framework not installed: PyNvVideoCodec "
                          "(pip install pynvvideocodec; scripts/framework-wheels.sh)")
torch = pytest.importorskip("torch", reason="PyTorch is not installed")
driver = pytest.importorskip("cuda.bindings.driver", reason="cuda.bindings is not installed")

DATA = Path(__file__).resolve().parent / "data"
CLIP = DATA / "clip_h264_128x96.mp4"


def primary_context():
    """Device 0's primary context (the one torch and tensorbridge use), as an int."""
    assert driver.cuInit(0)[0] == driver.CUresult.CUDA_SUCCESS
    status, device = driver.cuDeviceGet(0)
    assert status == driver.CUresult.CUDA_SUCCESS
    status, context = driver.cuDevicePrimaryCtxRetain(device)
    assert status == driver.CUresult.CUDA_SUCCESS
    return int(context)


def test_decoded_frames_wrap_zero_copy_on_our_stream_and_match_the_cpu_decoder():
    reference = numpy.load(DATA / "clip_h264_128x96_rgb.npz")["frames"]
    stream = torch.cuda.Stream()
    decoder = nvc.SimpleDecoder(str(CLIP), gpu_id=0, cuda_context=primary_context(), cuda_stream=stream.cuda_stream,
                                use_device_memory=True, output_color_type=nvc.OutputColorType.RGB)
    converted = []
    for index in range(len(reference)):
        frame = decoder[index]
        image = tb.as_tensor(frame, "HWC")
        assert image.data_ptr == frame.GetPtrToPlane(0) and image.shape == reference.shape[1:]
        # One pass to float32 CHW in new memory, before the next decode reuses the frame's memory.
        converted.append(tb.convert(image, "CHW", "float32", 1.0, 0.0, stream=stream))
    stream.synchronize()
    decoded = numpy.stack([numpy.asarray(t.cpu()) for t in converted]).transpose(0, 2, 3, 1)
    error = numpy.abs(decoded - reference.astype(numpy.float32))
    assert error.mean() < 6 and numpy.percentile(error, 99) < 32, (error.mean(), numpy.percentile(error, 99))


def test_nv12_frames_convert_in_one_pass_to_the_bytes_of_the_cpu_path():
    samples = numpy.load(DATA / "clip_h264_128x96_rgb.npz")["nv12"]
    # The CPU path on the CPU decoder's samples: the expected bytes.
    expected = numpy.asarray(tb.convert_frames(samples, "NCHW", "float32", [1 / 255] * 3, [0.0] * 3))
    stream = torch.cuda.Stream()
    decoder = nvc.SimpleDecoder(str(CLIP), gpu_id=0, cuda_context=primary_context(), cuda_stream=stream.cuda_stream,
                                use_device_memory=True, output_color_type=nvc.OutputColorType.NATIVE)
    by_dlpack, by_planes = [], []
    for index in range(len(samples)):
        frame = decoder[index]
        whole = tb.as_tensor(frame)  # DLPack: (3H/2, W) uint8
        assert whole.data_ptr == frame.GetPtrToPlane(0) and whole.shape[-1] == samples.shape[-1], whole.shape
        assert (torch.from_dlpack(frame).cpu().numpy() == samples[index]).all(), "NVDEC and the CPU decoder differ"
        planes = frame.cuda()  # Y (H, W, 1) and interleaved UV (H/2, W/2, 2), CUDA Array Interface
        by_dlpack.append(tb.convert_frames(whole, "CHW", "float32", 1 / 255, 0.0, stream=stream))
        by_planes.append(tb.convert_frames(planes, "CHW", "float32", 1 / 255, 0.0, stream=stream))
    stream.synchronize()
    for converted in (by_dlpack, by_planes):
        got = numpy.stack([numpy.asarray(t.cpu()) for t in converted])
        assert (got == expected).all(), numpy.abs(got - expected).max()
