#!/usr/bin/env bash
# Runs every test of tensorbridge on this machine: the header freshness check, Rust unit tests,
# the C/C++ suites under CTest (the cargo-driven CMake build), the fuzz replay, the ABI check
# against abi/, the Node.js example (where node exists) and the Python package's pytest. GPU
# tests skip, printing why, where no GPU is usable. Every stage runs even when an earlier one
# fails; the script fails at the end, naming the stages that failed.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

failed=()
stage() {
  local name=$1
  shift
  echo "== $name"
  "$@" || failed+=("$name")
}

header_check() {
  ./scripts/gen-header.sh --check
}

# The kernel-compile test fails when NVRTC cannot be loaded (it must not pass having compiled
# nothing): .deps/nvrtc provides it here.
cargo_tests() {
  TENSORBRIDGE_REQUIRE_NVRTC=1 LD_LIBRARY_PATH="$PWD/.deps/nvrtc/nvidia/cu13/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    cargo test --release --quiet
}

# The fault-injection build (a test-only cargo feature): the n-th allocation, handle or CUDA driver
# call fails, n walked over a whole host scenario (src/ffi/fault_walk.rs). The library built with
# the feature (its own target directory, so the release library is untouched) is what CTest's GPU
# fault walk links (cpp_tests/gpu_fault_walk_test.cpp: the switch's host test runs here, the walk
# skips without a GPU).
fault_library="$(./scripts/cargo-target-dir.sh)/fault/release/libtensorbridge.so"
fault_injection() {
  cargo test --release --quiet --features fault-injection --lib -- fault:: fault_walk &&
    cargo build --release --quiet --features fault-injection --lib \
      --target-dir "$(./scripts/cargo-target-dir.sh)/fault"
}

cpp_tests() {
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release \
    -DTENSORBRIDGE_CUDA_ROOT="$PWD/.deps/cuda/nvidia/cu13" \
    -DTENSORBRIDGE_FAULT_LIBRARY="$fault_library" >/dev/null &&
    cmake --build build -j "$(nproc)" &&
    ctest --test-dir build --output-on-failure -j "$(nproc)"
}

fuzz_replay() {
  # The fuzz targets' seeds, fixed regressions and a few thousand pseudo-random inputs, on stable
  # (libFuzzer itself runs from scripts/fuzz.sh, which needs nightly).
  LD_LIBRARY_PATH="$PWD/.deps/nvrtc/nvidia/cu13/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    cargo test --release --quiet --manifest-path fuzz/Cargo.toml -p tb-fuzz-harness
}

# --- ABI stability: the library's exported ABI against the committed baseline (abi/) --------------
# Fails on removed functions, changed signatures, struct layouts or enumerator values unless the
# SONAME's major version changed; additions pass. Policy: docs/guide.md, "ABI stability".
abi_check() {
  ./scripts/abi-check.sh
}
# --- end ABI stability ------------------------------------------------------------------------------

# --- Node.js consumer of the C ABI (examples/node, koffi from npm) ---------------------------------
# Runs where `node` and `npm` exist; otherwise skips, saying why. The dependency is installed from
# the committed package-lock.json into examples/node/node_modules (git-ignored).
node_example() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "node example skipped: node/npm not found on PATH (install Node.js >= 18 to run it)"
    return 0
  fi
  (cd examples/node && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) &&
    TENSORBRIDGE_LIBRARY="$(./scripts/cargo-target-dir.sh)/release/libtensorbridge.so" \
      node examples/node/reformat.js
}
# --- end Node.js consumer ---------------------------------------------------------------------------

python_tests() {
  local library
  library="$(./scripts/cargo-target-dir.sh)/release/libtensorbridge.so"
  scripts/build-python-native.sh &&
    TENSORBRIDGE_REQUIRE_NATIVE=1 TENSORBRIDGE_LIBRARY="$library" python3 -m pytest python/tests -q -rs &&
    echo "== pytest again on the ctypes path alone (TENSORBRIDGE_PURE_PYTHON=1)" &&
    TENSORBRIDGE_PURE_PYTHON=1 TENSORBRIDGE_LIBRARY="$library" python3 -m pytest python/tests -q -rs
}

stage "header: include/tensorbridge.h must be what scripts/gen-header.sh generates" header_check
stage "cargo test (NVRTC from .deps compiles every kernel for sm_90)" cargo_tests
stage "fault injection (cargo feature fault-injection: every allocation, handle and driver call fails in turn)" fault_injection
stage "CMake + CTest (C/C++)" cpp_tests
stage "fuzz replay (seed corpus + regressions through the fuzz targets, stable toolchain)" fuzz_replay
stage "ABI: libtensorbridge.so against abi/libtensorbridge.abi (abidw/abidiff)" abi_check
stage "Node.js (examples/node over koffi: wrap, permute, reformat, errors, leak check)" node_example
stage "pytest (Python package: compiled fast path, then ctypes alone; GPU tests skip with their reason)" python_tests

# --- wheel: pip wheel ./python from the library built above, installed with pip --no-index into a
# fresh venv with no Rust on PATH; the CPU tests and mypy --strict run against that copy.
wheel_check() {
  TENSORBRIDGE_LIBRARY="$(./scripts/cargo-target-dir.sh)/release/libtensorbridge.so" \
    python3 -m pytest python/wheel_tests -q -rs
}
stage "wheel (cp39-abi3-manylinux wheel, fresh venv without Rust, CPU tests + mypy on the installed copy)" wheel_check
# --- end wheel

# CTest does not show a skipped test's output: print the GPU tests' skip reason here.
if [ -x build/cpp_tests/tb_cuda_runtime_tests ]; then
  reason=$(build/cpp_tests/tb_cuda_runtime_tests 2>&1 | grep -m1 'CUDA GPU(s):' || true)
  [ -z "$reason" ] || echo "== GPU tests skipped: $reason"
fi

if [ ${#failed[@]} -gt 0 ]; then
  printf 'FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "== all tests passed"
