"""Chooses the frame kernel's tiling on the machine at hand: runs bench/frames.py --ours-only once
per tiling (TENSORBRIDGE_FRAME_KERNEL = pixels per thread, rows per thread, streaming stores),
prints each run, ranks the tilings by the geometric mean of their copy ratios over every row, then
runs the full side-by-side bench (CV-CUDA, PyTorch) twice with the best one. The winner becomes
the default in src/ops/gpu_frame.rs (bench/RESULTS.md records the sweep).

    python3 bench/frame_tiling_sweep.py    # TB_TILINGS="8,1,0 4,1,1" sweeps only those
"""
import math
import os
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent / "frames.py"
TILINGS = os.environ.get("TB_TILINGS", "8,2,0 4,1,0 8,1,0 16,1,0 4,1,1 8,1,1 8,2,1").split()
RATIO = re.compile(r"\((\d+\.\d+)\)")
BACK_TO_BACK = re.compile(r"\(ratio (\d+\.\d+)\)")


def run(tiling, *arguments):
    environment = dict(os.environ, TENSORBRIDGE_FRAME_KERNEL=tiling)
    done = subprocess.run([sys.executable, str(BENCH), *arguments], env=environment, capture_output=True, text=True)
    print(done.stdout, done.stderr[-2000:], sep="", flush=True)
    return done.stdout


def score(output):
    """Geometric mean of the tensorbridge ratios: the first parenthesised ratio of each table row
    is tensorbridge's, plus the back-to-back ratio."""
    ratios = [float(m.group(1)) for line in output.splitlines() if line.startswith("| ") and RATIO.search(line)
              for m in [RATIO.search(line.split("|")[3])] if m]
    ratios += [float(m.group(1)) for m in BACK_TO_BACK.finditer(output)]
    return math.exp(sum(math.log(r) for r in ratios) / len(ratios)) if ratios else 0.0


def main():
    scores = {tiling: score(run(tiling, "--ours-only")) for tiling in TILINGS}
    print("| tiling (pixels, rows, streaming) | geometric mean of copy ratios |\n| --- | ---: |")
    for tiling, value in sorted(scores.items(), key=lambda item: -item[1]):
        print(f"| {tiling} | {value:.3f} |")
    best = max(scores, key=scores.get)
    print(f"\nbest: {best}; the full comparison, twice:\n", flush=True)
    for _ in range(2):
        run(best)


if __name__ == "__main__":
    main()
