#!/usr/bin/env bash
# The frameworks the GPU machine lacks (it reaches no package index), fetched here and installed
# there, and the framework GPU tests run in one command.
#
#   scripts/framework-wheels.sh fetch   # here: target/framework-wheels/ gets the nvImageCodec and
#                                       # PyNvVideoCodec wheels, PyCUDA's sdist and its build deps
#   scripts/framework-wheels.sh test    # there, carrying target/framework-wheels,
#                                       # .prebuilt/libtensorbridge.so and .prebuilt/_native.abi3.so
#                                       # (the whole .prebuilt is too big beside the wheels):
#                                       # installs them with python3 -m pip (PyCUDA built from its
#                                       # sdist, about 2 minutes), runs the framework tests and
#                                       # examples/python/frameworks/, and fails on any skip
#
# Wheels are for CPython 3.12 on manylinux_2_28 x86_64 (the GPU machine's Python); set
# TB_WHEEL_PYTHON to fetch for another version.
set -euo pipefail  # pipefail: a failed pytest fails through tee
cd "$(dirname "$0")/.."
wheels=target/framework-wheels
case "${1:-}" in
  fetch)
    mkdir -p "$wheels"
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version "${TB_WHEEL_PYTHON:-3.12}" \
      --platform manylinux_2_28_x86_64 --platform any -d "$wheels" nvidia-nvimgcodec-cu13 pynvvideocodec \
      setuptools wheel pytools platformdirs mako markupsafe typing_extensions siphash24
    # PyCUDA has only an sdist, whose metadata step needs CUDA: take the file itself from PyPI.
    python3 - "$wheels" <<'PY'
import json, sys, urllib.request
release = json.load(urllib.request.urlopen("https://pypi.org/pypi/pycuda/json"))
url = next(u["url"] for u in release["urls"] if u["packagetype"] == "sdist")
urllib.request.urlretrieve(url, f"{sys.argv[1]}/{url.rsplit('/', 1)[1]}")
PY
    ls -la "$wheels"
    ;;
  test)
    # Wheels of modules the machine lacks (it has its own setuptools, typing_extensions …).
    for wheel in "$wheels"/*.whl; do
      module=$(basename "$wheel" | cut -d- -f1)
      case "$module" in
        nvidia_nvimgcodec_cu13) module=nvidia.nvimgcodec ;;
        pynvvideocodec) module=PyNvVideoCodec ;;
      esac
      python3 -c "import $module" 2>/dev/null || python3 -m pip install -q --no-deps --no-index "$wheel"
    done
    python3 -c "import pycuda" 2>/dev/null ||
      python3 -m pip install -q --no-deps --no-index --no-build-isolation "$wheels"/pycuda-*.tar.gz
    python3 -c "import nvidia.nvimgcodec as n; print('nvImageCodec', n.__version__)"
    python3 -c "import PyNvVideoCodec as n; print('PyNvVideoCodec', getattr(n, '__version__', '?'))"
    python3 -c "import pycuda; print('PyCUDA', pycuda.VERSION_TEXT)"
    [ -f .prebuilt/_native.abi3.so ] && cp .prebuilt/_native.abi3.so python/tensorbridge/
    export TENSORBRIDGE_LIBRARY="$PWD/.prebuilt/libtensorbridge.so"
    failed=0
    python3 -m pytest -q -rs python/tests/test_gpu_cuda_python.py python/tests/test_gpu_nvimgcodec.py \
      python/tests/test_gpu_pynvvideocodec.py python/tests/test_gpu_pycuda.py | tee /tmp/framework-tests.log ||
      failed=1
    if grep -q '^SKIPPED' /tmp/framework-tests.log; then
      echo "framework-wheels: a framework test skipped on the GPU machine (see above): it proved nothing" >&2
      failed=1
    fi
    # The examples run even after a failed test: each says something of its own.
    for example in examples/python/frameworks/*.py; do
      echo "== $example"
      python3 "$example" || failed=1
    done
    exit $failed
    ;;
  *)
    sed -n '2,15p' "$0"
    exit 2
    ;;
esac
