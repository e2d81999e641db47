// CUDA IPC between C++ processes, with tb_ipc_child (ipc_child.cpp) as the other process:
// - cudaMalloc memory: this test exports, the child imports from a pipe, reads (the sum it prints
//   must match) and overwrites it — the write is seen here, one memory — and a second import of
//   the same descriptor is refused; the export's lease ends when the child releases;
// - tensorbridge's own pool memory, sent with its pool's file descriptor over a Unix socket
//   (tb_ipc_send / tb_ipc_receive), after this process released its own handle: the lease keeps
//   the memory; once the child is done, the pool is back to its baseline;
// - a producer that was killed: its descriptor is refused with the reason; an import made before
//   it died is released without harm;
// - a revoked descriptor is refused; host memory and other pools' memory are refused with the
//   reason, and so is an import in the exporting process.

#include "cuda_test_support.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <numeric>
#include <string>
#include <vector>

extern char** environ;

namespace {

/// A running tb_ipc_child with pipes to its stdin and from its stdout.
struct Child {
  pid_t pid = -1;
  int in = -1;
  int out = -1;

  /// Starts tb_ipc_child with `args` (descriptors without close-on-exec are inherited).
  static Child start(std::vector<std::string> args) {
    Child child;
    int to_child[2], from_child[2];
    if (pipe(to_child) != 0 || pipe(from_child) != 0) return child;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, to_child[0], 0);
    posix_spawn_file_actions_adddup2(&actions, from_child[1], 1);
    posix_spawn_file_actions_addclose(&actions, to_child[1]);
    posix_spawn_file_actions_addclose(&actions, from_child[0]);
    args.insert(args.begin(), TB_IPC_CHILD);
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    const int spawned = posix_spawn(&child.pid, TB_IPC_CHILD, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(to_child[0]);
    close(from_child[1]);
    child.in = to_child[1];
    child.out = from_child[0];
    if (spawned != 0) child.pid = -1;
    return child;
  }

  bool write_all(const void* data, size_t size) const {
    return write(in, data, size) == static_cast<ssize_t>(size);
  }

  /// Reads exactly `size` bytes of its output.
  bool read_exactly(void* data, size_t size) const {
    size_t got = 0;
    while (got < size) {
      const ssize_t n = read(out, static_cast<char*>(data) + got, size - got);
      if (n <= 0) return false;
      got += static_cast<size_t>(n);
    }
    return true;
  }

  /// Closes its stdin, reads the rest of its output, waits: (output, exit status or -signal).
  std::pair<std::string, int> finish() {
    close(in);
    std::string output;
    char buffer[256];
    for (ssize_t n; (n = read(out, buffer, sizeof buffer)) > 0;) output.append(buffer, n);
    close(out);
    int status = 0;
    waitpid(pid, &status, 0);
    return {output, WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status)};
  }
};

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

int64_t held_exports() {
  int64_t held = -1;
  EXPECT_EQ(TB_SUCCESS, tb_ipc_collect(&held)) << tb_last_error_message();
  return held;
}

uint64_t pool_used() {
  uint64_t bytes = 0;
  EXPECT_EQ(TB_SUCCESS, tb_cuda_pool_used_bytes(0, &bytes)) << tb_last_error_message();
  return bytes;
}

const int64_t kShape[] = {4, 64, 3};
constexpr size_t kBytes = 4 * 64 * 3;

std::vector<unsigned char> pattern() {
  std::vector<unsigned char> bytes(kBytes);
  for (size_t i = 0; i < kBytes; ++i) bytes[i] = static_cast<unsigned char>(i);
  return bytes;
}

/// `memory` (kBytes of cudaMalloc memory on device `ordinal`) wrapped as a kShape uint8 HWC
/// tensor without a cleanup; NULL (with a test failure) when the wrap fails.
TbTensor* wrap_hwc(void* memory, int ordinal) {
  TbTensor* tensor = nullptr;
  EXPECT_EQ(TB_SUCCESS, tb_tensor_wrap(memory, TbDevice{TB_DEVICE_CUDA, ordinal}, TB_DTYPE_UINT8, 3, kShape,
                                       nullptr, "HWC", false, nullptr, nullptr, &tensor))
      << tb_last_error_message();
  return tensor;
}

unsigned long long sum_of(const std::vector<unsigned char>& bytes) {
  return std::accumulate(bytes.begin(), bytes.end(), 0ull);
}

TEST(CudaIpc, CppProducerToCppConsumerSharesOneMemory) {
  SKIP_WITHOUT_GPU();
  const auto bytes = pattern();
  void* memory = nullptr;
  CUDA_OK(cudaMalloc(&memory, kBytes));
  CUDA_OK(cudaMemcpy(memory, bytes.data(), kBytes, cudaMemcpyHostToDevice));
  TbTensor* tensor = wrap_hwc(memory, 0);
  ASSERT_NE(tensor, nullptr);
  const int64_t held_before = held_exports();
  TbIpcTensor descriptor{};
  TB_ASSERT_OK(tb_tensor_export_ipc(tensor, nullptr, &descriptor));
  EXPECT_EQ(held_exports(), held_before + 1) << "the export holds the tensor";
  int fd = 0;
  TB_ASSERT_OK(tb_ipc_pool_fd(&descriptor, &fd));
  EXPECT_EQ(fd, -1) << "cudaMalloc memory needs no pool";

  // The exporting process cannot import its own export: a clear status, not a crash.
  TbTensor* self_import = nullptr;
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT, tb_tensor_import_ipc(&descriptor, -1, nullptr, &self_import));
  EXPECT_TRUE(contains(tbtest::last_error(), "its own export")) << tbtest::last_error();
  EXPECT_EQ(self_import, nullptr);

  Child child = Child::start({"consume"});
  ASSERT_GT(child.pid, 0);
  ASSERT_TRUE(child.write_all(descriptor.bytes, sizeof descriptor.bytes));
  const auto [output, status] = child.finish();
  EXPECT_EQ(status, 0) << output;
  EXPECT_TRUE(contains(output, "sum " + std::to_string(sum_of(bytes)) + " bytes " + std::to_string(kBytes)))
      << output;
  EXPECT_TRUE(contains(output, "again: TB_ERROR_INVALID_ARGUMENT")) << "imported once: " << output;
  EXPECT_TRUE(contains(output, "live 0")) << output;
  std::vector<unsigned char> after(kBytes);
  CUDA_OK(cudaMemcpy(after.data(), memory, kBytes, cudaMemcpyDeviceToHost));
  EXPECT_EQ(after, std::vector<unsigned char>(kBytes, 0x5a)) << "the child's write is seen here";
  EXPECT_EQ(held_exports(), held_before) << "the child's release ended the lease";

  TB_ASSERT_OK(tb_tensor_release(tensor));
  CUDA_OK(cudaFree(memory));
}

TEST(MultiGpu, AnIpcTensorOnDeviceOneIsMappedOnDeviceOneWhileTheImportersCurrentDeviceIsZero) {
  SKIP_UNLESS_GPUS(2);
  const auto bytes = pattern();
  CUDA_OK(cudaSetDevice(1));
  void* memory = nullptr;
  CUDA_OK(cudaMalloc(&memory, kBytes));
  CUDA_OK(cudaMemcpy(memory, bytes.data(), kBytes, cudaMemcpyHostToDevice));
  CUDA_OK(cudaSetDevice(0));
  TbTensor* tensor = wrap_hwc(memory, 1);
  ASSERT_NE(tensor, nullptr);
  TbIpcTensor descriptor{};
  TB_ASSERT_OK(tb_tensor_export_ipc(tensor, nullptr, &descriptor));
  Child child = Child::start({"consume"});
  ASSERT_GT(child.pid, 0);
  ASSERT_TRUE(child.write_all(descriptor.bytes, sizeof descriptor.bytes));
  const auto [output, status] = child.finish();
  EXPECT_EQ(status, 0) << output;
  EXPECT_TRUE(contains(output, "sum " + std::to_string(sum_of(bytes)) + " bytes " + std::to_string(kBytes) +
                                   " device 2:1"))
      << "mapped on device 1 (by its UUID), not the importer's current device: " << output;
  TB_ASSERT_OK(tb_tensor_release(tensor));
  CUDA_OK(cudaSetDevice(1));
  CUDA_OK(cudaFree(memory));
  CUDA_OK(cudaSetDevice(0));
}

TEST(CudaIpc, PoolMemoryTravelsWithItsFileDescriptorAndOutlivesTheExportersHandle) {
  SKIP_WITHOUT_GPU();
  const uint64_t baseline = pool_used();
  const int64_t held_before = held_exports();
  const auto bytes = pattern();
  TbTensor* tensor = nullptr;
  TB_ASSERT_OK(tb_tensor_alloc(TbDevice{TB_DEVICE_CUDA, 0}, TB_DTYPE_UINT8, 3, kShape, "HWC", 0, &tensor));
  void* data = nullptr;
  TB_ASSERT_OK(tb_tensor_data(tensor, &data));
  CUDA_OK(cudaMemcpy(data, bytes.data(), kBytes, cudaMemcpyHostToDevice));
  TbIpcTensor descriptor{};
  TB_ASSERT_OK(tb_tensor_export_ipc(tensor, nullptr, &descriptor));
  int fd = -1;
  TB_ASSERT_OK(tb_ipc_pool_fd(&descriptor, &fd));
  EXPECT_GE(fd, 0) << "pool memory needs its pool's file descriptor";
  if (fd >= 0) close(fd);
  // Released before the consumer even starts: the export's lease keeps the memory.
  TB_ASSERT_OK(tb_tensor_release(tensor));

  int sockets[2];
  ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sockets));
  Child child = Child::start({"consume-socket", std::to_string(sockets[1])});
  close(sockets[1]);
  ASSERT_GT(child.pid, 0);
  TB_EXPECT_STATUS(TB_SUCCESS, tb_ipc_send(sockets[0], &descriptor));
  const auto [output, status] = child.finish();
  close(sockets[0]);
  EXPECT_EQ(status, 0) << output;
  EXPECT_TRUE(contains(output, "sum " + std::to_string(sum_of(bytes)) + " bytes " + std::to_string(kBytes)))
      << output;
  EXPECT_TRUE(contains(output, "live 0")) << output;
  EXPECT_EQ(held_exports(), held_before) << "the child's release ended the lease";
  CUDA_OK(cudaDeviceSynchronize());  // the pool memory is freed in stream order
  EXPECT_EQ(pool_used(), baseline) << "the pool memory went back once the consumer was done";
}

TEST(CudaIpc, AKilledProducersDescriptorIsAClearErrorAndEarlierImportsReleaseCleanly) {
  SKIP_WITHOUT_GPU();
  int64_t live_before = 0;
  TB_ASSERT_OK(tb_tensor_live_count(&live_before));
  // First producer: imported while it runs, then killed; the import is released afterwards.
  Child first = Child::start({"produce"});
  ASSERT_GT(first.pid, 0);
  TbIpcTensor descriptor{};
  ASSERT_TRUE(first.read_exactly(descriptor.bytes, sizeof descriptor.bytes));
  TbTensor* imported = nullptr;
  TB_ASSERT_OK(tb_tensor_import_ipc(&descriptor, -1, nullptr, &imported));
  std::vector<unsigned char> seen(kBytes);
  TbTensorInfo info{};
  TB_ASSERT_OK(tb_tensor_info(imported, &info));
  CUDA_OK(cudaMemcpy(seen.data(), info.data, kBytes, cudaMemcpyDeviceToHost));
  EXPECT_EQ(seen, pattern());
  kill(first.pid, SIGKILL);
  EXPECT_EQ(first.finish().second, -SIGKILL);
  EXPECT_EQ(TB_SUCCESS, tb_tensor_release(imported)) << tb_last_error_message();

  // Second producer: killed before the import, which is refused with the reason.
  Child second = Child::start({"produce"});
  ASSERT_GT(second.pid, 0);
  ASSERT_TRUE(second.read_exactly(descriptor.bytes, sizeof descriptor.bytes));
  kill(second.pid, SIGKILL);
  EXPECT_EQ(second.finish().second, -SIGKILL);
  TbTensor* refused = nullptr;
  TB_EXPECT_STATUS(TB_ERROR_CUDA, tb_tensor_import_ipc(&descriptor, -1, nullptr, &refused));
  EXPECT_TRUE(contains(tbtest::last_error(), "has exited")) << tbtest::last_error();
  EXPECT_EQ(refused, nullptr);

  // This process is unharmed: CUDA work and handles as before.
  void* memory = nullptr;
  CUDA_OK(cudaMalloc(&memory, 16));
  CUDA_OK(cudaMemset(memory, 0, 16));
  CUDA_OK(cudaDeviceSynchronize());
  CUDA_OK(cudaFree(memory));
  int64_t live_after = -1;
  TB_ASSERT_OK(tb_tensor_live_count(&live_after));
  EXPECT_EQ(live_after, live_before);
}

TEST(CudaIpc, ARevokedDescriptorIsRefused) {
  SKIP_WITHOUT_GPU();
  void* memory = nullptr;
  CUDA_OK(cudaMalloc(&memory, kBytes));
  TbTensor* tensor = wrap_hwc(memory, 0);
  ASSERT_NE(tensor, nullptr);
  const int64_t held_before = held_exports();
  TbIpcTensor descriptor{};
  TB_ASSERT_OK(tb_tensor_export_ipc(tensor, nullptr, &descriptor));
  TB_ASSERT_OK(tb_ipc_revoke(&descriptor));
  EXPECT_EQ(held_exports(), held_before);
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT, tb_ipc_revoke(&descriptor));
  Child child = Child::start({"consume"});
  ASSERT_TRUE(child.write_all(descriptor.bytes, sizeof descriptor.bytes));
  const auto [output, status] = child.finish();
  EXPECT_EQ(status, 1) << output;
  EXPECT_TRUE(contains(output, "lease has ended")) << output;
  TB_ASSERT_OK(tb_tensor_release(tensor));
  CUDA_OK(cudaFree(memory));
}

TEST(CudaIpc, HostAndOtherPoolsMemoryAreRefusedWithTheReason) {
  SKIP_WITHOUT_GPU();
  const int64_t shape[] = {16};
  TbTensor* async = nullptr;
  TB_ASSERT_OK(tb_tensor_alloc_async(TbDevice{TB_DEVICE_CUDA, 0}, TB_DTYPE_FLOAT32, 1, shape, nullptr, 0,
                                     nullptr, &async));
  TbIpcTensor descriptor{};
  TB_EXPECT_STATUS(TB_ERROR_NOT_SUPPORTED, tb_tensor_export_ipc(async, nullptr, &descriptor));
  EXPECT_TRUE(contains(tbtest::last_error(), "stream-ordered pool")) << tbtest::last_error();
  TbTensor* host = nullptr;
  TB_ASSERT_OK(tb_tensor_alloc(TbDevice{TB_DEVICE_CPU, 0}, TB_DTYPE_FLOAT32, 1, shape, nullptr, 0, &host));
  TB_EXPECT_STATUS(TB_ERROR_NOT_SUPPORTED, tb_tensor_export_ipc(host, nullptr, &descriptor));
  TB_ASSERT_OK(tb_tensor_release(async));
  TB_ASSERT_OK(tb_tensor_release(host));
}

}  // namespace
