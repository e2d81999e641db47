t0=$(date +%s); el() { echo "[t+$(( $(date +%s) - t0 ))s] $*"; }
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DTENSORBRIDGE_PREBUILT_DIR=$PWD/.prebuilt -DTENSORBRIDGE_REQUIRE_CUDA_TESTS=ON > /tmp/cfg.log 2>&1 || tail -20 /tmp/cfg.log
cmake --build build-gpu -j16 > /tmp/build.log 2>&1 || tail -40 /tmp/build.log
el built
./build-gpu/cpp_tests/tb_cuda_runtime_tests --gtest_filter='CudaIpc.*' 2>&1 | grep -E "OK|FAILED|Failure|Which is|tb_|error" | head -40
el ctest-ipc
cp .prebuilt/_native.abi3.so python/tensorbridge/
export TENSORBRIDGE_LIBRARY=$PWD/.prebuilt/libtensorbridge.so
timeout 240 python3 -m pytest python/tests/test_gpu_ipc.py python/tests/test_ipc.py python/tests/test_plan.py python/tests/test_gpu_frameworks.py -q -rs 2>&1 | grep -vE "^\s*$" | tail -40
el pytest
timeout 90 python3 examples/python/ipc_frames.py 2>&1 | tail -12
el example
timeout 120 python3 bench/ipc.py > $OUT/ipc_bench.md 2>&1; cat $OUT/ipc_bench.md | tail -15
el bench-ipc
timeout 100 python3 bench/layout_matrix.py --quick --no-cupy --cases 'float8 small|pitched small|latency' 2>&1 | tail -40
el smoke
