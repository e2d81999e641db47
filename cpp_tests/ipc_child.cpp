// The consumer process of CudaIpc.CppProducerToCppConsumer (cuda_runtime_test.cpp): reads one
// TbIpcTensor from stdin, imports it, prints the sum of its uint8 elements, overwrites them with
// 0x5a through the imported pointer, waits for that, prints "written", releases the tensor and
// prints the live handle count. Exit status 0 on success; any failure prints its message and
// exits 1. A separate program because a forked child cannot use the parent's CUDA state.

#include <tensorbridge.h>

#include <cuda_runtime_api.h>

#include <cstdio>
#include <vector>

namespace {

int fail(const char* what) {
  std::printf("error: %s: %s\n", what, tb_last_error_message());
  std::fflush(stdout);
  return 1;
}

}  // namespace

int main() {
  TbIpcTensor descriptor{};
  if (std::fread(descriptor.bytes, 1, TB_IPC_TENSOR_BYTES, stdin) != TB_IPC_TENSOR_BYTES) {
    std::printf("error: short descriptor on stdin\n");
    return 1;
  }
  TbTensor* imported = nullptr;
  if (tb_tensor_import_ipc(&descriptor, nullptr, &imported) != TB_SUCCESS) return fail("import");
  TbTensorInfo info{};
  if (tb_tensor_info(imported, &info) != TB_SUCCESS) return fail("info");
  std::vector<unsigned char> host(static_cast<size_t>(info.nbytes));
  if (cudaMemcpy(host.data(), info.data, host.size(), cudaMemcpyDeviceToHost) != cudaSuccess) {
    std::printf("error: cudaMemcpy from the imported tensor\n");
    return 1;
  }
  unsigned long long sum = 0;
  for (unsigned char value : host) sum += value;
  std::printf("sum %llu bytes %lld\n", sum, static_cast<long long>(info.nbytes));
  if (cudaMemset(info.data, 0x5a, host.size()) != cudaSuccess || cudaDeviceSynchronize() != cudaSuccess) {
    std::printf("error: cudaMemset on the imported tensor\n");
    return 1;
  }
  std::printf("written\n");
  if (tb_tensor_release(imported) != TB_SUCCESS) return fail("release");
  int64_t live = -1;
  tb_tensor_live_count(&live);
  std::printf("live %lld\n", static_cast<long long>(live));
  std::fflush(stdout);
  return live == 0 ? 0 : 1;
}
