t0=$(date +%s); el() { echo "[t+$(( $(date +%s) - t0 ))s] $*"; }
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DTENSORBRIDGE_PREBUILT_DIR=$PWD/.prebuilt -DTENSORBRIDGE_REQUIRE_CUDA_TESTS=ON > /tmp/cfg.log 2>&1 || tail -20 /tmp/cfg.log
cmake --build build-gpu -j16 > /tmp/build.log 2>&1 || tail -40 /tmp/build.log
./build-gpu/cpp_tests/tb_cuda_runtime_tests --gtest_filter='CudaIpc.*' 2>&1 | grep -E "OK \]|FAILED|Failure|Which is|tb_|error" | head -30
cp .prebuilt/_native.abi3.so python/tensorbridge/
export TENSORBRIDGE_LIBRARY=$PWD/.prebuilt/libtensorbridge.so
timeout 200 python3 -m pytest python/tests/test_gpu_ipc.py python/tests/test_ipc.py -q -rs 2>&1 | grep -E "passed|failed|Error|error|assert" | tail -20
el pytest-ipc
timeout 60 python3 examples/python/ipc_frames.py 2>&1 | tail -2
timeout 150 python3 bench/ipc.py > $OUT/ipc_bench.md 2>&1; tail -12 $OUT/ipc_bench.md
el bench-ipc
timeout 330 python3 bench/layout_matrix.py > $OUT/layout_matrix.md 2>&1; echo "layout_matrix rc=$?"; grep -E "^\| library|tensorbridge reformat_into|case\(s\)" $OUT/layout_matrix.md | head
el matrix
