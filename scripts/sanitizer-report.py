#!/usr/bin/env python3
"""Sorts the reports of a compute-sanitizer log by whose code they come from.

    sanitizer-report.py LOG [--quiet]

A report is tensorbridge's when any of its lines (the device frame, the host backtrace) names the
library (libtensorbridge, the Python package's _native module, a `tensorbridge` path) or one of its
kernels (`tb_*`); any other report belongs to the process's other code (PyTorch, CuPy, the test's
own CUDA calls). Prints the counts, every distinct report header with its count, and the first
tensorbridge reports in full. Exits 1 when a report is tensorbridge's, 0 otherwise (also when the
log holds none), 2 when the log cannot be read.
"""
import re
import sys
from collections import Counter

PREFIX = "========= "
# Lines of the tool's own, not reports.
NOT_REPORTS = re.compile(r"(ERROR|LEAK|RACECHECK) SUMMARY|^COMPUTE-SANITIZER|^Target application")
OURS = re.compile(r"libtensorbridge|_native\.abi3|tensorbridge|\btb_[a-z0-9_]+")
# Addresses, sizes and thread/block indices differ between otherwise equal reports.
VARYING = re.compile(r"0x[0-9a-f]+|\(\d+,\d+,\d+\)|\d+")


def reports(lines):
    """Each report as a list of its lines (without the prefix), in log order."""
    current = None
    for line in lines:
        if not line.startswith("========="):
            continue
        text = line[len(PREFIX):].rstrip() if line.startswith(PREFIX) else ""
        if text and not text.startswith(" ") and not NOT_REPORTS.search(text):
            if current:
                yield current
            current = [text]
        elif text.startswith(" ") and current is not None:
            current.append(text.strip())
        elif not text and current:
            yield current
            current = None
    if current:
        yield current


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    try:
        with open(argv[1], errors="replace") as log:
            found = list(reports(log))
    except OSError as error:
        print(f"sanitizer-report: {error}")
        return 2
    ours, others = [], []
    for report in found:
        (ours if any(OURS.search(line) for line in report) else others).append(report)
    print(f"sanitizer reports in {argv[1]}: {len(found)} ({len(ours)} naming tensorbridge, "
          f"{len(others)} from other code)")
    for label, group in (("tensorbridge", ours), ("other code", others)):
        headers = Counter(VARYING.sub("N", r[0]) for r in group)
        for header, count in headers.most_common(10):
            print(f"  [{label}] {count} x {header}")
    if "--quiet" not in argv:
        for report in ours[:3]:
            print("---- a tensorbridge report")
            print("\n".join(report[:25]))
    return 1 if ours else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
