// Promises of the header that only a GPU can show, each in a test that fails when the promise is
// broken: operations enqueue on the caller's stream without blocking the host and wait for a
// producer's stream on the device; the current device is left alone; cross-GPU operands without
// peer access and host/device mixes are clear errors; read-only destinations are refused; NaN
// converts to 0; successful calls leave the error message alone; the NVRTC disk cache is
// populated, can be disabled and survives a corrupt file; a concurrent last release runs the
// cleanup once. Skips, printing why, without a GPU; the MultiGpu tests skip on one GPU.
//
// Streams are held with a host function that waits for a gate the test opens (cudaLaunchHostFunc),
// so a call that blocked the host, or ran its work without waiting, is caught while the gate is
// shut. The gate opens by itself after kGateTimeout, so a broken promise fails instead of hanging.

#include "cuda_test_support.hpp"

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <functional>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using tbtest::CleanupCounter;

constexpr auto kGateTimeout = std::chrono::seconds(10);

double elapsed_ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

/// Holds a stream until opened (or until kGateTimeout, so a test never hangs); opens on
/// destruction, so a failed assertion cannot leave a stream held.
class Gate {
 public:
  explicit Gate(cudaStream_t stream)
      : launched_(cudaLaunchHostFunc(stream, &Gate::wait, this) == cudaSuccess) {
    EXPECT_TRUE(launched_) << "cudaLaunchHostFunc failed";
  }
  ~Gate() {
    open();
    while (launched_ && !finished_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;
  void open() { open_.store(true); }
  /// Whether the host function gave up waiting (the test took longer than kGateTimeout).
  bool timed_out() const { return timed_out_.load(); }

 private:
  static void CUDART_CB wait(void* self_) {
    auto* self = static_cast<Gate*>(self_);
    const auto deadline = Clock::now() + kGateTimeout;
    while (!self->open_.load()) {
      if (Clock::now() > deadline) {
        self->timed_out_.store(true);
        break;
      }
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    self->finished_.store(true);
  }
  const bool launched_;
  std::atomic<bool> open_{false}, finished_{false}, timed_out_{false};
};

using tbtest::Owned;
using tbtest::data_of;

using tbtest::alloc;

template <typename T>
std::vector<T> read_back(const TbTensor* device, size_t count) {
  std::vector<T> host(count);
  EXPECT_EQ(cudaSuccess, cudaMemcpy(host.data(), data_of(device), count * sizeof(T), cudaMemcpyDeviceToHost));
  return host;
}

constexpr int64_t kH = 48, kW = 64, kC = 3;
constexpr size_t kPixels = kH * kW * kC;
const float kScale[kC] = {0.5f, 2.0f, -1.0f};
const float kOffset[kC] = {1.0f, 0.0f, 3.0f};

uint8_t pattern(size_t i) { return static_cast<uint8_t>(i * 37 + 11); }

/// Checks CHW uint8 and CHW float32 results against the HWC pattern.
void expect_planar_results(const std::vector<uint8_t>& planar, const std::vector<float>& normalized,
                           const std::string& what) {
  int64_t wrong = 0;
  for (int64_t c = 0; c < kC; ++c)
    for (int64_t h = 0; h < kH; ++h)
      for (int64_t w = 0; w < kW; ++w) {
        const uint8_t x = pattern(static_cast<size_t>((h * kW + w) * kC + c));
        const size_t at = static_cast<size_t>((c * kH + h) * kW + w);
        const float y = static_cast<float>(x) * kScale[c] + kOffset[c];
        if (planar[at] != x || std::fabs(normalized[at] - y) > 1e-5f * (1 + std::fabs(y))) ++wrong;
      }
  EXPECT_EQ(wrong, 0) << what << ": elements differ from the pattern";
}

/// Reformat and convert with the kernels these tests use, so that compiling or loading a module
/// (which may wait for the device) happens before any stream is held.
void warm_up(TbTensor* hwc, TbTensor* planar, TbTensor* normalized) {
  ASSERT_EQ(TB_SUCCESS, tb_reformat(hwc, planar, nullptr)) << tb_last_error_message();
  ASSERT_EQ(TB_SUCCESS, tb_convert(hwc, normalized, kScale, kOffset, kC, nullptr)) << tb_last_error_message();
  CUDA_OK(cudaDeviceSynchronize());
}

// ---- Stream promises --------------------------------------------------------------------------

TEST(StreamPromises, ImportSyncReformatAndConvertReturnWhileTheProducerIsHeldAndWaitOnTheDevice) {
  SKIP_WITHOUT_GPU();
  CUDA_OK(cudaSetDevice(0));
  cudaStream_t producer = nullptr, consumer = nullptr;
  CUDA_OK(cudaStreamCreateWithFlags(&producer, cudaStreamNonBlocking));
  CUDA_OK(cudaStreamCreateWithFlags(&consumer, cudaStreamNonBlocking));
  uint8_t* staged = nullptr;  // pinned, so the producer's upload is truly asynchronous
  CUDA_OK(cudaMallocHost(reinterpret_cast<void**>(&staged), kPixels));
  for (size_t i = 0; i < kPixels; ++i) staged[i] = pattern(i);
  void* image = nullptr;
  CUDA_OK(cudaMalloc(&image, kPixels));
  CUDA_OK(cudaMemset(image, 0, kPixels));
  Owned planar(alloc(tbtest::cuda(0), TB_DTYPE_UINT8, {kC, kH, kW}, "CHW"));
  Owned normalized(alloc(tbtest::cuda(0), TB_DTYPE_FLOAT32, {kC, kH, kW}, "CHW"));
  // Pinned, so that the application's asynchronous read below is asynchronous (a copy into
  // pageable memory returns only when it is done).
  uint8_t* raw = nullptr;
  CUDA_OK(cudaMallocHost(reinterpret_cast<void**>(&raw), kPixels));
  std::memset(raw, 0, kPixels);
  {
    TbArrayInterface plain = tbtest::array_interface(image, "|u1", {kH, kW, kC});
    TbTensor* warm = nullptr;
    TB_ASSERT_OK(tb_tensor_from_cuda_array_interface(&plain, "HWC", nullptr, nullptr, &warm));
    Owned owned_warm(warm);
    warm_up(warm, planar.t, normalized.t);
  }
  CUDA_OK(cudaMemset(data_of(planar.t), 0xCD, kPixels));
  CUDA_OK(cudaDeviceSynchronize());

  Owned imported;
  {
    Gate gate(producer);
    // The producer writes the image only once the gate opens.
    CUDA_OK(cudaMemcpyAsync(image, staged, kPixels, cudaMemcpyHostToDevice, producer));
    TbArrayInterface in = tbtest::array_interface(image, "|u1", {kH, kW, kC});
    in.has_stream = true;
    in.stream = reinterpret_cast<uint64_t>(producer);

    struct Step {
      const char* name;
      bool consumer_has_work;  // whether the consumer stream must now be waiting
      std::function<TbStatus()> call;
    };
    const Step steps[] = {
        {"tb_tensor_from_cuda_array_interface", false,
         [&] { return tb_tensor_from_cuda_array_interface(&in, "HWC", nullptr, nullptr, &imported.t); }},
        {"tb_reformat", true, [&] { return tb_reformat(imported.t, planar.t, consumer); }},
        {"tb_convert", true, [&] { return tb_convert(imported.t, normalized.t, kScale, kOffset, kC, consumer); }},
        {"tb_tensor_sync", true, [&] { return tb_tensor_sync(imported.t, consumer); }},
    };
    for (const Step& step : steps) {
      const auto start = Clock::now();
      ASSERT_EQ(TB_SUCCESS, step.call()) << step.name << ": " << tb_last_error_message();
      const double host_ms = elapsed_ms(start);
      EXPECT_LT(host_ms, 100.0) << step.name << " blocked the host behind the held producer stream";
      EXPECT_EQ(cudaErrorNotReady, cudaStreamQuery(producer))
          << step.name << ": the producer stream ran on (the gate is shut)";
      if (step.consumer_has_work) {
        EXPECT_EQ(cudaErrorNotReady, cudaStreamQuery(consumer))
            << step.name << ": the consumer stream finished without waiting for the producer";
      }
    }
    // The application's own read, ordered by tb_tensor_sync above.
    CUDA_OK(cudaMemcpyAsync(raw, image, kPixels, cudaMemcpyDeviceToHost, consumer));
    EXPECT_EQ(cudaErrorNotReady, cudaStreamQuery(consumer)) << "the read did not wait for the producer";
    EXPECT_FALSE(gate.timed_out()) << "the calls took longer than the gate waits";
    gate.open();
  }
  CUDA_OK(cudaStreamSynchronize(consumer));
  std::vector<uint8_t> expected(kPixels);
  for (size_t i = 0; i < kPixels; ++i) expected[i] = pattern(i);
  EXPECT_EQ(std::vector<uint8_t>(raw, raw + kPixels), expected)
      << "tb_tensor_sync: the consumer read before the producer wrote";
  CUDA_OK(cudaFreeHost(raw));
  expect_planar_results(read_back<uint8_t>(planar.t, kPixels), read_back<float>(normalized.t, kPixels),
                        "reformat/convert on the consumer stream");
  imported.reset();
  CUDA_OK(cudaDeviceSynchronize());
  CUDA_OK(cudaFree(image));
  CUDA_OK(cudaFreeHost(staged));
  CUDA_OK(cudaStreamDestroy(producer));
  CUDA_OK(cudaStreamDestroy(consumer));
}

TEST(StreamPromises, OperationsRunOnTheCallersStreamNotAnother) {
  SKIP_WITHOUT_GPU();
  CUDA_OK(cudaSetDevice(0));
  cudaStream_t held = nullptr, other = nullptr;
  CUDA_OK(cudaStreamCreateWithFlags(&held, cudaStreamNonBlocking));
  CUDA_OK(cudaStreamCreateWithFlags(&other, cudaStreamNonBlocking));
  Owned hwc(alloc(tbtest::cuda(0), TB_DTYPE_UINT8, {kH, kW, kC}, "HWC"));
  Owned planar(alloc(tbtest::cuda(0), TB_DTYPE_UINT8, {kC, kH, kW}, "CHW"));
  Owned normalized(alloc(tbtest::cuda(0), TB_DTYPE_FLOAT32, {kC, kH, kW}, "CHW"));
  std::vector<uint8_t> input(kPixels);
  for (size_t i = 0; i < kPixels; ++i) input[i] = pattern(i);
  CUDA_OK(cudaMemcpy(data_of(hwc.t), input.data(), kPixels, cudaMemcpyHostToDevice));
  warm_up(hwc.t, planar.t, normalized.t);
  CUDA_OK(cudaMemset(data_of(planar.t), 0xCD, kPixels));
  CUDA_OK(cudaMemset(data_of(normalized.t), 0xCD, kPixels * 4));
  CUDA_OK(cudaDeviceSynchronize());
  {
    Gate gate(held);
    TB_ASSERT_OK(tb_reformat(hwc.t, planar.t, held));
    TB_ASSERT_OK(tb_convert(hwc.t, normalized.t, kScale, kOffset, kC, held));
    // Work on the held stream cannot have run: the destinations still hold the poison.
    CUDA_OK(cudaStreamSynchronize(other));
    CUDA_OK(cudaStreamSynchronize(nullptr));
    std::vector<uint8_t> early(kPixels);
    CUDA_OK(cudaMemcpyAsync(early.data(), data_of(planar.t), kPixels, cudaMemcpyDeviceToHost, other));
    CUDA_OK(cudaStreamSynchronize(other));
    EXPECT_EQ(early, std::vector<uint8_t>(kPixels, 0xCD)) << "the reformat ran on another stream";
    EXPECT_EQ(cudaErrorNotReady, cudaStreamQuery(held));
    EXPECT_FALSE(gate.timed_out());
    gate.open();
  }
  CUDA_OK(cudaStreamSynchronize(held));
  expect_planar_results(read_back<uint8_t>(planar.t, kPixels), read_back<float>(normalized.t, kPixels),
                        "after the held stream ran");
  CUDA_OK(cudaStreamDestroy(held));
  CUDA_OK(cudaStreamDestroy(other));
}

// ---- Devices ----------------------------------------------------------------------------------

TEST(MultiGpu, CurrentDeviceOneIsLeftCurrentByWorkOnDeviceZero) {
  SKIP_UNLESS_GPUS(2);
  CUDA_OK(cudaSetDevice(1));
  auto expect_current_is_one = [](const char* after) {
    int current = -1;
    EXPECT_EQ(cudaSuccess, cudaGetDevice(&current));
    EXPECT_EQ(current, 1) << "the current device changed after " << after;
  };
  Owned host(alloc(tbtest::cpu(), TB_DTYPE_UINT8, {kH, kW, kC}, "HWC"));
  expect_current_is_one("a host allocation");
  Owned hwc(alloc(tbtest::cuda(0), TB_DTYPE_UINT8, {kH, kW, kC}, "HWC"));
  expect_current_is_one("tb_tensor_alloc on device 0");
  Owned planar(alloc(tbtest::cuda(0), TB_DTYPE_UINT8, {kC, kH, kW}, "CHW"));
  Owned normalized(alloc(tbtest::cuda(0), TB_DTYPE_FLOAT32, {kC, kH, kW}, "CHW"));
  TB_ASSERT_OK(tb_copy(host.t, hwc.t, nullptr));
  expect_current_is_one("tb_copy to device 0");
  TB_ASSERT_OK(tb_reformat(hwc.t, planar.t, nullptr));
  expect_current_is_one("tb_reformat on device 0");
  TB_ASSERT_OK(tb_convert(hwc.t, normalized.t, kScale, kOffset, kC, nullptr));
  expect_current_is_one("tb_convert on device 0");
  TbTensor* cloned = nullptr;
  TB_ASSERT_OK(tb_tensor_clone(planar.t, nullptr, &cloned));
  expect_current_is_one("tb_tensor_clone on device 0");
  TB_ASSERT_OK(tb_tensor_sync(cloned, nullptr));
  expect_current_is_one("tb_tensor_sync on device 0");
  TB_ASSERT_OK(tb_tensor_release(cloned));
  expect_current_is_one("releasing a device 0 tensor");
  int32_t count = 0;
  TB_ASSERT_OK(tb_cuda_device_count(&count));
  expect_current_is_one("tb_cuda_device_count");
  CUDA_OK(cudaSetDevice(0));
  CUDA_OK(cudaDeviceSynchronize());
}

TEST(MultiGpu, CrossGpuOperandsWorkWithPeerAccessAndAreNotSupportedWithout) {
  SKIP_UNLESS_GPUS(2);
  // The work runs on the destination's device (1), which must reach device 0's memory.
  int can = 0;
  CUDA_OK(cudaDeviceCanAccessPeer(&can, 1, 0));
  const std::vector<int64_t> shape = {kH, kW, kC};
  Owned host(alloc(tbtest::cpu(), TB_DTYPE_UINT8, shape, "HWC"));
  for (size_t i = 0; i < kPixels; ++i) static_cast<uint8_t*>(data_of(host.t))[i] = pattern(i);
  Owned on0(alloc(tbtest::cuda(0), TB_DTYPE_UINT8, shape, "HWC"));
  Owned on1(alloc(tbtest::cuda(1), TB_DTYPE_UINT8, {kC, kH, kW}, "CHW"));
  TB_ASSERT_OK(tb_copy(host.t, on0.t, nullptr));
  TbStatus status = tb_reformat(on0.t, on1.t, nullptr);
  if (can) {
    ASSERT_EQ(status, TB_SUCCESS) << "peer access is available: " << tb_last_error_message();
    for (int device : {1, 0}) {
      CUDA_OK(cudaSetDevice(device));
      CUDA_OK(cudaDeviceSynchronize());
    }
    // tensorbridge's memory is stream-ordered pool memory: only the devices granted access
    // reach it (device 1 was granted device 0's, not the reverse), so the copy runs on device 1.
    CUDA_OK(cudaSetDevice(1));
    std::vector<uint8_t> planar(kPixels);
    CUDA_OK(cudaMemcpy(planar.data(), data_of(on1.t), kPixels, cudaMemcpyDeviceToHost));
    CUDA_OK(cudaSetDevice(0));
    for (int64_t c = 0; c < kC; ++c)
      for (int64_t p = 0; p < kH * kW; ++p)
        ASSERT_EQ(planar[static_cast<size_t>(c * kH * kW + p)], pattern(static_cast<size_t>(p * kC + c)));
  } else {
    EXPECT_EQ(status, TB_ERROR_NOT_SUPPORTED) << tb_last_error_message();
    EXPECT_NE(tbtest::last_error().find("cannot access device"), std::string::npos) << tbtest::last_error();
  }
}

// ---- Clear errors -----------------------------------------------------------------------------

TEST(GpuErrors, HostDeviceMismatchesAreClearErrors) {
  SKIP_WITHOUT_GPU();
  Owned device(alloc(tbtest::cuda(0), TB_DTYPE_UINT8, {2, 3}, "HW"));
  Owned host(alloc(tbtest::cpu(), TB_DTYPE_UINT8, {2, 3}, "HW"));
  TbArrayInterface out{};
  TB_EXPECT_STATUS(TB_ERROR_DEVICE_MISMATCH, tb_tensor_to_array_interface(device.t, &out));
  EXPECT_NE(tbtest::last_error().find("is in GPU memory"), std::string::npos) << tbtest::last_error();
  TB_EXPECT_STATUS(TB_ERROR_DEVICE_MISMATCH, tb_tensor_to_cuda_array_interface(host.t, &out));
  EXPECT_NE(tbtest::last_error().find("is in host memory"), std::string::npos) << tbtest::last_error();
  std::vector<uint8_t> pageable(6);
  TbArrayInterface in = tbtest::array_interface(pageable.data(), "|u1", {2, 3});
  TbTensor* t = nullptr;
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT, tb_tensor_from_cuda_array_interface(&in, nullptr, nullptr, nullptr, &t));
  EXPECT_NE(tbtest::last_error().find("is not CUDA memory"), std::string::npos) << tbtest::last_error();
  EXPECT_EQ(t, nullptr);
}

TEST(GpuErrors, ReadOnlyDestinationsAreRefused) {
  SKIP_WITHOUT_GPU();
  void* buffer = nullptr;
  CUDA_OK(cudaMalloc(&buffer, kPixels * 4));
  CUDA_OK(cudaMemset(buffer, 0x5A, kPixels * 4));
  const int64_t planar_shape[] = {kC, kH, kW};
  TbTensor *ro_u8 = nullptr, *ro_f32 = nullptr;
  TB_ASSERT_OK(tb_tensor_wrap(buffer, tbtest::cuda(0), TB_DTYPE_UINT8, 3, planar_shape, nullptr, "CHW", true,
                              nullptr, nullptr, &ro_u8));
  TB_ASSERT_OK(tb_tensor_wrap(buffer, tbtest::cuda(0), TB_DTYPE_FLOAT32, 3, planar_shape, nullptr, "CHW", true,
                              nullptr, nullptr, &ro_f32));
  Owned a(ro_u8), b(ro_f32);
  Owned hwc(alloc(tbtest::cuda(0), TB_DTYPE_UINT8, {kH, kW, kC}, "HWC"));
  TB_EXPECT_STATUS(TB_ERROR_READ_ONLY, tb_reformat(hwc.t, ro_u8, nullptr));
  EXPECT_NE(tbtest::last_error().find("read-only"), std::string::npos) << tbtest::last_error();
  TB_EXPECT_STATUS(TB_ERROR_READ_ONLY, tb_convert(hwc.t, ro_f32, kScale, kOffset, kC, nullptr));
  EXPECT_NE(tbtest::last_error().find("read-only"), std::string::npos) << tbtest::last_error();
  CUDA_OK(cudaDeviceSynchronize());
  std::vector<uint8_t> after(kPixels * 4);
  CUDA_OK(cudaMemcpy(after.data(), buffer, after.size(), cudaMemcpyDeviceToHost));
  EXPECT_EQ(after, std::vector<uint8_t>(after.size(), 0x5A)) << "a refused call wrote the destination";
  a.reset();
  b.reset();
  CUDA_OK(cudaFree(buffer));
}

TEST(GpuErrors, SuccessfulGpuCallsLeaveTheErrorMessageUnchanged) {
  SKIP_WITHOUT_GPU();
  cudaStream_t stream = nullptr;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT, tb_reformat(nullptr, nullptr, nullptr));
  const std::string before = tbtest::last_error();
  ASSERT_FALSE(before.empty());
  auto unchanged = [&](const char* call) {
    EXPECT_EQ(tbtest::last_error(), before) << call << " succeeded but changed the message";
  };
  Owned host(alloc(tbtest::cpu(), TB_DTYPE_UINT8, {kH, kW, kC}, "HWC"));
  TbTensor *hwc = nullptr, *planar = nullptr, *normalized = nullptr, *cloned = nullptr, *pooled = nullptr;
  const int64_t shape[] = {kH, kW, kC}, planar_shape[] = {kC, kH, kW};
  TB_ASSERT_OK(tb_tensor_alloc(tbtest::cuda(0), TB_DTYPE_UINT8, 3, shape, "HWC", 0, &hwc));
  unchanged("tb_tensor_alloc(cuda)");
  TB_ASSERT_OK(tb_tensor_alloc_async(tbtest::cuda(0), TB_DTYPE_UINT8, 3, planar_shape, "CHW", 0, stream, &planar));
  unchanged("tb_tensor_alloc_async");
  TB_ASSERT_OK(tb_tensor_alloc(tbtest::cuda(0), TB_DTYPE_FLOAT32, 3, planar_shape, "CHW", 0, &normalized));
  TB_ASSERT_OK(tb_copy(host.t, hwc, stream));
  unchanged("tb_copy host->device");
  TB_ASSERT_OK(tb_reformat(hwc, planar, stream));
  unchanged("tb_reformat");
  TB_ASSERT_OK(tb_convert(hwc, normalized, kScale, kOffset, kC, stream));
  unchanged("tb_convert");
  TB_ASSERT_OK(tb_tensor_clone(planar, stream, &cloned));
  unchanged("tb_tensor_clone");
  TB_ASSERT_OK(tb_reformat_new(hwc, "CHW", stream, &pooled));
  unchanged("tb_reformat_new");
  TB_ASSERT_OK(tb_tensor_sync(cloned, nullptr));
  unchanged("tb_tensor_sync");
  TbArrayInterface cai{};
  TB_ASSERT_OK(tb_tensor_to_cuda_array_interface(planar, &cai));
  unchanged("tb_tensor_to_cuda_array_interface");
  TbTensor* imported = nullptr;
  TB_ASSERT_OK(tb_tensor_from_cuda_array_interface(&cai, "CHW", nullptr, nullptr, &imported));
  unchanged("tb_tensor_from_cuda_array_interface");
  TbDLManagedTensorVersioned* dl = nullptr;
  TB_ASSERT_OK(tb_tensor_to_dlpack_versioned(planar, &dl));
  unchanged("tb_tensor_to_dlpack_versioned");
  int32_t count = 0;
  TB_ASSERT_OK(tb_cuda_device_count(&count));
  uint64_t used = 0;
  TB_ASSERT_OK(tb_cuda_pool_used_bytes(0, &used));
  unchanged("tb_cuda_device_count / tb_cuda_pool_used_bytes");
  dl->deleter(dl);
  for (TbTensor* t : {imported, pooled, cloned, normalized, planar, hwc}) TB_ASSERT_OK(tb_tensor_release(t));
  unchanged("tb_tensor_release of device tensors");
  CUDA_OK(cudaStreamSynchronize(stream));
  CUDA_OK(cudaStreamDestroy(stream));
}

TEST(GpuOps, ConvertToUint8TurnsNanIntoZeroAndSaturates) {
  SKIP_WITHOUT_GPU();
  const float inf = INFINITY;
  const std::vector<float> values = {NAN, -NAN, inf, -inf, 300.0f, -5.0f, 127.5f, 128.5f, 0.49f, 254.5f};
  const std::vector<uint8_t> expected = {0, 0, 255, 0, 255, 0, 128, 128, 0, 254};
  const int64_t n = static_cast<int64_t>(values.size());
  Owned src(alloc(tbtest::cuda(0), TB_DTYPE_FLOAT32, {n}, nullptr));
  Owned dst(alloc(tbtest::cuda(0), TB_DTYPE_UINT8, {n}, nullptr));
  CUDA_OK(cudaMemcpy(data_of(src.t), values.data(), values.size() * 4, cudaMemcpyHostToDevice));
  CUDA_OK(cudaMemset(data_of(dst.t), 0xCD, values.size()));
  TB_ASSERT_OK(tb_convert(src.t, dst.t, nullptr, nullptr, 0, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  EXPECT_EQ(read_back<uint8_t>(dst.t, values.size()), expected)
      << "NaN -> 0, +Inf -> 255, -Inf -> 0, half to even, saturated";
  // The same values through a scale and offset, and a channel layout (the per-channel kernels).
  Owned src2(alloc(tbtest::cuda(0), TB_DTYPE_FLOAT32, {n / 2, 2}, "HC"));
  Owned dst2(alloc(tbtest::cuda(0), TB_DTYPE_UINT8, {2, n / 2}, "CH"));
  CUDA_OK(cudaMemcpy(data_of(src2.t), values.data(), values.size() * 4, cudaMemcpyHostToDevice));
  const float scale[] = {1.0f, 1.0f}, offset[] = {0.0f, 0.0f};
  TB_ASSERT_OK(tb_convert(src2.t, dst2.t, scale, offset, 2, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  std::vector<uint8_t> planar = read_back<uint8_t>(dst2.t, values.size());
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_EQ(planar[static_cast<size_t>((i % 2) * (n / 2) + i / 2)], expected[static_cast<size_t>(i)])
        << "value " << values[static_cast<size_t>(i)];
  }
}

// ---- Lifetime ---------------------------------------------------------------------------------

TEST(GpuLifetime, ConcurrentLastReleasesOfADeviceTensorRunTheCleanupOnce) {
  SKIP_WITHOUT_GPU();
  constexpr int kThreads = 16, kRounds = 50;
  for (int round = 0; round < kRounds; ++round) {
    void* buffer = nullptr;
    CUDA_OK(cudaMalloc(&buffer, 4096));
    struct Counted {
      std::atomic<int> calls{0};
      static void cleanup(void* self, void* data) {
        static_cast<Counted*>(self)->calls.fetch_add(1);
        cudaFree(data);
      }
    } counted;
    const int64_t shape[] = {1024};
    TbTensor* t = nullptr;
    TB_ASSERT_OK(tb_tensor_wrap(buffer, tbtest::cuda(0), TB_DTYPE_FLOAT32, 1, shape, nullptr, nullptr, false,
                                &Counted::cleanup, &counted, &t));
    std::vector<TbTensor*> references(kThreads, t);
    for (int i = 1; i < kThreads; ++i) {
      if (i % 2 == 0) {
        TB_ASSERT_OK(tb_tensor_retain(t));
      } else {
        TB_ASSERT_OK(tb_tensor_select(t, 0, i, &references[static_cast<size_t>(i)]));  // a view
      }
    }
    std::atomic<bool> go{false};
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] {
        while (!go.load()) std::this_thread::yield();
        if (tb_tensor_release(references[static_cast<size_t>(i)]) != TB_SUCCESS) failures.fetch_add(1);
      });
    }
    go.store(true);
    for (auto& thread : threads) thread.join();
    ASSERT_EQ(failures.load(), 0) << "round " << round;
    ASSERT_EQ(counted.calls.load(), 1) << "round " << round << ": the cleanup must run exactly once";
  }
  CUDA_OK(cudaDeviceSynchronize());
}

// ---- NVRTC disk cache -------------------------------------------------------------------------
//
// Kernels load once per process, so each step runs this same test binary again in a fresh
// process (the child mode below) with the environment under test, and looks at the directory.

constexpr const char* kCacheTest = "GpuKernelCache.DiskCacheIsPopulatedCanBeDisabledAndSurvivesACorruptFile";

// A reformat that no other test runs (rank 7 reversed, uint16): its module is built in the child.
void run_cache_child_reformat() {
  const std::vector<int64_t> shape = {2, 3, 2, 3, 2, 3, 2};
  const size_t n = 2 * 3 * 2 * 3 * 2 * 3 * 2;
  std::vector<uint16_t> input(n);
  for (size_t i = 0; i < n; ++i) input[i] = static_cast<uint16_t>(i * 7 + 1);
  Owned host(alloc(tbtest::cpu(), TB_DTYPE_UINT16, shape, "ABCDEFG"));
  std::memcpy(data_of(host.t), input.data(), n * 2);
  Owned device(alloc(tbtest::cuda(0), TB_DTYPE_UINT16, shape, "ABCDEFG"));
  const std::vector<int64_t> reversed(shape.rbegin(), shape.rend());
  Owned out(alloc(tbtest::cuda(0), TB_DTYPE_UINT16, reversed, "GFEDCBA"));
  Owned expected(alloc(tbtest::cpu(), TB_DTYPE_UINT16, reversed, "GFEDCBA"));
  TB_ASSERT_OK(tb_copy(host.t, device.t, nullptr));
  TB_ASSERT_OK(tb_reformat(device.t, out.t, nullptr));
  TB_ASSERT_OK(tb_reformat(host.t, expected.t, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  std::vector<uint16_t> got = read_back<uint16_t>(out.t, n);
  EXPECT_EQ(std::memcmp(got.data(), data_of(expected.t), n * 2), 0) << "the GPU reformat differs from the CPU";
}

std::string self_path() {
  char path[4096] = {};
  const ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  return n > 0 ? std::string(path, static_cast<size_t>(n)) : std::string();
}

/// Runs the child mode in a new process with `environment` ("NAME=value ..."), returning its exit
/// status (0: the reformat succeeded and was right).
int run_child(const std::string& environment) {
  const std::string command = "env " + environment + " TB_KERNEL_CACHE_CHILD=1 '" + self_path() +
                              "' --gtest_filter=" + kCacheTest + " >/dev/null 2>&1";
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* entry = readdir(d)) {
      if (entry->d_name[0] != '.') names.push_back(entry->d_name);
    }
    closedir(d);
  }
  return names;
}

std::string make_temp_dir() {
  char pattern[] = "/tmp/tb-kernel-cache-XXXXXX";
  const char* dir = mkdtemp(pattern);
  return dir ? dir : "";
}

TEST(GpuKernelCache, DiskCacheIsPopulatedCanBeDisabledAndSurvivesACorruptFile) {
  SKIP_WITHOUT_GPU();
  if (std::getenv("TB_KERNEL_CACHE_CHILD") != nullptr) {
    run_cache_child_reformat();  // child mode: one fresh process, one kernel build or load
    return;
  }
  ASSERT_FALSE(self_path().empty());
  const std::string cache = make_temp_dir(), home = make_temp_dir();
  ASSERT_FALSE(cache.empty());
  ASSERT_FALSE(home.empty());

  ASSERT_EQ(run_child("TENSORBRIDGE_CACHE_DIR=" + cache), 0) << "first process (compiles)";
  std::vector<std::string> cubins = files_in(cache);
  ASSERT_EQ(cubins.size(), 1u) << "the first process writes one cubin into " << cache;
  const std::string file = cache + "/" + cubins[0];
  struct stat first {};
  ASSERT_EQ(stat(file.c_str(), &first), 0);
  ASSERT_GT(first.st_size, 1024);

  ASSERT_EQ(run_child("TENSORBRIDGE_CACHE_DIR=" + cache), 0) << "second process (loads from disk)";
  EXPECT_EQ(files_in(cache).size(), 1u);

  // Truncated to a third: must be detected, compiled again and replaced, not loaded or fatal.
  ASSERT_EQ(truncate(file.c_str(), first.st_size / 3), 0);
  EXPECT_EQ(run_child("TENSORBRIDGE_CACHE_DIR=" + cache), 0) << "a truncated cache file broke the process";
  struct stat repaired {};
  ASSERT_EQ(stat(file.c_str(), &repaired), 0);
  EXPECT_EQ(repaired.st_size, first.st_size) << "the truncated file was not replaced";

  // Overwritten with garbage of the same size.
  {
    FILE* f = std::fopen(file.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::vector<char> garbage(static_cast<size_t>(first.st_size), '\x5a');
    std::fwrite(garbage.data(), 1, garbage.size(), f);
    std::fclose(f);
  }
  EXPECT_EQ(run_child("TENSORBRIDGE_CACHE_DIR=" + cache), 0) << "a garbage cache file broke the process";

  // An empty value disables the disk cache: nothing is written under the default location.
  EXPECT_EQ(run_child("TENSORBRIDGE_CACHE_DIR= HOME=" + home + " XDG_CACHE_HOME=" + home), 0);
  EXPECT_TRUE(files_in(home).empty()) << "TENSORBRIDGE_CACHE_DIR= still wrote under " << home;
  // The default location, for contrast: the same run without the variable does write there.
  EXPECT_EQ(run_child("-u TENSORBRIDGE_CACHE_DIR HOME=" + home + " XDG_CACHE_HOME=" + home), 0);
  EXPECT_FALSE(files_in(home + "/tensorbridge").empty()) << "the default cache directory was not used";

  std::system(("rm -rf '" + cache + "' '" + home + "'").c_str());
}

}  // namespace
