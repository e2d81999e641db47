#!/usr/bin/env bash
# Builds the Python package's compiled fast path (python/tensorbridge/_native.c, stable ABI) in
# place, so that python/ on sys.path imports it, and checks that it was built. Needs a C compiler
# and Python's headers (python3-dev); pip install ./python builds the same extension.
set -euo pipefail
cd "$(dirname "$0")/../python"
rm -f tensorbridge/_native*.so  # a failed build must not leave an older module in place
python3 setup.py -q build_ext --inplace 2>&1 | grep -v -e _BetaConfiguration -e 'warnings.warn(msg' || true
[ -f tensorbridge/_native.abi3.so ] || {
    echo "build-python-native: tensorbridge._native was not built (a C compiler and python3-dev are needed)" >&2
    exit 1
  }
