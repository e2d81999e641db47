#!/usr/bin/env bash
# Everything the GPU machine runs, in one call (it has nvcc, CMake, GoogleTest, Python but no
# Rust): configure against the prebuilt library, build, run CTest, then run the CUDA test binary
# under compute-sanitizer (memcheck, racecheck, synccheck, initcheck). Prints a short summary
# last; full logs go to $OUT (or ./gpu-logs).
#
# Prepare here (machine with Rust):  scripts/stage-prebuilt.sh   (fills .prebuilt/)
# Run there:                          scripts/gpu-check.sh        (carry .prebuilt)
#
# Exits non-zero, naming the failed steps, when any step fails. On a machine where nvidia-smi
# works, a GPU test that skips is a failure too (a skip there means the test proved nothing):
# every CTest skip except MultiGpu.* on a one-GPU machine, and every pytest skip except those
# whose reason says the test needs a machine without a GPU ("a GPU is present: ...") or is not a
# GPU test ("not a GPU test: ...", e.g. mypy is not installed there), or needs a framework the
# machine lacks ("optional framework not installed: ..."; scripts/framework-wheels.sh test installs
# them and fails on any skip). So is a
# build without the CUDA runtime test binary, or a machine without compute-sanitizer.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-logs}
mkdir -p "$out"
summary=()
failed=()
log() { summary+=("$1"); }
# step NAME STATUS: records a step's exit status; a non-zero one fails the whole check.
step() { [ "$2" -eq 0 ] || failed+=("$1 (exit $2)"); }

gpus=0
if nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader >"$out/gpu.txt" 2>&1; then
  gpus=$(grep -c . "$out/gpu.txt")
fi
cat "$out/gpu.txt"
log "device: $(head -1 "$out/gpu.txt") ($gpus GPU(s) by nvidia-smi)"

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if cmake -S . -B build-gpu "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
     -DTENSORBRIDGE_PREBUILT_DIR="$PWD/.prebuilt" -DTENSORBRIDGE_REQUIRE_CUDA_TESTS=ON \
     >"$out/configure.log" 2>&1 &&
   cmake --build build-gpu -j "$(nproc)" >"$out/build.log" 2>&1; then
  log "build: ok"
else
  tail -30 "$out/configure.log" "$out/build.log"
  log "build: FAILED (see configure.log/build.log)"
  step build 1
fi

# The CUDA-runtime tests are the point of this machine: their binary must exist.
if [ ! -x build-gpu/cpp_tests/tb_cuda_runtime_tests ]; then
  log "tb_cuda_runtime_tests: NOT BUILT (see configure.log)"
  step "tb_cuda_runtime_tests not built" 1
fi

ctest --test-dir build-gpu --output-on-failure -j 4 >"$out/ctest.log" 2>&1
step ctest $?
log "ctest: $(grep -E 'tests passed|tests failed' "$out/ctest.log" | tail -1)"
grep -E "Skipped|\*\*\*Failed|Failed " "$out/ctest.log" | head -20

# CTest lists skipped tests at the end as "<n> - <name> (Skipped)".
ctest_skips=$(grep -E '^[[:space:]]*[0-9]+ - .* \((Skipped|Not Run|Disabled)\)' "$out/ctest.log" |
  sed -E 's/^[[:space:]]*[0-9]+ - ([^ ]+) .*/\1/')
if [ "$gpus" -gt 0 ]; then
  unexpected=()
  # Tests of the no-driver path: they skip, by design, where a GPU is usable.
  without_gpu=(Alloc.CudaKindsReportUnavailableWithoutADriver
               CudaArrayInterface.ImportNeedsTheDriverUnlessEmpty)
  for name in $ctest_skips; do
    if [[ "$name" == MultiGpu.* && "$gpus" -lt 2 ]]; then continue; fi
    if [[ " ${without_gpu[*]} " == *" $name "* ]]; then continue; fi
    unexpected+=("$name")
  done
  if [ ${#unexpected[@]} -gt 0 ]; then
    printf 'skipped on a GPU machine: %s\n' "${unexpected[@]}"
    log "ctest skips on a GPU machine: ${unexpected[*]}"
    step "ctest skipped ${#unexpected[@]} GPU test(s) on a GPU machine" 1
  fi
fi

if ! command -v compute-sanitizer >/dev/null; then
  log "compute-sanitizer: NOT FOUND on PATH"
  step "compute-sanitizer not found" 1
elif [ -x build-gpu/cpp_tests/tb_cuda_runtime_tests ]; then
  # Left out under the sanitizer: the out-of-memory test asks the driver for 1 PiB on purpose (an
  # API error by design); the stream-promise tests hold a stream with a host-waited gate and time
  # the host, which a sanitizer that serialises launches turns into waits; the kernel-cache test
  # re-runs the binary in child processes, and so do the CUDA IPC tests (a second process maps
  # the first one's memory). Each run has a time limit: a hang is a failure.
  excluded="GpuAlloc.OnePebibyteIsAClearOutOfMemory:StreamPromises.*:GpuKernelCache.*:CudaIpc.*"
  # memcheck: out-of-bounds and misaligned accesses, leaks; racecheck: shared-memory hazards;
  # synccheck: barrier misuse; initcheck: device reads of memory never written.
  for tool in memcheck racecheck synccheck initcheck; do
    timeout 900 compute-sanitizer --tool "$tool" --error-exitcode 99 \
      build-gpu/cpp_tests/tb_cuda_runtime_tests --gtest_filter="-$excluded" \
      >"$out/sanitizer-$tool.log" 2>&1
    status=$?
    summary_line=$(grep -m1 -E "(ERROR|RACECHECK) SUMMARY" "$out/sanitizer-$tool.log")
    if [ "$tool" = initcheck ]; then
      # Reported, not yet a failure: tests that time allocation and stream ordering reformat
      # memory they never wrote (GpuAlloc.ReleaseBehindABusySideStreamDoesNotBlockTheHost was
      # the first seen, 2026-11-25); initcheck counts each such read until those tests fill it.
      log "compute-sanitizer initcheck (report only, see sanitizer-initcheck.log): exit $status ($summary_line)"
      continue
    fi
    step "compute-sanitizer $tool" $status
    log "compute-sanitizer $tool: exit $status ($summary_line)"
  done
fi

# The Python package's compiled fast path, built with the library (scripts/stage-prebuilt.sh): the
# suite runs on it, as an installed wheel does; CI runs the ctypes path too.
if [ -f .prebuilt/_native.abi3.so ]; then
  cp .prebuilt/_native.abi3.so python/tensorbridge/
  log "python fast path: $(TENSORBRIDGE_LIBRARY="$PWD/.prebuilt/libtensorbridge.so" python3 -c \
    'import sys; sys.path.insert(0, "python"); from tensorbridge import _compiled; print(_compiled.native)')"
else
  log "python fast path: NOT STAGED (.prebuilt/_native.abi3.so missing): pytest runs the ctypes path"
  step "python fast path not staged" 1
fi
TENSORBRIDGE_LIBRARY="$PWD/.prebuilt/libtensorbridge.so" python3 -m pytest python/tests -q -rs \
  >"$out/pytest.log" 2>&1
step pytest $?
log "pytest: $(tail -1 "$out/pytest.log")"
# The frame kernel's other tilings (the default one ran above): each must give the CPU bytes too.
for tiling in 8,2,0 4,1,1 16,1,0 8,1,1; do
  TENSORBRIDGE_FRAME_KERNEL=$tiling TENSORBRIDGE_LIBRARY="$PWD/.prebuilt/libtensorbridge.so" \
    python3 -m pytest python/tests/test_gpu_frames.py -q >"$out/pytest-frames-$tiling.log" 2>&1
  status=$?
  step "frame kernel tiling $tiling" $status
  log "frame kernel tiling $tiling: $(tail -1 "$out/pytest-frames-$tiling.log")"
done
# -rs prints "SKIPPED [n] file:line: reason" per skip; only tests that need a machine without a
# GPU, and tests that are not GPU tests, may skip here.
if [ "$gpus" -gt 0 ]; then
  pytest_skips=$(grep -E '^SKIPPED ' "$out/pytest.log" |
    grep -v -e 'a GPU is present' -e 'not a GPU test' -e 'optional framework not installed' || true)
  if [ -n "$pytest_skips" ]; then
    echo "$pytest_skips"
    log "pytest skips on a GPU machine: $(echo "$pytest_skips" | wc -l) line(s), see pytest.log"
    step "pytest skipped GPU test(s) on a GPU machine" 1
  fi
fi

for example in examples/python/*.py; do
  TENSORBRIDGE_LIBRARY="$PWD/.prebuilt/libtensorbridge.so" python3 "$example" >>"$out/examples.log" 2>&1
  status=$?
  step "example $(basename "$example")" $status
  log "example $(basename "$example"): exit $status"
done

./build-gpu/examples/tb_demo >"$out/demo.log" 2>&1
status=$?
step demo $status
log "demo: exit $status ($(grep '^path:' "$out/demo.log"))"

# Handle cost under 16 threads (host only): this build, and a second one when .prebuilt/compare/
# holds a libtensorbridge.so to compare with.
if cc -O2 -pthread -Iinclude bench/handle_bench.c -ldl -o build-gpu/handle_bench; then
  for lib in .prebuilt/libtensorbridge.so .prebuilt/compare/libtensorbridge.so; do
    [ -f "$lib" ] || continue
    echo "$lib" >>"$out/handle_bench.md"
    build-gpu/handle_bench "$PWD/$lib" 16 200000 >>"$out/handle_bench.md" 2>&1
    step "handle bench $lib" $?
  done
  log "handle bench: written to handle_bench.md"
else
  step "handle bench build" 1
fi

if [ "${TB_SKIP_BENCH:-0}" != 1 ]; then
  # Kernel build on the first call: a fresh cache directory (compile), then the same one (disk).
  cache=$(mktemp -d)
  cold=$(TENSORBRIDGE_CACHE_DIR="$cache" ./build-gpu/bench/tb_layout_bench --first-call 2>&1)
  warm=$(TENSORBRIDGE_CACHE_DIR="$cache" ./build-gpu/bench/tb_layout_bench --first-call 2>&1)
  # The layout benchmark checks every case's output against the CPU and exits 1 on a mismatch.
  ./build-gpu/bench/tb_layout_bench >"$out/layout_bench.md" 2>&1
  step "layout bench (a case's output is wrong, or the run failed)" $?
  { cat "$out/layout_bench.md"
    echo
    echo "| first-call case | ms | target |"
    echo "| --- | ---: | ---: |"
    echo "| cold (NVRTC compile + load) | ${cold##*: } | 250 |"
    echo "| disk cache (load cubin) | ${warm##*: } | 20 |"
    echo
    python3 bench/compare_torch.py
    echo
    TENSORBRIDGE_LIBRARY="$PWD/.prebuilt/libtensorbridge.so" python3 bench/python_wrap.py
    echo
    TENSORBRIDGE_LIBRARY="$PWD/.prebuilt/libtensorbridge.so" python3 bench/python_alloc.py
  } >"$out/bench.md" 2>&1
  log "bench: written to bench.md"
fi

echo
echo "==== summary"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  printf 'FAILED: %s\n' "${failed[@]}"
  exit 1
fi
echo "gpu-check: every step passed"
