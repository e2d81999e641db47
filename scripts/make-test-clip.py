#!/usr/bin/env python3
"""Makes the H.264 test clip of the video tests and its reference frames: the GPU machine has
video decoders but no encoder, so the clip is encoded here with the ffmpeg of the imageio-ffmpeg
wheel (libx264), and the references are that ffmpeg's own CPU decode of the clip: to RGB (ffmpeg's
conversion), and to NV12 (the decoded samples themselves, which every conforming H.264 decoder,
NVDEC included, reproduces exactly).

    pip install imageio-ffmpeg && python3 scripts/make-test-clip.py

Writes python/tests/data/clip_h264_128x96.mp4 and clip_h264_128x96_rgb.npz: "frames" (frames x H x W x 3
RGB) and "nv12" (frames x 3H/2 x W samples).
"""
import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy

FRAMES, H, W = 12, 96, 128
DATA = Path(__file__).resolve().parent.parent / "python" / "tests" / "data"
CLIP = DATA / "clip_h264_128x96.mp4"


def synthetic_frames():
    """A gradient that moves a little each frame: smooth, so the codec keeps it close."""
    y, x = numpy.mgrid[0:H, 0:W]
    return numpy.stack([numpy.stack([(x * 2 + 4 * t) % 256, (y * 2 + 3 * t) % 256, (x + y + 8 * t) % 256], -1)
                        for t in range(FRAMES)]).astype(numpy.uint8)


def main():
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    DATA.mkdir(parents=True, exist_ok=True)
    source = synthetic_frames()
    subprocess.run([ffmpeg, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{W}x{H}",
                    "-r", "30", "-i", "-", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-preset", "veryslow",
                    "-crf", "12", "-bf", "0", "-colorspace", "bt709", "-color_primaries", "bt709",
                    "-color_trc", "bt709", "-color_range", "tv", str(CLIP)], input=source.tobytes(), check=True)
    decoded = subprocess.run([ffmpeg, "-loglevel", "error", "-i", str(CLIP), "-f", "rawvideo", "-pix_fmt", "rgb24",
                              "-"], capture_output=True, check=True).stdout
    reference = numpy.frombuffer(decoded, numpy.uint8).reshape(-1, H, W, 3)
    samples = subprocess.run([ffmpeg, "-loglevel", "error", "-i", str(CLIP), "-f", "rawvideo", "-pix_fmt", "nv12",
                              "-"], capture_output=True, check=True).stdout
    nv12 = numpy.frombuffer(samples, numpy.uint8).reshape(-1, H * 3 // 2, W)
    numpy.savez_compressed(DATA / "clip_h264_128x96_rgb.npz", frames=reference, nv12=nv12)
    print(f"{CLIP.name}: {CLIP.stat().st_size} bytes, {len(reference)} frames; mean |decoded - source| = "
          f"{numpy.abs(reference.astype(int) - source.astype(int)).mean():.2f}")


if __name__ == "__main__":
    main()
