t0=$(date +%s); el() { echo "[t+$(( $(date +%s) - t0 ))s] $*"; }
TB_SKIP_BENCH=1 TB_GPU_STEPS=ctest,fault-walk,sanitizers timeout 330 bash scripts/gpu-check.sh > /tmp/gc.log 2>&1; echo "gpu-check rc=$?"
sed -n '/==== summary/,$p' /tmp/gc.log
grep -E "gpu fault walk|pass|FAILED|Failure|runs" $OUT/fault-walk.log | head -30
el gpu-check
export TENSORBRIDGE_LIBRARY=$PWD/.prebuilt/libtensorbridge.so
timeout 200 python3 bench/ipc.py > $OUT/ipc_bench.md 2>&1; tail -16 $OUT/ipc_bench.md
el bench-ipc
TB_GPU_STEPS=pytest-sanitizer TB_PYTEST_SANITIZER_TIMEOUT=200 timeout 230 bash scripts/gpu-check.sh > /tmp/ps.log 2>&1; echo "pytest-sanitizer rc=$?"
sed -n '/==== summary/,$p' /tmp/ps.log; grep -iE "sanitizer reports|passed|failed" /tmp/ps.log | tail -5
el done
