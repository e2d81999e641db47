#!/usr/bin/env bash
# Installs what building and testing tensorbridge needs on a fresh Debian machine with Rust:
# cmake, a C/C++ compiler, GoogleTest, pkg-config, libabigail's abidw/abidiff (Debian), the CUDA
# runtime headers and libcudart (.deps/cuda) and NVRTC (.deps/nvrtc) from PyPI — no CUDA toolkit
# or GPU needed. Idempotent and quiet when done.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v cmake >/dev/null || need_apt+=(cmake)
command -v c++ >/dev/null || need_apt+=(g++)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
[ -f /usr/include/gtest/gtest.h ] || need_apt+=(libgtest-dev)
command -v abidw >/dev/null || need_apt+=(abigail-tools) # abidw/abidiff for scripts/abi-check.sh
# Python's headers, for the Python package's compiled fast path (scripts/build-python-native.sh).
python3 -c "import os, sys, sysconfig; sys.exit(not os.path.isfile(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))" ||
  need_apt+=(python3-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} (apt-get)"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# CUDA 13.0 runtime headers + libcudart.so.13, pinned to the GPU machine's CUDA version.
cuda_root=.deps/cuda/nvidia/cu13
if [ ! -f "$cuda_root/include/cuda_runtime_api.h" ] || [ ! -f "$cuda_root/include/crt/host_config.h" ]; then
  echo "setup: installing CUDA runtime headers from PyPI into .deps/cuda"
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-deps --target .deps/cuda \
    "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-crt==13.0.*"
fi
# NVRTC 13.0 (no GPU needed) so the tests can compile every kernel for sm_90.
if [ ! -f .deps/nvrtc/nvidia/cu13/lib/libnvrtc.so.13 ]; then
  echo "setup: installing NVRTC from PyPI into .deps/nvrtc"
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check --no-deps \
    --target .deps/nvrtc "nvidia-cuda-nvrtc==13.0.*"
fi
# NumPy and pytest for the Python package's tests; setuptools builds its compiled fast path;
# ml_dtypes is the reference of the float8 tests.
if ! python3 -c "import numpy, pytest, setuptools, ml_dtypes" 2>/dev/null; then
  echo "setup: installing numpy, pytest, setuptools and ml_dtypes (pip)"
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check numpy pytest setuptools ml_dtypes
fi
# mypy (pinned: a new release must not turn the type checks red by itself) for python/tests/test_typing.py
# and the wheel check's type check of the installed package.
if ! python3 -c "import mypy.version, sys; sys.exit(mypy.version.__version__ != '2.4.1')" 2>/dev/null; then
  echo "setup: installing mypy (pip)"
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check "mypy==2.4.1"
fi
echo "setup: ready (cmake $(cmake --version | head -1 | awk '{print $3}'), CUDA headers in $cuda_root)"
