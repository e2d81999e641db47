t0=$(date +%s); el() { echo "[t+$(( $(date +%s) - t0 ))s] $*"; }
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DTENSORBRIDGE_PREBUILT_DIR=$PWD/.prebuilt -DTENSORBRIDGE_REQUIRE_CUDA_TESTS=ON > /tmp/cfg.log 2>&1 || tail -20 /tmp/cfg.log
cmake --build build-gpu -j16 > /tmp/build.log 2>&1 || tail -40 /tmp/build.log
build-gpu/cpp_tests/tb_cuda_runtime_tests --gtest_filter='GpuOps.*' 2>&1 | grep -E "FAILED|Failure|Which is|Expected|plan|PASSED" | head -30
el gpuops
timeout 200 compute-sanitizer --tool memcheck --error-exitcode 99 build-gpu/cpp_tests/tb_cuda_runtime_tests --gtest_filter='GpuOps.SameLayout*:GpuOps.Pitched*:GpuOps.Reformat*:GpuOps.Convert*' > /tmp/mc.log 2>&1; echo "memcheck rc=$?"; grep -E "SUMMARY|FAILED" /tmp/mc.log | head -5
el memcheck
cp .prebuilt/_native.abi3.so python/tensorbridge/
export TENSORBRIDGE_LIBRARY=$PWD/.prebuilt/libtensorbridge.so
timeout 150 python3 -m pytest python/tests/test_gpu_float8.py python/tests/test_gpu_frameworks.py python/tests/test_plan.py python/tests/test_gpu_frames.py -q -rs 2>&1 | grep -E "passed|failed|Error|assert|FAILED" | tail -15
el pytest
timeout 200 python3 bench/layout_matrix.py --no-cupy --cases 'pitched|float8|normalize|latency' > $OUT/matrix_after.md 2>&1; echo "matrix rc=$?"; grep -E "case\(s\)" $OUT/matrix_after.md
el matrix
git diff --quiet; TB_GPU_STEPS=pytest-sanitizer TB_PYTEST_SANITIZER_TIMEOUT=150 timeout 170 bash scripts/gpu-check.sh > /tmp/ps.log 2>&1
grep -E "^(ERROR|FAILED) " $OUT/sanitizer-pytest-memcheck.log | head -12; grep -m5 -B2 -A12 "========= Program hit\|========= Invalid\|========= Error" $OUT/sanitizer-pytest-memcheck.log | head -60
el done
