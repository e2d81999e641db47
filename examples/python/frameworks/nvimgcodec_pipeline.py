"""nvImageCodec -> tensorbridge -> PyTorch, the pipeline of CV-CUDA's nvImageCodec sample with
tensorbridge in CV-CUDA's place: a batch of JPEGs (encoded here from synthetic images, nothing
downloaded) decoded straight into GPU memory, wrapped without copying (the decoder's stream is
honoured), batched, converted uint8 HWC -> normalised float32 NCHW in one pass, handed to PyTorch;
then one result encoded back to PNG.

    python3 examples/python/frameworks/nvimgcodec_pipeline.py   # needs nvidia-nvimgcodec-cu13, torch
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "python"))
import numpy  # noqa: E402
import torch  # noqa: E402
from nvidia import nvimgcodec  # noqa: E402

import tensorbridge as tb  # noqa: E402

H, W, N = 224, 224, 8
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

y, x = numpy.mgrid[0:H, 0:W]
originals = [numpy.stack([(x + 9 * i) % 256, (y + 5 * i) % 256, (x + y) // 2 % 256], -1).astype(numpy.uint8)
             for i in range(N)]
jpegs = [nvimgcodec.Encoder().encode(image, "jpeg") for image in originals]

decoded = nvimgcodec.Decoder().decode(jpegs)  # GPU images with __cuda_array_interface__
batch = tb.empty((N, H, W, 3), "uint8", "NHWC", device="cuda")
for index, image in enumerate(decoded):
    tb.copy_into(batch[index], tb.as_tensor(image, "HWC"))  # zero-copy wrap, then one copy into the batch
normalised = tb.convert(batch, "NCHW", "float32", [1 / (255 * s) for s in STD], [-m / s for m, s in zip(MEAN, STD)])
model_input = torch.as_tensor(normalised, device="cuda")  # zero-copy
print("model input:", tuple(model_input.shape), model_input.dtype, "shares memory:",
      model_input.data_ptr() == normalised.data_ptr)

first = tb.reformat(batch[0], "HWC")  # any tensorbridge tensor the encoder can read (CUDA Array Interface)
png = nvimgcodec.Encoder().encode(first, "png")
again = numpy.asarray(tb.as_tensor(nvimgcodec.Decoder().decode(png)).cpu())
error = numpy.abs(again.astype(int) - originals[0].astype(int)).mean()
print(f"PNG of the decoded first image, decoded again: mean error {error:.2f} against the original (JPEG loss)")
assert error < 4
