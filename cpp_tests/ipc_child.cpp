// The other process of the CUDA IPC tests (ipc_test.cpp, python/tests/test_gpu_ipc.py). A
// separate program because a forked child cannot use the parent's CUDA state. Modes:
//
//   tb_ipc_child consume            reads one TbIpcTensor from stdin and imports it
//   tb_ipc_child consume-socket FD  receives one with tb_ipc_receive on socket FD (pool memory)
//     then, both: prints "sum <sum of its uint8 elements> bytes <n> device <type>:<ordinal>", overwrites the elements with
//     0x5a through the imported pointer and waits, prints "written", releases the tensor, tries
//     the same descriptor again (consume only: "again: <status name>"), prints "live <handles>".
//   tb_ipc_child produce            allocates a 4x64x3 uint8 HWC tensor with cudaMalloc, fills it
//     with 0, 1, 2, … (mod 256), writes its descriptor to stdout and waits for a line on stdin
//     (or to be killed), then exits without releasing anything: the importer's view of a producer
//     that stops.
//
// Exit status 0 on success; any failure prints "error: <what>: <message>" and exits 1.

#include <tensorbridge.h>

#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

int fail(const char* what) {
  std::printf("error: %s: %s\n", what, tb_last_error_message());
  std::fflush(stdout);
  return 1;
}

int consume(TbTensor* imported, const TbIpcTensor* again) {
  TbTensorInfo info{};
  if (tb_tensor_info(imported, &info) != TB_SUCCESS) return fail("info");
  std::vector<unsigned char> host(static_cast<size_t>(info.nbytes));
  // The imported memory may be on another device than the current one (0): copies and the
  // memset below run with the tensor's device current.
  if (cudaSetDevice(info.device.device_id) != cudaSuccess ||
      cudaMemcpy(host.data(), info.data, host.size(), cudaMemcpyDeviceToHost) != cudaSuccess) {
    std::printf("error: cudaMemcpy from the imported tensor\n");
    return 1;
  }
  unsigned long long sum = 0;
  for (unsigned char value : host) sum += value;
  std::printf("sum %llu bytes %lld device %d:%d\n", sum, static_cast<long long>(info.nbytes),
              info.device.device_type, info.device.device_id);
  if (cudaMemset(info.data, 0x5a, host.size()) != cudaSuccess || cudaDeviceSynchronize() != cudaSuccess) {
    std::printf("error: cudaMemset on the imported tensor\n");
    return 1;
  }
  std::printf("written\n");
  if (tb_tensor_release(imported) != TB_SUCCESS) return fail("release");
  if (again != nullptr) {
    TbTensor* twice = nullptr;
    const TbStatus status = tb_tensor_import_ipc(again, -1, nullptr, &twice);
    std::printf("again: %s: %s\n", tb_status_name(status), tb_last_error_message());
    tb_tensor_release(twice);
  }
  int64_t live = -1;
  tb_tensor_live_count(&live);
  std::printf("live %lld\n", static_cast<long long>(live));
  std::fflush(stdout);
  return live == 0 ? 0 : 1;
}

int produce() {
  const int64_t shape[] = {4, 64, 3};
  std::vector<unsigned char> pattern(4 * 64 * 3);
  for (size_t i = 0; i < pattern.size(); ++i) pattern[i] = static_cast<unsigned char>(i);
  void* memory = nullptr;
  if (cudaMalloc(&memory, pattern.size()) != cudaSuccess ||
      cudaMemcpy(memory, pattern.data(), pattern.size(), cudaMemcpyHostToDevice) != cudaSuccess) {
    std::printf("error: cudaMalloc/cudaMemcpy\n");
    return 1;
  }
  TbTensor* tensor = nullptr;
  if (tb_tensor_wrap(memory, TbDevice{TB_DEVICE_CUDA, 0}, TB_DTYPE_UINT8, 3, shape, nullptr, "HWC", false,
                     nullptr, nullptr, &tensor) != TB_SUCCESS)
    return fail("wrap");
  TbIpcTensor descriptor{};
  if (tb_tensor_export_ipc(tensor, nullptr, &descriptor) != TB_SUCCESS) return fail("export");
  if (std::fwrite(descriptor.bytes, 1, TB_IPC_TENSOR_BYTES, stdout) != TB_IPC_TENSOR_BYTES) return 1;
  std::fflush(stdout);
  char line[16];
  (void)std::fgets(line, sizeof line, stdin);  // until told (or killed)
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "consume";
  if (std::strcmp(mode, "produce") == 0) return produce();
  TbTensor* imported = nullptr;
  if (std::strcmp(mode, "consume-socket") == 0 && argc > 2) {
    if (tb_ipc_receive(std::atoi(argv[2]), nullptr, &imported) != TB_SUCCESS) return fail("receive");
    return consume(imported, nullptr);
  }
  if (std::strcmp(mode, "consume") != 0) {
    std::printf("error: unknown mode %s\n", mode);
    return 1;
  }
  TbIpcTensor descriptor{};
  if (std::fread(descriptor.bytes, 1, TB_IPC_TENSOR_BYTES, stdin) != TB_IPC_TENSOR_BYTES) {
    std::printf("error: short descriptor on stdin\n");
    return 1;
  }
  if (tb_tensor_import_ipc(&descriptor, -1, nullptr, &imported) != TB_SUCCESS) return fail("import");
  return consume(imported, &descriptor);
}
