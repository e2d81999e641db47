set -x
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DTENSORBRIDGE_PREBUILT_DIR=$PWD/.prebuilt -DTENSORBRIDGE_REQUIRE_CUDA_TESTS=ON > /tmp/cfg.log 2>&1 || tail -20 /tmp/cfg.log
cmake --build build-gpu -j16 > /tmp/build.log 2>&1 || tail -40 /tmp/build.log
set +x
./build-gpu/cpp_tests/tb_cuda_runtime_tests --gtest_filter='CudaIpc.*' 2>&1 | tail -40
cp .prebuilt/_native.abi3.so python/tensorbridge/
export TENSORBRIDGE_LIBRARY=$PWD/.prebuilt/libtensorbridge.so
timeout 300 python3 -m pytest python/tests/test_gpu_ipc.py python/tests/test_ipc.py -q -x -rs 2>&1 | tail -30
timeout 120 python3 examples/python/ipc_frames.py 2>&1 | tail -12
timeout 150 python3 bench/ipc.py 2>&1 | tail -12
timeout 200 compute-sanitizer --tool initcheck --error-exitcode 99 build-gpu/cpp_tests/tb_cuda_runtime_tests --gtest_filter='-GpuAlloc.OnePebibyteIsAClearOutOfMemory:StreamPromises.*:GpuKernelCache.*:CudaIpc.*' > /tmp/ic.log 2>&1; echo "initcheck exit $?"; grep -E "FAILED|SUMMARY|Program hit|error" /tmp/ic.log | head -20; tail -5 /tmp/ic.log
