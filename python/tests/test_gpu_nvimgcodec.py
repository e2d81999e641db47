"""nvImageCodec with tensorbridge on the GPU: a batch of PNG and JPEG images (made in the test from
synthetic arrays, none downloaded) decoded into GPU memory, wrapped zero-copy with the decoder's
stream honoured, batched, converted uint8 HWC -> normalised float32 NCHW in one pass and handed to
PyTorch; and a tensorbridge tensor encoded back to an image. Skipped, with the reason, without a
GPU, nvImageCodec or PyTorch."""
import numpy
import pytest

import tensorbridge as tb
from gpu_required import skip_module_unless_gpu

skip_module_unless_gpu()
nvimgcodec = pytest.importorskip("nvidia.nvimgcodec", reason="optional framework not installed: nvImageCodec "
                                 "(pip install nvidia-nvimgcodec-cu13; scripts/framework-wheels.sh)")
torch = pytest.importorskip("torch", reason="PyTorch is not installed")

H, W = 48, 64
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def synthetic(seed):
    """A smooth RGB image (JPEG keeps smooth images close)."""
    y, x = numpy.mgrid[0:H, 0:W]
    channels = [(x * 3 + seed * 17) % 256, (y * 5 + seed * 29) % 256, ((x + y) * 2 + seed * 7) % 256]
    return numpy.stack(channels, axis=-1).astype(numpy.uint8)


def test_decoded_batch_is_wrapped_batched_normalised_and_fed_to_torch():
    arrays = [synthetic(seed) for seed in range(4)]
    encoder, decoder = nvimgcodec.Encoder(), nvimgcodec.Decoder()
    streams = [encoder.encode(array, "png") for array in arrays]  # lossless: exact comparisons
    images = decoder.decode(streams)
    assert all(image is not None for image in images)
    wrapped = [tb.as_tensor(image, "HWC") for image in images]  # zero-copy, the decoder's stream honoured
    for image, tensor in zip(images, wrapped):
        assert tensor.is_cuda and tensor.data_ptr == image.__cuda_array_interface__["data"][0]
    batch = tb.empty((len(arrays), H, W, 3), "uint8", "NHWC", device="cuda")
    for index, tensor in enumerate(wrapped):
        tb.copy_into(batch[index], tensor)
    scale = [1 / (255 * s) for s in STD]
    offset = [-m / s for m, s in zip(MEAN, STD)]
    normalised = tb.convert(batch, "NCHW", "float32", scale, offset)
    x = torch.as_tensor(normalised, device="cuda")  # zero-copy (CUDA Array Interface)
    assert x.data_ptr() == normalised.data_ptr and x.shape == (len(arrays), 3, H, W)
    reference = torch.as_tensor(numpy.stack(arrays), device="cuda").permute(0, 3, 1, 2).float() / 255
    reference = (reference - torch.tensor(MEAN, device="cuda")[:, None, None]) / torch.tensor(STD, device="cuda")[:, None, None]
    torch.testing.assert_close(x, reference, rtol=1e-5, atol=1e-5)


def test_jpeg_decodes_within_codec_tolerance():
    array = synthetic(3)
    image = nvimgcodec.Decoder().decode(nvimgcodec.Encoder().encode(array, "jpeg"))
    tensor = tb.as_tensor(image, "HWC")
    planar = numpy.asarray(tb.reformat(tensor, "CHW").cpu()).astype(int)
    assert numpy.abs(planar - array.transpose(2, 0, 1).astype(int)).mean() < 4


def test_a_tensorbridge_tensor_encodes_back_to_the_same_image():
    array = synthetic(5)
    planar = tb.as_tensor(array.transpose(2, 0, 1).copy(), "CHW").cuda()
    interleaved = tb.reformat(planar, "HWC")  # on the GPU, what the encoder takes
    encoded = nvimgcodec.Encoder().encode(interleaved, "png")
    decoded = nvimgcodec.Decoder().decode(encoded)
    numpy.testing.assert_array_equal(numpy.asarray(tb.as_tensor(decoded).cpu()), array)
