#!/usr/bin/env bash
# Everything the GPU machine runs, in one call (it has nvcc, CMake, GoogleTest, Python but no
# Rust): configure against the prebuilt library, build, run CTest, the GPU fault-injection walk
# (against .prebuilt/fault/, the library built with the fault-injection feature), then the CUDA
# test binary and the fault walk under compute-sanitizer (memcheck, racecheck, synccheck,
# initcheck), the GPU pytest files under memcheck, pytest, the examples and the benchmarks. Prints
# a short summary last; full logs go to $OUT (or ./gpu-logs). A sanitizer run's summary, the tests
# that failed under it and its log's last lines are printed as it ends.
#
# Prepare here (machine with Rust):  scripts/stage-prebuilt.sh   (fills .prebuilt/)
# Run there:                          scripts/gpu-check.sh        (carry .prebuilt)
#
# TB_GPU_STEPS picks the steps after the build (comma-separated; default all): ctest, fault-walk,
# sanitizers (the CUDA test binary and the fault walk), pytest-sanitizer (the GPU pytest files
# under memcheck), pytest, examples (with the demo and the handle benchmark), bench.
# TB_SKIP_BENCH=1 leaves out bench. TB_PYTEST_SANITIZER_TIMEOUT (seconds, default 900) limits the
# pytest run under memcheck.
#
# Exits non-zero, naming the failed steps, when any step fails. On a machine where nvidia-smi
# works, a GPU test that skips is a failure too (a skip there means the test proved nothing):
# every CTest skip except MultiGpu.* on a one-GPU machine, and every pytest skip except those
# whose reason says the test needs a machine without a GPU ("a GPU is present: ...") or is not a
# GPU test ("not a GPU test: ...", e.g. mypy is not installed there), or needs a framework the
# machine lacks ("optional framework not installed: ..."; scripts/framework-wheels.sh test installs
# them and fails on any skip), or two GPUs on a one-GPU machine ("needs two GPUs: ..."). So is a
# build without the CUDA runtime test binary, or a machine without compute-sanitizer.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-logs}
mkdir -p "$out"
summary=()
failed=()
log() { summary+=("$1"); }
steps=",${TB_GPU_STEPS:-all},"
# want STEP: whether TB_GPU_STEPS selects STEP.
want() { [[ "$steps" == *",all,"* || "$steps" == *",$1,"* ]]; }
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
# The fault walk links the library built with the fault-injection feature (stage-prebuilt.sh).
fault_library=()
if [ -f .prebuilt/fault/libtensorbridge.so ]; then
  fault_library=(-DTENSORBRIDGE_FAULT_LIBRARY="$PWD/.prebuilt/fault/libtensorbridge.so")
elif want fault-walk; then
  log "fault walk: NOT STAGED (.prebuilt/fault/libtensorbridge.so missing: run scripts/stage-prebuilt.sh)"
  step "fault-injection library not staged" 1
fi
if cmake -S . -B build-gpu "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
     -DTENSORBRIDGE_PREBUILT_DIR="$PWD/.prebuilt" -DTENSORBRIDGE_REQUIRE_CUDA_TESTS=ON \
     "${fault_library[@]}" >"$out/configure.log" 2>&1 &&
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

if want ctest; then
  # The fault walk runs in a step of its own below (its output is the point).
  ctest --test-dir build-gpu --output-on-failure -j 4 -E '^GpuFaultWalk\.' >"$out/ctest.log" 2>&1
  step ctest $?
  log "ctest: $(grep -E 'tests passed|tests failed' "$out/ctest.log" | tail -1)"
  grep -E "Skipped|\*\*\*Failed|Failed " "$out/ctest.log" | head -20

  # CTest lists skipped tests at the end as "<n> - <name> (Skipped)".
  ctest_skips=$(grep -E '^[[:space:]]*[0-9]+ - .* \((Skipped|Not Run|Disabled)\)' "$out/ctest.log" |
    sed -E 's/^[[:space:]]*[0-9]+ - ([^ ]+) .*/\1/')
fi
if want ctest && [ "$gpus" -gt 0 ]; then
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

# The GPU fault walk (cpp_tests/gpu_fault_walk_test.cpp): the n-th allocation, handle or driver
# call of a GPU scenario fails, n = 0, 1, 2 … until a run completes, first from a cold start, then
# with every cache filled (each acquisition of a run failed in turn, checked against its trace); it
# prints the failure points by injected site for both.
walk=build-gpu/cpp_tests/tb_gpu_fault_walk
if want fault-walk; then
  if [ -x "$walk" ]; then
    timeout 600 "$walk" >"$out/fault-walk.log" 2>&1
    status=$?
    step "GPU fault walk" $status
    sed -n '/^gpu fault walk/,$p' "$out/fault-walk.log" | grep -E '^(gpu fault walk|  )' | head -60
    grep -E -A10 ': Failure$' "$out/fault-walk.log" | head -40
    log "GPU fault walk: exit $status ($(grep -m1 'failure points' "$out/fault-walk.log"))"
    if [ "$gpus" -gt 0 ] && grep -q '^\[  SKIPPED \]' "$out/fault-walk.log"; then
      grep '^\[  SKIPPED \]\|Skipped' "$out/fault-walk.log" | head -5
      step "GPU fault walk skipped on a GPU machine" 1
    fi
  else
    log "GPU fault walk: NOT BUILT (see configure.log)"
    step "tb_gpu_fault_walk not built" 1
  fi
fi

# show_sanitizer_log LOG: what explains a sanitizer run's exit status, on stdout: the tool's
# summary, the tests that failed (or skipped) under it with their first assertion lines, and the
# log's last lines.
show_sanitizer_log() {
  echo "---- $1"
  grep -E "(ERROR|RACECHECK|LEAK) SUMMARY" "$1" | head -3
  grep -E '^\[  (FAILED|SKIPPED) \]' "$1" | sort -u | head -20
  grep -E -A6 ': Failure$' "$1" | head -40
  tail -n 15 "$1"
}
# exit_meaning STATUS: why a run under compute-sanitizer ended so.
exit_meaning() {
  case $1 in
    0) echo "clean" ;;
    99) echo "sanitizer reports" ;;
    124) echo "TIME LIMIT" ;;
    *) echo "the program under the tool failed: failing tests or a crash" ;;
  esac
}

if ! want sanitizers && ! want pytest-sanitizer; then
  :
elif ! command -v compute-sanitizer >/dev/null; then
  log "compute-sanitizer: NOT FOUND on PATH"
  step "compute-sanitizer not found" 1
elif want sanitizers && [ -x build-gpu/cpp_tests/tb_cuda_runtime_tests ]; then
  # Left out under the sanitizer: the out-of-memory test asks the driver for 1 PiB on purpose (an
  # API error by design); the stream-promise tests hold a stream with a host-waited gate and time
  # the host, which a sanitizer that serialises launches turns into waits, and so does the test
  # that times a release behind a busy side stream (it failed under initcheck only, 2026-11-25:
  # 2 s instead of the host never waiting); the kernel-cache test
  # re-runs the binary in child processes, and so do the CUDA IPC tests (a second process maps
  # the first one's memory). Each run has a time limit: a hang is a failure.
  excluded="GpuAlloc.OnePebibyteIsAClearOutOfMemory:GpuAlloc.ReleaseBehindABusySideStreamDoesNotBlockTheHost"
  excluded+=":StreamPromises.*:GpuKernelCache.*:CudaIpc.*:MultiGpu.AnIpcTensor*"
  # memcheck: out-of-bounds and misaligned accesses, leaks; racecheck: shared-memory hazards;
  # synccheck: barrier misuse; initcheck: device reads of memory never written.
  # Exit 99: the tool reported errors; another non-zero exit: a test failed (or the binary
  # crashed) under the tool, which show_sanitizer_log names. initcheck fails like the others since
  # the tests it flagged (2026-11-25) write their inputs.
  for tool in memcheck racecheck synccheck initcheck; do
    timeout 900 compute-sanitizer --tool "$tool" --error-exitcode 99 \
      build-gpu/cpp_tests/tb_cuda_runtime_tests --gtest_filter="-$excluded" \
      >"$out/sanitizer-$tool.log" 2>&1
    status=$?
    summary_line=$(grep -m1 -E "(ERROR|RACECHECK) SUMMARY" "$out/sanitizer-$tool.log")
    show_sanitizer_log "$out/sanitizer-$tool.log"
    step "compute-sanitizer $tool" $status
    log "compute-sanitizer $tool: exit $status, $(exit_meaning $status) ($summary_line)"
  done
  # The fault walk's error paths under memcheck: every injected failure's unwinding, on the device.
  if [ -x "$walk" ]; then
    timeout 900 compute-sanitizer --tool memcheck --error-exitcode 99 \
      "$walk" --gtest_filter='GpuFaultWalk.*' >"$out/sanitizer-fault-walk-memcheck.log" 2>&1
    status=$?
    summary_line=$(grep -m1 -E "ERROR SUMMARY" "$out/sanitizer-fault-walk-memcheck.log")
    show_sanitizer_log "$out/sanitizer-fault-walk-memcheck.log"
    step "compute-sanitizer memcheck (fault walk)" $status
    log "compute-sanitizer memcheck, fault walk: exit $status, $(exit_meaning $status) ($summary_line)"
  fi
fi

# The Python package's compiled fast path, built with the library (scripts/stage-prebuilt.sh): the
# suite runs on it, as an installed wheel does; CI runs the ctypes path too.
if ! want pytest && ! want pytest-sanitizer; then
  :
elif [ -f .prebuilt/_native.abi3.so ]; then
  cp .prebuilt/_native.abi3.so python/tensorbridge/
  log "python fast path: $(TENSORBRIDGE_LIBRARY="$PWD/.prebuilt/libtensorbridge.so" python3 -c \
    'import sys; sys.path.insert(0, "python"); from tensorbridge import _compiled; print(_compiled.native)')"
else
  log "python fast path: NOT STAGED (.prebuilt/_native.abi3.so missing): pytest runs the ctypes path"
  step "python fast path not staged" 1
fi
# The GPU pytest files under memcheck, through the Python package (ctypes or the fast path) as
# users call it. Left out: test_gpu_ipc.py (child processes map the parent's memory) and the two
# tests that time the host behind a busy stream (a sanitizer serialises work, so they would fail
# for time alone). Reports are sorted by whose code they name (scripts/sanitizer-report.py): one
# naming tensorbridge (the library, its Python module or a tb_* kernel) fails the step; those
# only in other code (PyTorch, CuPy, other frameworks) are counted in the summary, not failed.
# Framework memory pools hide an out-of-bounds access that stays inside a pooled block.
# --show-backtrace device: the tool's host backtraces capture the Python frames of every call
# that launches a kernel and never let them go (a frame keeps its arguments alive: the leak
# checks then see tensors that Python no longer references); device backtraces of precise
# errors are kept, and a report still names the kernel it is about. A failed host API call is
# then reported without the code that made it (counted with the others); tensorbridge's own
# calls are checked with backtraces by the CUDA test binary's memcheck run above.
if want pytest-sanitizer && command -v compute-sanitizer >/dev/null; then
  gpu_files=$(ls python/tests/test_gpu_*.py | grep -v 'test_gpu_ipc\.py$')
  timed="test_allocating_operations_and_releases_do_not_wait_for_a_busy_side_stream or \
test_import_reformat_convert_return_while_the_producer_is_busy_and_wait_on_the_device"
  log_file="$out/sanitizer-pytest-memcheck.log"
  # shellcheck disable=SC2086 # one word per file
  TENSORBRIDGE_LIBRARY="$PWD/.prebuilt/libtensorbridge.so" \
    timeout "${TB_PYTEST_SANITIZER_TIMEOUT:-900}" compute-sanitizer --tool memcheck \
    --show-backtrace device --error-exitcode 99 --print-limit 1000 \
    python3 -m pytest $gpu_files -q -rs -p no:cacheprovider -k "not ($timed)" >"$log_file" 2>&1
  status=$?
  python3 scripts/sanitizer-report.py "$log_file"
  ours=$?
  pytest_line=$(grep -E '^(=+ )?[0-9]+ (passed|failed|skipped|error)' "$log_file" | tail -1)
  show_sanitizer_log "$log_file"
  # Exit 99 hides pytest's own status: its summary line says whether a test failed.
  if [ "$status" -ne 0 ] && [ "$status" -ne 99 ]; then
    step "pytest under memcheck: $(exit_meaning "$status")" "$status"
  elif echo "$pytest_line" | grep -qE '[0-9]+ (failed|errors?)'; then
    step "pytest under memcheck: tests failed" 1
  fi
  [ "$ours" -eq 0 ] || step "pytest under memcheck: reports naming tensorbridge" 1
  log "pytest under memcheck: exit $status, $(exit_meaning "$status"); pytest: ${pytest_line:-no summary line}; $(head -1 < <(python3 scripts/sanitizer-report.py "$log_file" --quiet))"
fi

if want pytest; then
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
      grep -v -e 'a GPU is present' -e 'not a GPU test' -e 'optional framework not installed' -e 'needs two GPUs' || true)
    if [ -n "$pytest_skips" ]; then
      echo "$pytest_skips"
      log "pytest skips on a GPU machine: $(echo "$pytest_skips" | wc -l) line(s), see pytest.log"
      step "pytest skipped GPU test(s) on a GPU machine" 1
    fi
fi
fi

if want examples; then
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

fi

if want bench && [ "${TB_SKIP_BENCH:-0}" != 1 ]; then
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
