"""Two processes, one GPU memory: a producer process generates frames on the GPU (into buffers
from tensorbridge's pool) and puts them in a multiprocessing Queue — tensorbridge tensors pickle
through CUDA IPC, no copy — and a consumer process converts each to a normalised float32 CHW
tensor with tensorbridge and feeds a PyTorch model. Checked along the way: the consumer's frame is
device memory of the same GPU holding exactly the producer's pixels, and a mark the consumer
writes into it is what the producer reads back: one memory, two processes.

    python3 examples/python/ipc_frames.py
"""
import multiprocessing
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "python"))

FRAMES, SHAPE = 8, (480, 640, 3)
MEAN, STD = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)


def produce(frames, marks, done):
    import torch

    import tensorbridge

    buffers = [tensorbridge.empty(SHAPE, "uint8", "HWC", device="cuda") for _ in range(2)]
    views = [torch.as_tensor(b.cuda(), device="cuda") for b in buffers]
    for index in range(FRAMES):
        view = views[index % 2]
        view.copy_(torch.randint(0, 255, SHAPE, dtype=torch.uint8, device="cuda"))  # "decode"
        torch.cuda.synchronize()
        checksum = int(view.sum(dtype=torch.int64).item())
        frames.put((index, buffers[index % 2], checksum))
        marked = marks.get()  # the consumer wrote 255 at [0, 0, 0] of this frame
        torch.cuda.synchronize()
        assert int(view[0, 0, 0].item()) == 255 == marked, "the consumer's write is seen here"
    frames.put(None)
    done.get()  # keep the buffers until the consumer has finished with them


def consume(frames, marks, done):
    import torch

    import tensorbridge

    model = torch.nn.Conv2d(3, 8, 3, padding=1).cuda().eval()
    scale = [1 / s for s in STD]
    offset = [-m / s for m, s in zip(MEAN, STD)]
    while (item := frames.get()) is not None:
        index, frame, checksum = item
        assert frame.device == tensorbridge.Device("cuda", 0) and frame.layout == "HWC"
        pixels = torch.as_tensor(frame.cuda(), device="cuda")
        assert pixels.data_ptr() == frame.data_ptr, "torch sees the imported memory itself"
        assert int(pixels.sum(dtype=torch.int64).item()) == checksum, "the producer's pixels, no copy"
        batch = tensorbridge.convert(frame, "CHW", "float32", scale, offset)
        with torch.no_grad():
            features = model(torch.as_tensor(batch.cuda(), device="cuda").unsqueeze(0))
        pixels[0, 0, 0] = 255
        torch.cuda.synchronize()
        print(f"frame {index}: {tuple(frame.shape)} uint8 from the producer -> {tuple(features.shape)} "
              f"features; mean {features.mean().item():+.4f}")
        del pixels, frame, batch  # the producer's hold on this export ends here
        marks.put(255)
    done.put(True)


if __name__ == "__main__":
    context = multiprocessing.get_context("spawn")
    frames, marks, done = context.Queue(), context.Queue(), context.Queue()
    producer = context.Process(target=produce, args=(frames, marks, done))
    consumer = context.Process(target=consume, args=(frames, marks, done))
    producer.start()
    consumer.start()
    consumer.join(timeout=300)
    producer.join(timeout=300)
    assert producer.exitcode == 0 and consumer.exitcode == 0, (producer.exitcode, consumer.exitcode)
    print("producer and consumer shared", FRAMES, "frames without a copy")
