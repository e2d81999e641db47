// The last reference released concurrently: many threads each drop one reference (retained
// handles and views) of one tensor at the same moment; the cleanup must run exactly once, after
// the last, with every release succeeding and no handle left alive.

#include "test_support.hpp"

#include <atomic>
#include <thread>
#include <vector>

namespace {

using tbtest::CleanupCounter;

TEST(ReleaseRace, ConcurrentLastReleasesRunTheCleanupExactlyOnce) {
  constexpr int kThreads = 16, kRounds = 200;
  const int64_t live_before = tbtest::live_tensors();
  static float values[64];
  const int64_t shape[] = {64};
  for (int round = 0; round < kRounds; ++round) {
    CleanupCounter counter;
    TbTensor* t = nullptr;
    TB_ASSERT_OK(tb_tensor_wrap(values, tbtest::cpu(), TB_DTYPE_FLOAT32, 1, shape, nullptr, nullptr, false,
                                &CleanupCounter::callback, &counter, &t));
    std::vector<TbTensor*> references(kThreads, t);
    for (int i = 1; i < kThreads; ++i) {
      if (i % 2 == 0) {
        TB_ASSERT_OK(tb_tensor_retain(t));
      } else {
        TB_ASSERT_OK(tb_tensor_slice(t, 0, i, 64, 1, &references[static_cast<size_t>(i)]));  // a view
      }
    }
    std::atomic<int> ready{0}, failures{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        ready.fetch_add(1);
        while (ready.load() < kThreads) std::this_thread::yield();
        if (tb_tensor_release(references[static_cast<size_t>(i)]) != TB_SUCCESS) failures.fetch_add(1);
      });
    }
    for (auto& thread : threads) thread.join();
    ASSERT_EQ(failures.load(), 0) << "round " << round;
    ASSERT_EQ(counter.calls.load(), 1) << "round " << round << ": the cleanup must run exactly once";
    ASSERT_EQ(counter.last_data, static_cast<void*>(values));
  }
  EXPECT_EQ(tbtest::live_tensors(), live_before);
}

}  // namespace
