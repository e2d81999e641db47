// CUDA IPC between two C++ processes: this test exports a cudaMalloc'd tensor and hands the
// TbIpcTensor bytes to tb_ipc_child (ipc_child.cpp) through a pipe; the child imports it, reads
// it (the sum it prints must match) and overwrites it, and the write is seen here: one memory.
// Also: an export of tensorbridge's own pool memory and of host memory is refused with the
// reason, and an import in the exporting process fails with a message.

#include "cuda_test_support.hpp"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

extern char** environ;

namespace {

/// Runs `program`, writes `input` to its stdin, returns its stdout and exit status.
std::pair<std::string, int> run_child(const char* program, const void* input, size_t size) {
  int to_child[2], from_child[2];
  if (pipe(to_child) != 0 || pipe(from_child) != 0) return {"pipe failed", -1};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, to_child[0], 0);
  posix_spawn_file_actions_adddup2(&actions, from_child[1], 1);
  posix_spawn_file_actions_addclose(&actions, to_child[1]);
  posix_spawn_file_actions_addclose(&actions, from_child[0]);
  pid_t pid = 0;
  char* argv[] = {const_cast<char*>(program), nullptr};
  const int spawned = posix_spawn(&pid, program, &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  close(to_child[0]);
  close(from_child[1]);
  if (spawned != 0) return {"posix_spawn failed", -1};
  const ssize_t written = write(to_child[1], input, size);
  close(to_child[1]);
  std::string output;
  char buffer[256];
  for (ssize_t n; (n = read(from_child[0], buffer, sizeof buffer)) > 0;) output.append(buffer, n);
  close(from_child[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (written != static_cast<ssize_t>(size)) return {output + " (short write)", -1};
  return {output, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

TEST(CudaIpc, CppProducerToCppConsumerSharesOneMemory) {
  SKIP_WITHOUT_GPU();
  const int64_t shape[] = {4, 64, 3};
  const size_t bytes = 4 * 64 * 3;
  std::vector<unsigned char> pattern(bytes);
  std::iota(pattern.begin(), pattern.end(), 0);
  const unsigned long long sum = std::accumulate(pattern.begin(), pattern.end(), 0ull);
  void* memory = nullptr;
  CUDA_OK(cudaMalloc(&memory, bytes));
  CUDA_OK(cudaMemcpy(memory, pattern.data(), bytes, cudaMemcpyHostToDevice));
  TbTensor* tensor = nullptr;
  TB_ASSERT_OK(tb_tensor_wrap(memory, TbDevice{TB_DEVICE_CUDA, 0}, TB_DTYPE_UINT8, 3, shape, nullptr, "HWC",
                              false, nullptr, nullptr, &tensor));
  TbIpcTensor descriptor{};
  TB_ASSERT_OK(tb_tensor_export_ipc(tensor, nullptr, &descriptor));

  // The exporting process cannot import its own export: a clear status, not a crash.
  TbTensor* self_import = nullptr;
  TB_EXPECT_STATUS(TB_ERROR_CUDA, tb_tensor_import_ipc(&descriptor, nullptr, &self_import));
  EXPECT_EQ(self_import, nullptr);

  const auto [output, status] = run_child(TB_IPC_CHILD, descriptor.bytes, sizeof descriptor.bytes);
  EXPECT_EQ(status, 0) << output;
  EXPECT_NE(output.find("sum " + std::to_string(sum) + " bytes " + std::to_string(bytes)), std::string::npos)
      << output;
  EXPECT_NE(output.find("live 0"), std::string::npos) << output;
  std::vector<unsigned char> after(bytes);
  CUDA_OK(cudaMemcpy(after.data(), memory, bytes, cudaMemcpyDeviceToHost));
  EXPECT_EQ(after, std::vector<unsigned char>(bytes, 0x5a)) << "the child's write is seen here";

  TB_ASSERT_OK(tb_tensor_release(tensor));
  CUDA_OK(cudaFree(memory));
}

TEST(CudaIpc, PoolAndHostMemoryAreRefusedWithTheReason) {
  SKIP_WITHOUT_GPU();
  const int64_t shape[] = {16};
  TbTensor* pooled = nullptr;
  TB_ASSERT_OK(tb_tensor_alloc(TbDevice{TB_DEVICE_CUDA, 0}, TB_DTYPE_FLOAT32, 1, shape, nullptr, 0, &pooled));
  TbIpcTensor descriptor{};
  TB_EXPECT_STATUS(TB_ERROR_NOT_SUPPORTED, tb_tensor_export_ipc(pooled, nullptr, &descriptor));
  EXPECT_NE(tbtest::last_error().find("stream-ordered pool"), std::string::npos) << tbtest::last_error();
  TbTensor* host = nullptr;
  TB_ASSERT_OK(tb_tensor_alloc(TbDevice{TB_DEVICE_CPU, 0}, TB_DTYPE_FLOAT32, 1, shape, nullptr, 0, &host));
  TB_EXPECT_STATUS(TB_ERROR_NOT_SUPPORTED, tb_tensor_export_ipc(host, nullptr, &descriptor));
  TB_ASSERT_OK(tb_tensor_release(pooled));
  TB_ASSERT_OK(tb_tensor_release(host));
}

}  // namespace
