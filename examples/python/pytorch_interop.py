"""The seeds' PyTorch flow: torch -> tensorbridge (zero-copy) -> reformat on the GPU -> torch
(zero-copy through __cuda_array_interface__), and .clone() where an independent buffer is wanted.

    python3 examples/python/pytorch_interop.py
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))
import torch  # noqa: E402

import tensorbridge  # noqa: E402

# PyTorch to tensorbridge: the tensor must be on the GPU; no copy is made.
image = torch.randint(0, 256, (480, 640, 3), dtype=torch.uint8, device="cuda")
t = tensorbridge.as_tensor(image, "HWC")
print("wrapped:", t, "same memory:", t.data_ptr == image.data_ptr())

# Convert the layout on the GPU (one kernel), and normalise into float32 CHW (one kernel).
planar = tensorbridge.reformat(t, "CHW")
normalized = tensorbridge.convert(t, "CHW", "float32", scale=[1 / 58.395, 1 / 57.12, 1 / 57.375],
                                  offset=[-123.675 / 58.395, -116.28 / 57.12, -103.53 / 57.375])

# tensorbridge to PyTorch: zero-copy through the CUDA Array Interface.
chw = torch.as_tensor(planar.cuda(), device="cuda")
print("back in torch:", chw.shape, chw.dtype, "shares tensorbridge's memory:", chw.data_ptr() == planar.data_ptr)
assert torch.equal(chw, image.permute(2, 0, 1))
reference = (image.permute(2, 0, 1).float() - torch.tensor([123.675, 116.28, 103.53], device="cuda").view(3, 1, 1)) \
    / torch.tensor([58.395, 57.12, 57.375], device="cuda").view(3, 1, 1)
torch.testing.assert_close(torch.as_tensor(normalized, device="cuda"), reference, rtol=2e-6, atol=2e-6)

# .clone() when the result must not share memory with tensorbridge's tensor (costs a copy).
independent = torch.as_tensor(planar.cuda(), device="cuda").clone()
print("clone is independent:", independent.data_ptr() != planar.data_ptr)

# DLPack works both ways too.
print("DLPack round trip zero-copy:", torch.from_dlpack(tensorbridge.as_tensor(image)).data_ptr() == image.data_ptr())
