"""CUDA IPC per frame, producer process -> consumer process, steady state (the IPC issue's
benchmark): a 1080p uint8 HWC frame in the producer's cudaMalloc memory, per frame export
(`Tensor.share`) + send through a multiprocessing Pipe + import (`from_shared`) + the first kernel
in the consumer (HWC -> CHW reformat), timed end to end in the consumer from the producer's
send timestamp; beside the same frame sent as a device -> host -> shared memory -> device copy,
and as a CUDA tensor through torch.multiprocessing. Median over 200 frames after 20 warm-up.

    python3 bench/ipc.py      # needs torch and a GPU
"""
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.multiprocessing as torch_mp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
import tensorbridge as tb  # noqa: E402

FRAMES, WARMUP, SHAPE = 200, 20, (1080, 1920, 3)


def consume_tensorbridge(connection):
    import tensorbridge

    stream = torch.cuda.Stream()
    held = None  # keeping the last import keeps the mapping open: later imports reuse it
    times = []
    for _ in range(FRAMES + WARMUP):
        sent, descriptor = connection.recv()
        frame = tensorbridge.from_shared(descriptor, stream=stream)
        planar = tensorbridge.reformat(frame, "CHW", stream=stream)  # the exporter's layout travels
        stream.synchronize()
        times.append(time.perf_counter() - sent)
        held = (frame, planar)
        connection.send(True)  # the producer may reuse the frame's memory
    del held
    connection.send(statistics.median(times[WARMUP:]) * 1e6)


def consume_copy(connection, shared):
    stream = torch.cuda.Stream()
    times = []
    for _ in range(FRAMES + WARMUP):
        sent = connection.recv()
        with torch.cuda.stream(stream):
            frame = shared.to("cuda", non_blocking=True)
            frame.permute(2, 0, 1).contiguous()
        stream.synchronize()
        times.append(time.perf_counter() - sent)
        connection.send(True)
    connection.send(statistics.median(times[WARMUP:]) * 1e6)


def consume_torch(queue, answers):
    times = []
    for _ in range(FRAMES + WARMUP):
        sent, frame = queue.get()
        frame.permute(2, 0, 1).contiguous()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - sent)
        del frame
        answers.put(True)
    answers.put(statistics.median(times[WARMUP:]) * 1e6)


def main():
    context = torch_mp.get_context("spawn")
    frame = torch.randint(0, 256, SHAPE, dtype=torch.uint8, device="cuda")  # cudaMalloc memory
    wrapped = tb.as_tensor(frame, "HWC")
    print(f"device: {torch.cuda.get_device_name(0)}; torch {torch.__version__}; 1080p uint8 HWC frame, "
          f"{FRAMES} frames after {WARMUP}\n")
    print("| path, per frame (send -> first kernel done in the consumer) | median µs |\n| --- | ---: |")

    ours, theirs = context.Pipe()
    process = context.Process(target=consume_tensorbridge, args=(theirs,))
    process.start()
    for _ in range(FRAMES + WARMUP):
        frame.add_(1)
        started = time.perf_counter()
        descriptor = wrapped.share(stream=torch.cuda.current_stream())  # export included in the time
        ours.send((started, descriptor))
        ours.recv()
    print(f"| tensorbridge share + Pipe + from_shared + reformat | {ours.recv():.1f} |")
    process.join()

    shared = torch.empty(SHAPE, dtype=torch.uint8).share_memory_()
    ours, theirs = context.Pipe()
    process = context.Process(target=consume_copy, args=(theirs, shared))
    process.start()
    for _ in range(FRAMES + WARMUP):
        started = time.perf_counter()
        shared.copy_(frame)  # device -> host (shared memory), included in the time
        ours.send(started)
        ours.recv()
    print(f"| device -> shared host memory -> device copy + permute | {ours.recv():.1f} |")
    process.join()

    queue, answers = context.Queue(), context.Queue()
    process = context.Process(target=consume_torch, args=(queue, answers))
    process.start()
    for _ in range(FRAMES + WARMUP):
        queue.put((time.perf_counter(), frame))
        answers.get()
    print(f"| torch.multiprocessing CUDA tensor + permute | {answers.get():.1f} |")
    process.join()


if __name__ == "__main__":
    main()
