// Concurrency stress over the host paths of the C ABI: 16 threads, each running N iterations of
// wrap → views → DLPack export/import (legacy and versioned) → array-interface export/import →
// foreign DLPack import → host reformat → release, while all of them also retain and release one
// shared tensor. At the end every cleanup, keep-alive and deleter has run exactly once per
// registration, the shared tensor's cleanup exactly once, and no handle is alive.
//
// N comes from TB_STRESS_ITERATIONS (default 2000, a few seconds; the recorded run in
// docs/RELIABILITY.md used 100000). scripts/sanitize.sh runs it under ThreadSanitizer.
#include "test_support.hpp"

#include <cstdlib>
#include <thread>

namespace {

constexpr int kThreads = 16;

int iterations() {
  const char* text = std::getenv("TB_STRESS_ITERATIONS");
  const int n = text ? std::atoi(text) : 0;
  return n > 0 ? n : 2000;
}

std::atomic<long> g_cleanups{0};
std::atomic<long> g_keep_alives{0};
std::atomic<long> g_foreign_deleters{0};
std::atomic<long> g_failures{0};

void free_cleanup(void* /*context*/, void* data) {
  std::free(data);
  g_cleanups.fetch_add(1);
}

void count_keep_alive(void* /*context*/, void* /*data*/) { g_keep_alives.fetch_add(1); }

void foreign_deleter(TbDLManagedTensorVersioned* managed) {
  g_foreign_deleters.fetch_add(1);
  delete[] static_cast<int64_t*>(managed->manager_ctx);
  delete managed;
}

// Records a failure without gtest assertions (which are not meant for many threads at once).
bool ok(TbStatus status) {
  if (status != TB_SUCCESS) g_failures.fetch_add(1);
  return status == TB_SUCCESS;
}

// A foreign producer's versioned DLPack tensor over `data` (rank 1, float32), with a counting
// deleter that frees the struct and its shape.
TbDLManagedTensorVersioned* foreign_tensor(float* data, int64_t n) {
  auto* shape = new int64_t[1]{n};
  auto* managed = new TbDLManagedTensorVersioned{};
  managed->version = {1, 1};
  managed->manager_ctx = shape;
  managed->deleter = foreign_deleter;
  managed->dl_tensor.data = data;
  managed->dl_tensor.device = {TB_DEVICE_CPU, 0};
  managed->dl_tensor.ndim = 1;
  managed->dl_tensor.dtype = TB_DTYPE_FLOAT32;
  managed->dl_tensor.shape = shape;
  return managed;
}

void one_iteration(int thread, int i, TbTensor* shared) {
  // Shared tensor: an extra reference for the length of the iteration.
  ok(tb_tensor_retain(shared));

  const int64_t shape[] = {3, 4, 2};  // HWC
  auto* pixels = static_cast<float*>(std::malloc(sizeof(float) * 24));
  for (int k = 0; k < 24; ++k) pixels[k] = static_cast<float>(thread * 1000 + i + k);
  TbTensor* image = nullptr;
  if (!ok(tb_tensor_wrap(pixels, tbtest::cpu(), TB_DTYPE_FLOAT32, 3, shape, nullptr, TB_LAYOUT_HWC,
                         false, free_cleanup, nullptr, &image))) {
    std::free(pixels);
    tb_tensor_release(shared);
    return;
  }

  TbTensor *planar = nullptr, *flipped = nullptr, *row = nullptr;
  ok(tb_tensor_permute(image, TB_LAYOUT_CHW, &planar));
  ok(tb_tensor_slice(image, 0, -1, INT64_MIN, -1, &flipped));
  ok(tb_tensor_select(flipped, 0, 1, &row));

  // DLPack legacy and versioned round trips of a view.
  TbDLManagedTensor* legacy = nullptr;
  TbTensor* from_legacy = nullptr;
  if (ok(tb_tensor_to_dlpack(planar, &legacy)) &&
      !ok(tb_tensor_from_dlpack(legacy, TB_LAYOUT_CHW, &from_legacy))) {
    legacy->deleter(legacy);
  }
  TbDLManagedTensorVersioned* versioned = nullptr;
  TbTensor* from_versioned = nullptr;
  if (ok(tb_tensor_to_dlpack_versioned(row, &versioned)) &&
      !ok(tb_tensor_from_dlpack_versioned(versioned, nullptr, &from_versioned))) {
    versioned->deleter(versioned);
  }

  // Array interface round trip, with a keep-alive.
  TbArrayInterface desc{};
  TbTensor* from_interface = nullptr;
  if (ok(tb_tensor_to_array_interface(flipped, &desc))) {
    ok(tb_tensor_from_array_interface(&desc, TB_LAYOUT_HWC, count_keep_alive, nullptr,
                                      &from_interface));
  }

  // A foreign producer's tensor over the same memory, through the versioned import.
  TbDLManagedTensorVersioned* foreign = foreign_tensor(pixels, 24);
  TbTensor* from_foreign = nullptr;
  if (!ok(tb_tensor_from_dlpack_versioned(foreign, nullptr, &from_foreign))) {
    foreign->deleter(foreign);
  }

  // A small host reformat, checked at one element: CHW[c][h][w] = HWC[h][w][c].
  TbTensor* reformatted = nullptr;
  if (ok(tb_reformat_new(from_legacy ? from_legacy : image, TB_LAYOUT_HWC, nullptr, &reformatted))) {
    TbTensorInfo info{};
    if (ok(tb_tensor_info(reformatted, &info))) {
      const float got = static_cast<const float*>(info.data)[(2 * 4 + 3) * 2 + 1];
      if (got != pixels[(2 * 4 + 3) * 2 + 1]) g_failures.fetch_add(1);
    }
  }

  for (TbTensor* t : {reformatted, from_foreign, from_interface, from_versioned, from_legacy, row,
                      flipped, planar, image}) {
    if (t) ok(tb_tensor_release(t));
  }
  ok(tb_tensor_release(shared));
}

TEST(Stress, SixteenThreadsWrapViewExchangeAndRelease) {
  const int n = iterations();
  const long cleanups_before = g_cleanups.load();
  float shared_data[4] = {1, 2, 3, 4};
  tbtest::CleanupCounter shared_cleanup;
  const int64_t shared_shape[] = {4};
  TbTensor* shared = nullptr;
  TB_ASSERT_OK(tb_tensor_wrap(shared_data, tbtest::cpu(), TB_DTYPE_FLOAT32, 1, shared_shape, nullptr,
                              nullptr, true, tbtest::CleanupCounter::callback, &shared_cleanup,
                              &shared));

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, n, shared] {
      for (int i = 0; i < n; ++i) one_iteration(t, i, shared);
    });
  }
  for (auto& thread : threads) thread.join();

  EXPECT_EQ(g_failures.load(), 0) << "calls failed; last message on this thread: "
                                  << tb_last_error_message();
  EXPECT_EQ(shared_cleanup.calls.load(), 0) << "the shared tensor was freed while referenced";
  TB_ASSERT_OK(tb_tensor_release(shared));
  EXPECT_EQ(shared_cleanup.calls.load(), 1);
  const long expected = static_cast<long>(kThreads) * n;
  EXPECT_EQ(g_cleanups.load() - cleanups_before, expected) << "one cleanup per wrapped image";
  EXPECT_EQ(g_keep_alives.load(), expected) << "one keep-alive per array-interface import";
  EXPECT_EQ(g_foreign_deleters.load(), expected) << "one deleter per foreign DLPack import";
  EXPECT_EQ(tbtest::live_tensors(), 0);
}

}  // namespace
