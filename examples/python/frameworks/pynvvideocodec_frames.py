"""PyNvVideoCodec -> tensorbridge -> PyTorch: decode a clip with NVDEC (given the primary context
and a real stream, so decode and conversion are ordered on one stream), and turn each NV12 frame
into a normalised float32 NCHW model input in one pass, before the next decode call reuses the
frame's memory — where CV-CUDA's sample chains cvtcolor, convertto, normalize and reformat.

    python3 examples/python/frameworks/pynvvideocodec_frames.py [clip.mp4]   # needs pynvvideocodec,
                                                                              # torch, cuda-bindings
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "python"))
import PyNvVideoCodec as nvc  # noqa: E402
import torch  # noqa: E402
from cuda.bindings import driver  # noqa: E402

import tensorbridge as tb  # noqa: E402

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
clip = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "python" / "tests" / "data" / "clip_h264_128x96.mp4")

driver.cuInit(0)
_, device = driver.cuDeviceGet(0)
_, context = driver.cuDevicePrimaryCtxRetain(device)  # the context torch and tensorbridge use
stream = torch.cuda.Stream()
decoder = nvc.SimpleDecoder(clip, gpu_id=0, cuda_context=int(context), cuda_stream=stream.cuda_stream,
                            use_device_memory=True, output_color_type=nvc.OutputColorType.NATIVE)

model = torch.nn.Conv2d(3, 8, 3, padding=1).cuda()  # stands in for a network
inputs = []
for index in range(len(decoder)):
    frame = decoder[index]  # NV12, (3H/2, W) uint8 through DLPack; planes through frame.cuda()
    inputs.append(tb.convert_frames(frame, "CHW", "float32", [1 / (255 * s) for s in STD],
                                    [-m / s for m, s in zip(MEAN, STD)], standard="bt709", stream=stream))
with torch.cuda.stream(stream):
    batch = torch.stack([torch.as_tensor(t.cuda(), device="cuda") for t in inputs])
    features = model(batch)
stream.synchronize()
print(f"{len(inputs)} frames of {tuple(batch.shape[1:])} -> features {tuple(features.shape)}; "
      f"input mean {batch.mean().item():+.3f}, std {batch.std().item():.3f}")
