"""CUDA IPC per frame, producer process -> consumer process, steady state (the IPC issue's
benchmark): a 1080p uint8 HWC frame on the GPU, per frame export (`Tensor.share`) + send through a
multiprocessing Pipe + import (`from_shared`) + the first kernel in the consumer (HWC -> CHW
reformat), timed end to end in the consumer from the producer's timestamp taken before the
export; for a frame in cudaMalloc memory (PyTorch's allocator) and in tensorbridge's own pool
(`tensorbridge.empty`; its pool's file descriptor travels once, with the first frame). Beside
them: the same frame sent as a device -> host -> shared memory -> device copy, and as a CUDA
tensor through torch.multiprocessing; the helpers' path (send_shared / receive_shared over a Unix
socket, into an output reused from frame to frame) with a producer that writes each frame, writes
and then waits for its stream, or stays idle on the GPU; and where the time goes (the import alone, the kernel and
sync, the export alone, an empty Pipe round trip). Median over 200 frames after 20 warm-up.

    python3 bench/ipc.py      # needs torch and a GPU
"""
import socket
import statistics
import sys
import time
from multiprocessing import reduction
from pathlib import Path

import torch
import torch.multiprocessing as torch_mp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
import tensorbridge as tb  # noqa: E402

FRAMES, WARMUP, SHAPE = 200, 20, (1080, 1920, 3)


def median_us(times):
    return statistics.median(times[WARMUP:]) * 1e6


def consume_tensorbridge(connection):
    import tensorbridge

    stream = torch.cuda.Stream()
    total, imports, kernels = [], [], []
    for _ in range(FRAMES + WARMUP):
        sent, descriptor, pool_fd = connection.recv()
        started = time.perf_counter()
        fd = pool_fd.detach() if pool_fd is not None else None
        frame = tensorbridge.from_shared(descriptor, stream=stream, pool_fd=fd)
        imported = time.perf_counter()
        planar = tensorbridge.reformat(frame, "CHW", stream=stream)  # the exporter's layout travels
        stream.synchronize()
        done = time.perf_counter()
        total.append(done - sent)
        imports.append(imported - started)
        kernels.append(done - imported)
        del frame, planar  # the release ends the producer's hold (after the kernel)
        connection.send(True)
    connection.send((median_us(total), median_us(imports), median_us(kernels)))


def consume_socket(channel, sent_at, results):
    """The helpers' path: receive_shared on a Unix socket (the pool's descriptor rides along),
    then the first kernel into an output reused from frame to frame (steady state)."""
    import tensorbridge

    stream = torch.cuda.Stream()
    planar, total = None, []
    for _ in range(FRAMES + WARMUP):
        frame = tensorbridge.receive_shared(channel, stream=stream)
        if planar is None:
            planar = tensorbridge.empty((SHAPE[2], SHAPE[0], SHAPE[1]), "uint8", "CHW", device="cuda")
        tensorbridge.reformat_into(planar, frame, stream=stream)
        stream.synchronize()
        total.append(time.perf_counter() - sent_at.value)
        del frame
        channel.send(b"k")
    results.send(median_us(total))


def echo(connection):
    for _ in range(FRAMES + WARMUP):
        connection.send(connection.recv())


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
    connection.send(median_us(times))


def consume_torch(queue, answers):
    times = []
    for _ in range(FRAMES + WARMUP):
        sent, frame = queue.get()
        frame.permute(2, 0, 1).contiguous()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - sent)
        del frame
        answers.put(True)
    answers.put(median_us(times))


def run_tensorbridge(context, wrapped, frame, touch=True):
    """Frames of `wrapped` (over `frame`, a torch view) to a consumer process: its medians. With
    `touch`, the producer writes the frame (a kernel) before each export, as a decoder would."""
    ours, theirs = context.Pipe()
    process = context.Process(target=consume_tensorbridge, args=(theirs,))
    process.start()
    for index in range(FRAMES + WARMUP):
        if touch:
            frame.add_(1)
        started = time.perf_counter()
        descriptor = wrapped.share(stream=torch.cuda.current_stream())  # export included in the time
        fd = tb.shared_pool_fd(descriptor) if index == 0 else None
        ours.send((started, descriptor, None if fd is None else reduction.DupFd(fd)))
        ours.recv()
    result = ours.recv()
    process.join()
    return result


def run_socket(context, wrapped, frame, producer):
    """Frames through tb.send_shared / tb.receive_shared: the consumer's median. `producer`:
    "writes" (a kernel on the frame before each export: the consumer waits on its event),
    "syncs" (the same, then the producer's host waits for its stream: no event travels), or
    "idle" (no GPU work of the producer's between frames)."""
    ours, theirs = socket.socketpair()
    sent_at = context.Value("d", lock=False)
    answers, results = context.Pipe()
    process = context.Process(target=consume_socket, args=(theirs, sent_at, results))
    process.start()
    theirs.close()
    stream = torch.cuda.current_stream()
    for _ in range(FRAMES + WARMUP):
        if producer != "idle":
            frame.add_(1)
        sent_at.value = time.perf_counter()
        if producer == "syncs":
            stream.synchronize()
        tb.send_shared(ours, wrapped, stream=stream)
        ours.recv(1)
    result = answers.recv()
    process.join()
    ours.close()
    return result


def main():
    context = torch_mp.get_context("spawn")
    frame = torch.randint(0, 256, SHAPE, dtype=torch.uint8, device="cuda")  # cudaMalloc memory
    wrapped = tb.as_tensor(frame, "HWC")
    print(f"device: {torch.cuda.get_device_name(0)}; torch {torch.__version__}; 1080p uint8 HWC frame, "
          f"{FRAMES} frames after {WARMUP}\n")
    print("| path, per frame (send -> first kernel done in the consumer) | median µs | of which import "
          "| of which kernel + sync |\n| --- | ---: | ---: | ---: |")
    total, imports, kernels = run_tensorbridge(context, wrapped, frame)
    print(f"| tensorbridge, cudaMalloc frame: share + Pipe + from_shared + reformat | {total:.1f} | "
          f"{imports:.1f} | {kernels:.1f} |")
    pooled = tb.empty(SHAPE, "uint8", "HWC", device="cuda")
    total, imports, kernels = run_tensorbridge(context, pooled, torch.as_tensor(pooled.cuda(), device="cuda"))
    print(f"| tensorbridge, pool frame (tensorbridge.empty): the same | {total:.1f} | {imports:.1f} | "
          f"{kernels:.1f} |")
    total, imports, kernels = run_tensorbridge(context, wrapped, frame, touch=False)
    print(f"| tensorbridge, cudaMalloc frame, producer idle on the GPU between frames | {total:.1f} | "
          f"{imports:.1f} | {kernels:.1f} |")
    for memory, shared, view in (("cudaMalloc", wrapped, frame),
                                 ("pool", pooled, torch.as_tensor(pooled.cuda(), device="cuda"))):
        for producer in ("writes", "syncs", "idle"):
            print(f"| tensorbridge, {memory} frame, send_shared + receive_shared (Unix socket) + reformat_into "
                  f"a reused output; producer {producer} | {run_socket(context, shared, view, producer):.1f} | | |")

    shared = torch.empty(SHAPE, dtype=torch.uint8).share_memory_()
    ours, theirs = context.Pipe()
    process = context.Process(target=consume_copy, args=(theirs, shared))
    process.start()
    for _ in range(FRAMES + WARMUP):
        started = time.perf_counter()
        shared.copy_(frame)  # device -> host (shared memory), included in the time
        ours.send(started)
        ours.recv()
    print(f"| device -> shared host memory -> device copy + permute | {ours.recv():.1f} | | |")
    process.join()

    queue, answers = context.Queue(), context.Queue()
    process = context.Process(target=consume_torch, args=(queue, answers))
    process.start()
    for _ in range(FRAMES + WARMUP):
        queue.put((time.perf_counter(), frame))
        answers.get()
    print(f"| torch.multiprocessing CUDA tensor + permute | {answers.get():.1f} | | |")
    process.join()

    ours, theirs = context.Pipe()
    process = context.Process(target=echo, args=(theirs,))
    process.start()
    round_trips = []
    for _ in range(FRAMES + WARMUP):
        started = time.perf_counter()
        ours.send(b"x" * 512)
        ours.recv()
        round_trips.append(time.perf_counter() - started)
    process.join()
    exports = []
    for _ in range(FRAMES + WARMUP):
        started = time.perf_counter()
        descriptor = wrapped.share(stream=torch.cuda.current_stream())
        exports.append(time.perf_counter() - started)
        tb.revoke_shared(descriptor)
    stream, local = torch.cuda.Stream(), []
    for _ in range(FRAMES + WARMUP):
        started = time.perf_counter()
        tb.reformat(wrapped, "CHW", stream=stream)
        stream.synchronize()
        local.append(time.perf_counter() - started)
    print(f"\nparts: export (share) {median_us(exports):.1f} µs; an empty Pipe round trip of 512 bytes "
          f"{median_us(round_trips):.1f} µs; reformat + sync in one process, no IPC "
          f"{median_us(local):.1f} µs")


if __name__ == "__main__":
    main()
