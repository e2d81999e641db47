#!/usr/bin/env bash
# Builds everything (the Rust library through CMake, the C/C++ tests and examples) and runs the
# demo, which says whether it took the GPU or the CPU-only path.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release \
  -DTENSORBRIDGE_CUDA_ROOT="$PWD/.deps/cuda/nvidia/cu13" >/dev/null
cmake --build build -j "$(nproc)"
echo "== demo"
./build/examples/tb_demo
