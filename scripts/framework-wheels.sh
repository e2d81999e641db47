#!/usr/bin/env bash
# The framework wheels the GPU machine lacks (it reaches no package index), fetched here and
# installed there, and the framework GPU tests run in one command.
#
#   scripts/framework-wheels.sh fetch      # here: downloads into target/framework-wheels/
#   scripts/framework-wheels.sh test       # there (carry target/framework-wheels and .prebuilt):
#                                          # installs with python3 -m pip, runs the framework tests
#                                          # and examples/python/frameworks/
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
      --platform manylinux_2_28_x86_64 -d "$wheels" nvidia-nvimgcodec-cu13 pynvvideocodec
    ls -la "$wheels"
    ;;
  test)
    python3 -m pip install -q --no-deps --no-index "$wheels"/*.whl
    python3 -c "import nvidia.nvimgcodec as n; print('nvImageCodec', n.__version__)"
    python3 -c "import PyNvVideoCodec as n; print('PyNvVideoCodec', getattr(n, '__version__', '?'))"
    [ -f .prebuilt/_native.abi3.so ] && cp .prebuilt/_native.abi3.so python/tensorbridge/
    export TENSORBRIDGE_LIBRARY="$PWD/.prebuilt/libtensorbridge.so"
    python3 -m pytest -q -rs python/tests/test_gpu_cuda_python.py python/tests/test_gpu_nvimgcodec.py \
      python/tests/test_gpu_pynvvideocodec.py | tee /tmp/framework-tests.log
    if grep -q '^SKIPPED' /tmp/framework-tests.log; then
      echo "framework-wheels: a framework test skipped on the GPU machine (see above): it proved nothing" >&2
      exit 1
    fi
    for example in examples/python/frameworks/*.py; do
      echo "== $example"
      python3 "$example"
    done
    ;;
  *)
    sed -n '2,11p' "$0"
    exit 2
    ;;
esac
