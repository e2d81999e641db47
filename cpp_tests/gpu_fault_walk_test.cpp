// The GPU fault-injection walk. Built only against a library with the cargo feature
// `fault-injection` (TENSORBRIDGE_FAULT_LIBRARY; scripts/stage-prebuilt.sh stages one in
// .prebuilt/fault/), which exports the switch declared below (absent from the header and from
// release builds).
//
// A scenario through the C ABI on the GPU — wrap device memory, CUDA array-interface export and
// import, DLPack export and import, stream-ordered and synchronous allocation, reformat, convert on
// another stream, copies host → device and device → host (staged), device → pinned and pinned →
// host, clone, a DLPack export handed to a consumer stream, release — runs again and again with
// the n-th acquisition of the thread failing (an allocation, a handle or a CUDA driver call),
// n = 0, 1, 2 … until a run completes without an injected failure; then again with every
// process-wide cache filled (loaded kernels, spare events), where the traces of the runs show that
// run n failed the n-th acquisition of a run without a failure. Every injected failure must
// come back as a status (never TB_ERROR_INTERNAL) whose message names the injected site; after
// every run the live tensor count and the device pool's used bytes (after a device sync) are back
// at their baseline, and the wrapped memory's cleanup and the imported array's keep-alive ran
// exactly once (none when the wrap or the import failed). The completed run's outputs are checked
// against the CPU.
#include "cuda_test_support.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

extern "C" {
TbStatus tb_fault_arm(uint64_t n);
TbStatus tb_fault_disarm(const char** fired_site);
TbStatus tb_fault_trace(const char** sites, uint64_t capacity, uint64_t* count);
}

namespace {

using tbtest::CleanupCounter;

constexpr int64_t kH = 4, kW = 6, kC = 3;
constexpr int64_t kPixels = kH * kW * kC;
constexpr float kScale = 0.5f, kOffset = 1.0f;

/// The first failing step of a run: its status and the thread's message.
struct Failure {
  TbStatus status = TB_SUCCESS;
  std::string step;
  std::string message;
};

/// One run of the scenario; `made` collects every handle to release, `exports` every DLPack
/// export still ours.
class Scenario {
 public:
  Scenario(void* device_image, cudaStream_t stream, CleanupCounter* cleanups,
           CleanupCounter* keep_alives)
      : device_image_(device_image),
        stream_(stream),
        cleanups_(cleanups),
        keep_alives_(keep_alives),
        host_in_(kPixels),
        host_out_(kPixels, -1.0f),
        host_planar_(kPixels, 0) {
    for (int64_t i = 0; i < kPixels; ++i) host_in_[i] = static_cast<uint8_t>(3 * i + 1);
  }

  ~Scenario() { release(); }

  bool wrapped = false;   // the wrap succeeded: its cleanup must run once
  bool imported = false;  // the array-interface import succeeded: its keep-alive must run once

  /// Runs the scenario, stopping at the first failure.
  Failure run() {
    Failure failure;
    auto ok = [&](const char* step, TbStatus status) {
      if (status == TB_SUCCESS) return true;
      failure = Failure{status, step, tb_last_error_message()};
      return false;
    };
    const int64_t hwc[] = {kH, kW, kC};
    const int64_t chw[] = {kC, kH, kW};
    void* stream = stream_;

    TbTensor* image = nullptr;
    if (!ok("wrap", tb_tensor_wrap(device_image_, tbtest::cuda(0), TB_DTYPE_UINT8, 3, hwc, nullptr,
                                   "HWC", false, &CleanupCounter::callback, cleanups_, &image)))
      return failure;
    keep(image);
    wrapped = true;

    // The CUDA array interface, with `stream` as the producer's stream.
    TbArrayInterface described{};
    if (!ok("to CAI", tb_tensor_to_cuda_array_interface(image, &described))) return failure;
    described.has_stream = true;
    described.stream = reinterpret_cast<uint64_t>(stream_);
    TbTensor* from_cai = nullptr;
    if (!ok("from CAI", tb_tensor_from_cuda_array_interface(&described, "HWC",
                                                           &CleanupCounter::callback, keep_alives_,
                                                           &from_cai)))
      return failure;
    keep(from_cai);
    imported = true;

    // DLPack round trip; a refused import leaves the export ours.
    TbDLManagedTensorVersioned* managed = nullptr;
    if (!ok("to DLPack", tb_tensor_to_dlpack_versioned(from_cai, &managed))) return failure;
    TbTensor* from_dlpack = nullptr;
    TbStatus status = tb_tensor_from_dlpack_versioned(managed, "HWC", &from_dlpack);
    if (status != TB_SUCCESS) {
      exports_.push_back(managed);
      ok("from DLPack", status);
      return failure;
    }
    keep(from_dlpack);

    // Stream-ordered allocation, reformat HWC → CHW on `stream`.
    TbTensor* planar = nullptr;
    if (!ok("alloc async", tb_tensor_alloc_async(tbtest::cuda(0), TB_DTYPE_UINT8, 3, chw, "CHW", 0,
                                                 stream, &planar)))
      return failure;
    keep(planar);
    if (!ok("reformat", tb_reformat(from_dlpack, planar, stream))) return failure;

    // Convert on the legacy default stream: it waits for `stream` on the device.
    TbTensor* normalized = nullptr;
    const float scale[] = {kScale}, offset[] = {kOffset};
    if (!ok("convert", tb_convert_new(planar, "CHW", TB_DTYPE_FLOAT32, scale, offset, 1, nullptr,
                                      &normalized)))
      return failure;
    keep(normalized);

    // Host → device (pageable: staged) into a synchronous allocation.
    TbTensor* host_in = nullptr;
    if (!ok("wrap host input", tb_tensor_wrap(host_in_.data(), tbtest::cpu(), TB_DTYPE_UINT8, 3, hwc,
                                              nullptr, "HWC", true, nullptr, nullptr, &host_in)))
      return failure;
    keep(host_in);
    TbTensor* uploaded = nullptr;
    if (!ok("alloc", tb_tensor_alloc(tbtest::cuda(0), TB_DTYPE_UINT8, 3, hwc, "HWC", 0, &uploaded)))
      return failure;
    keep(uploaded);
    if (!ok("copy host to device", tb_copy(host_in, uploaded, stream))) return failure;
    TbTensor* copy = nullptr;
    if (!ok("clone", tb_tensor_clone(uploaded, stream, &copy))) return failure;
    keep(copy);

    // Device → pageable host (staged, waits for the device).
    TbTensor* host_out = nullptr;
    if (!ok("wrap host output", tb_tensor_wrap(host_out_.data(), tbtest::cpu(), TB_DTYPE_FLOAT32, 3,
                                               chw, nullptr, "CHW", false, nullptr, nullptr,
                                               &host_out)))
      return failure;
    keep(host_out);
    if (!ok("copy device to host", tb_copy(normalized, host_out, stream))) return failure;

    // Device → pinned on `stream`, then pinned → host on the CPU (waits for the device).
    TbTensor* pinned = nullptr;
    if (!ok("alloc pinned", tb_tensor_alloc(TbDevice{TB_DEVICE_CUDA_HOST, 0}, TB_DTYPE_UINT8, 3,
                                            chw, "CHW", 0, &pinned)))
      return failure;
    keep(pinned);
    if (!ok("copy device to pinned", tb_copy(planar, pinned, stream))) return failure;
    TbTensor* host_planar = nullptr;
    if (!ok("wrap host planar", tb_tensor_wrap(host_planar_.data(), tbtest::cpu(), TB_DTYPE_UINT8,
                                               3, chw, nullptr, "CHW", false, nullptr, nullptr,
                                               &host_planar)))
      return failure;
    keep(host_planar);
    if (!ok("copy pinned to host", tb_copy(pinned, host_planar, nullptr))) return failure;

    // A DLPack export for a consumer on `stream`, given back later by its deleter.
    if (!ok("sync", tb_tensor_sync(copy, stream))) return failure;
    TbDLManagedTensorVersioned* exported = nullptr;
    if (!ok("export DLPack", tb_tensor_to_dlpack_versioned(copy, &exported))) return failure;
    exports_.push_back(exported);
    return failure;
  }

  /// Releases every handle (newest first) and gives back every export; expects each release to
  /// succeed (a release is never failed by injection).
  void release() {
    for (auto it = made_.rbegin(); it != made_.rend(); ++it) {
      EXPECT_EQ(TB_SUCCESS, tb_tensor_release(*it)) << tb_last_error_message();
    }
    made_.clear();
    for (TbDLManagedTensorVersioned* managed : exports_) managed->deleter(managed);
    exports_.clear();
  }

  /// The completed run's outputs against the CPU (after the stream and the device are done).
  void expect_outputs() const {
    for (int64_t c = 0; c < kC; ++c) {
      for (int64_t y = 0; y < kH; ++y) {
        for (int64_t x = 0; x < kW; ++x) {
          const uint8_t pixel = static_cast<uint8_t>(7 * ((y * kW + x) * kC + c) + 2);
          const int64_t at = (c * kH + y) * kW + x;
          ASSERT_EQ(host_planar_[at], pixel) << "planar copy at c=" << c << " y=" << y << " x=" << x;
          ASSERT_EQ(host_out_[at], pixel * kScale + kOffset)
              << "normalized copy at c=" << c << " y=" << y << " x=" << x;
        }
      }
    }
  }

 private:
  void keep(TbTensor* tensor) { made_.push_back(tensor); }

  void* device_image_;
  cudaStream_t stream_;
  CleanupCounter* cleanups_;
  CleanupCounter* keep_alives_;
  std::vector<uint8_t> host_in_;
  std::vector<float> host_out_;
  std::vector<uint8_t> host_planar_;
  std::vector<TbTensor*> made_;
  std::vector<TbDLManagedTensorVersioned*> exports_;
};

uint64_t pool_used_bytes() {
  uint64_t bytes = 0;
  EXPECT_EQ(TB_SUCCESS, tb_cuda_pool_used_bytes(0, &bytes)) << tb_last_error_message();
  return bytes;
}

/// Driver calls and acquisitions the scenario reaches for certain; the walk must have failed each.
const char* const kMustBeWalked[] = {
    "handle",           "allocation",       "cuCtxPushCurrent",  "cuPointerGetAttributes",
    "cuMemAllocFromPoolAsync", "cuMemcpyAsync", "cuModuleLoadData", "cuModuleGetFunction",
    "cuLaunchKernel",   "cuEventRecord",    "cuStreamWaitEvent", "cuStreamSynchronize",
};

// The switch itself, on the host (runs everywhere): the armed acquisition fails once, its site is
// reported and named in the message, the trace lists the armed period's acquisitions, and nothing
// fails once disarmed.
TEST(FaultSwitch, TheArmedAcquisitionFailsOnceAndIsNamed) {
  std::vector<uint8_t> pixels(kPixels);
  const int64_t hwc[] = {kH, kW, kC};
  CleanupCounter cleanups;
  TbTensor* first = nullptr;
  TbTensor* second = nullptr;
  ASSERT_EQ(TB_SUCCESS, tb_fault_arm(1));
  TB_ASSERT_OK(tb_tensor_wrap(pixels.data(), tbtest::cpu(), TB_DTYPE_UINT8, 3, hwc, nullptr, "HWC",
                              false, &CleanupCounter::callback, &cleanups, &first));
  EXPECT_EQ(TB_ERROR_OUT_OF_MEMORY,
            tb_tensor_wrap(pixels.data(), tbtest::cpu(), TB_DTYPE_UINT8, 3, hwc, nullptr, "HWC",
                           false, &CleanupCounter::callback, &cleanups, &second));
  const std::string message = tb_last_error_message();
  EXPECT_NE(message.find("handle: injected failure"), std::string::npos) << message;
  EXPECT_EQ(second, nullptr);
  EXPECT_EQ(cleanups.calls.load(), 0) << "a refused wrap ran its cleanup";
  const char* fired = nullptr;
  ASSERT_EQ(TB_SUCCESS, tb_fault_disarm(&fired));
  ASSERT_NE(fired, nullptr);
  EXPECT_STREQ(fired, "handle");
  uint64_t count = 0;
  const char* sites[4] = {};
  ASSERT_EQ(TB_SUCCESS, tb_fault_trace(sites, 4, &count)) << tb_last_error_message();
  ASSERT_EQ(count, 2u) << "each wrap acquires its handle, and nothing else on the host";
  EXPECT_STREQ(sites[0], "handle");
  EXPECT_STREQ(sites[1], "handle");
  EXPECT_EQ(TB_ERROR_INVALID_ARGUMENT, tb_fault_trace(nullptr, 1, &count));
  ASSERT_EQ(TB_SUCCESS, tb_fault_disarm(&fired));
  EXPECT_EQ(fired, nullptr) << "disarmed twice, yet a site is reported";
  EXPECT_EQ(TB_ERROR_INVALID_ARGUMENT, tb_fault_disarm(nullptr));
  TB_ASSERT_OK(tb_tensor_release(first));
  EXPECT_EQ(cleanups.calls.load(), 1);
}

/// Arms "no failure": a run traced without an injected one.
constexpr uint64_t kNoFailure = UINT64_MAX;

/// One run of the scenario: the injected site (empty when none fired) and the sites the thread
/// acquired while armed, in order.
struct Outcome {
  std::string fired;
  std::vector<std::string> trace;
};

/// The sites the thread acquired from its last tb_fault_arm to its tb_fault_disarm.
std::vector<std::string> armed_trace() {
  uint64_t count = 0;
  EXPECT_EQ(TB_SUCCESS, tb_fault_trace(nullptr, 0, &count)) << tb_last_error_message();
  std::vector<const char*> sites(count);
  EXPECT_EQ(TB_SUCCESS, tb_fault_trace(sites.data(), count, &count)) << tb_last_error_message();
  sites.resize(std::min<size_t>(count, sites.size()));
  return std::vector<std::string>(sites.begin(), sites.end());
}

/// Runs the scenario over one wrapped device image and stream, checking every run.
class Walk {
 public:
  Walk(void* device_image, cudaStream_t stream)
      : device_image_(device_image),
        stream_(stream),
        live_baseline_(tbtest::live_tensors()),
        pool_baseline_(pool_used_bytes()) {}

  /// Runs the scenario once with the thread's n-th acquisition failing (kNoFailure: none), then
  /// checks the outcome: an injected failure is a clear status naming its site, a run without one
  /// completes with the CPU's bytes; afterwards nothing is leaked and the wrap's cleanup and the
  /// import's keep-alive ran once each (none when they failed).
  void run_once(uint64_t n, Outcome* out) {
    CleanupCounter cleanups, keep_alives;
    bool wrapped = false, imported = false;
    Failure failure;
    const char* fired = nullptr;
    {
      Scenario scenario(device_image_, stream_, &cleanups, &keep_alives);
      ASSERT_EQ(TB_SUCCESS, tb_fault_arm(n));
      failure = scenario.run();
      ASSERT_EQ(TB_SUCCESS, tb_fault_disarm(&fired));
      out->fired = fired ? fired : "";
      out->trace = armed_trace();
      const std::string& site = out->fired;
      wrapped = scenario.wrapped;
      imported = scenario.imported;
      if (!fired) {
        ASSERT_EQ(failure.status, TB_SUCCESS)
            << "n = " << n << ": step '" << failure.step << "' failed without an injected failure: "
            << tb_status_name(failure.status) << ": " << failure.message;
        CUDA_OK(cudaStreamSynchronize(stream_));
        CUDA_OK(cudaDeviceSynchronize());
        scenario.expect_outputs();
      } else {
        ASSERT_NE(failure.status, TB_SUCCESS)
            << "n = " << n << ": the injected failure of " << site << " was swallowed";
        EXPECT_NE(failure.status, TB_ERROR_INTERNAL) << "n = " << n << ": " << failure.message;
        EXPECT_TRUE(failure.status == TB_ERROR_CUDA || failure.status == TB_ERROR_OUT_OF_MEMORY)
            << "n = " << n << ": " << site << " failed step '" << failure.step << "' with "
            << tb_status_name(failure.status) << ": " << failure.message;
        EXPECT_NE(failure.message.find(site), std::string::npos)
            << "n = " << n << ": the message does not name the injected site " << site << ": "
            << failure.message;
        EXPECT_NE(failure.message.find("injected"), std::string::npos)
            << "n = " << n << ": " << failure.message;
      }
    }  // every handle released, every export given back
    CUDA_OK(cudaStreamSynchronize(stream_));
    CUDA_OK(cudaDeviceSynchronize());
    const std::string where = "n = " + (n == kNoFailure ? std::string("none") : std::to_string(n)) +
                              " (" + (fired ? out->fired : std::string("no injection")) + ")";
    ASSERT_EQ(tbtest::live_tensors(), live_baseline_) << where << ": handles leaked";
    ASSERT_EQ(pool_used_bytes(), pool_baseline_) << where << ": device pool memory leaked";
    ASSERT_EQ(cleanups.calls.load(), wrapped ? 1 : 0) << where << ": the wrap's cleanup ran "
                                                      << cleanups.calls.load() << " time(s)";
    ASSERT_EQ(keep_alives.calls.load(), imported ? 1 : 0)
        << where << ": the import's keep-alive ran " << keep_alives.calls.load() << " time(s)";
    if (cleanups.calls.load() == 1) {
      EXPECT_EQ(cleanups.last_data, device_image_) << where;
    }
  }

 private:
  void* device_image_;
  cudaStream_t stream_;
  int64_t live_baseline_;
  uint64_t pool_baseline_;
};

/// A trace as "0 handle, 1 allocation, …", for failure messages.
std::string listed(const std::vector<std::string>& trace) {
  std::string text;
  for (size_t i = 0; i < trace.size(); ++i) {
    text += (i ? ", " : "") + std::to_string(i) + " " + trace[i];
  }
  return text;
}

int print_sites(const std::map<std::string, int>& walked) {
  int points = 0;
  for (const auto& [site, count] : walked) {
    std::printf("  %-26s %d\n", site.c_str(), count);
    points += count;
  }
  return points;
}

// Two walks. Some acquisitions are made only on first use in the process — the kernel modules'
// loads and function look-ups, events created before there are spare ones — so each run of the
// first walk makes fewer than the one before once such a step succeeded, and advancing n then
// jumps over the acquisitions that moved up (a kernel's cuLaunchKernel comes right after its
// first cuModuleGetFunction). The first walk is kept for those first uses; the second runs with
// every cache filled, preceded each time by a run without a failure (which refills what a failure
// path gave up, e.g. a spare event destroyed after a failed record), and checks from the traces
// that run n failed exactly the n-th acquisition of a run without a failure: every one is failed.
TEST(GpuFaultWalk, EveryInjectedFailureIsAClearStatusAndLeaksNothing) {
  SKIP_WITHOUT_GPU();
  // No disk cache of kernels: a module the driver refuses to load from the disk cache is compiled
  // again by design, which would recover from an injected cuModuleLoadData.
  ASSERT_EQ(0, setenv("TENSORBRIDGE_CACHE_DIR", "", 1));
  const char* unused = nullptr;
  ASSERT_EQ(TB_SUCCESS, tb_fault_disarm(&unused)) << tb_last_error_message();

  std::vector<uint8_t> pixels(kPixels);
  for (int64_t i = 0; i < kPixels; ++i) pixels[i] = static_cast<uint8_t>(7 * i + 2);
  void* device_image = nullptr;
  CUDA_OK(cudaMalloc(&device_image, kPixels));
  CUDA_OK(cudaMemcpy(device_image, pixels.data(), kPixels, cudaMemcpyHostToDevice));
  cudaStream_t stream = nullptr;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  CUDA_OK(cudaDeviceSynchronize());
  Walk walk(device_image, stream);

  // First use: n = 0, 1, 2 … until a run completes.
  std::map<std::string, int> first_use;  // injected site → failure points there
  bool completed = false;
  uint64_t n = 0;
  for (; n < 2000 && !completed; ++n) {
    Outcome run;
    walk.run_once(n, &run);
    if (HasFatalFailure()) return;
    if (run.fired.empty()) {
      completed = true;
    } else {
      ++first_use[run.fired];
    }
  }
  ASSERT_TRUE(completed) << "the scenario never completed in " << n << " runs";
  std::printf("gpu fault walk, first use (kernels loaded, events created): %llu runs, injected "
              "failures by site:\n",
              static_cast<unsigned long long>(n));
  const int first_points = print_sites(first_use);

  // Every cache filled: the acquisitions of a run without a failure, each failed in turn.
  Outcome reference;
  walk.run_once(kNoFailure, &reference);
  if (HasFatalFailure()) return;
  const std::vector<std::string>& sequence = reference.trace;
  ASSERT_FALSE(sequence.empty()) << "a run traced no acquisition";
  std::map<std::string, int> filled;
  for (uint64_t k = 0; k < sequence.size(); ++k) {
    if (k > 0) {
      Outcome refill;
      walk.run_once(kNoFailure, &refill);
      if (HasFatalFailure()) return;
    }
    Outcome run;
    walk.run_once(k, &run);
    if (HasFatalFailure()) return;
    const std::string where = "n = " + std::to_string(k) + " with every cache filled";
    const std::string traces = "\n  without a failure: " + listed(sequence) +
                               "\n  this run:          " + listed(run.trace);
    ASSERT_EQ(run.fired, sequence[k])
        << where << ": the injected failure did not land on acquisition " << k << " of a run "
        << "without a failure (" << sequence[k] << ")" << traces;
    ASSERT_GT(run.trace.size(), k) << where << traces;
    for (uint64_t i = 0; i <= k; ++i) {
      ASSERT_EQ(run.trace[i], sequence[i])
          << where << ": acquisition " << i << " differs from a run without a failure" << traces;
    }
    ++filled[run.fired];
  }
  std::printf("gpu fault walk, every cache filled: each of the %zu acquisitions of a run failed "
              "in turn, by site:\n",
              sequence.size());
  const int filled_points = print_sites(filled);
  std::printf("gpu fault walk: %d failure points (%d first use + %d every cache filled), each a "
              "clear status, nothing leaked\n",
              first_points + filled_points, first_points, filled_points);

  for (const char* site : kMustBeWalked) {
    EXPECT_TRUE(first_use.count(site) || filled.count(site)) << "the walk never failed " << site;
  }

  CUDA_OK(cudaStreamDestroy(stream));
  CUDA_OK(cudaFree(device_image));
}

}  // namespace
