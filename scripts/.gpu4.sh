t0=$(date +%s); el() { echo "[t+$(( $(date +%s) - t0 ))s] $*"; }
TB_SKIP_BENCH=1 TB_GPU_STEPS=ctest,fault-walk,sanitizers timeout 400 bash scripts/gpu-check.sh > /tmp/gc.log 2>&1; echo "gpu-check rc=$?"
grep -vE "^\s+Start|Passed|^\s*$" /tmp/gc.log | tail -80
el gpu-check
./build-gpu/cpp_tests/tb_cuda_runtime_tests --gtest_filter='CudaIpc.*' 2>&1 | grep -E "OK \]|FAILED|Failure|Which is|tb_|error" | head -30
export TENSORBRIDGE_LIBRARY=$PWD/.prebuilt/libtensorbridge.so
timeout 150 python3 -m pytest python/tests/test_gpu_ipc.py -q -rs 2>&1 | grep -E "passed|failed|Error|error|assert" | tail -20
el pytest-ipc
timeout 60 python3 examples/python/ipc_frames.py 2>&1 | tail -5
timeout 150 python3 bench/ipc.py > $OUT/ipc_bench.md 2>&1; tail -12 $OUT/ipc_bench.md
el done
