// Layout benchmark (GPU): each case's bandwidth against a device-to-device copy of the same
// bytes measured in the same run. Prints a markdown table.
//
//   layout_bench                 all cases
//   layout_bench --first-call    time of the first tb_reformat in this process (kernel build or
//                                disk-cache load), after CUDA itself is initialised
//
// Bandwidth counts bytes read + bytes written. Times are medians of per-iteration CUDA events
// after warm-up; inputs are random (never zeros). Each case's output is checked once, outside the
// timed loop, against tensorbridge's CPU implementation on the same input (reformat: bit for bit;
// normalize: within 1e-5 relative); a mismatch prints the case and exits 1, printing no table.
#include <tensorbridge.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace {

#define CHECK_TB(call)                                                                  \
  do {                                                                                  \
    TbStatus s_ = (call);                                                               \
    if (s_ != TB_SUCCESS) {                                                             \
      std::fprintf(stderr, "%s: %s\n", #call, tb_last_error_message());                 \
      std::exit(1);                                                                     \
    }                                                                                   \
  } while (0)
#define CHECK_CUDA(call)                                                                \
  do {                                                                                  \
    cudaError_t e_ = (call);                                                            \
    if (e_ != cudaSuccess) {                                                            \
      std::fprintf(stderr, "%s: %s\n", #call, cudaGetErrorString(e_));                  \
      std::exit(1);                                                                     \
    }                                                                                   \
  } while (0)

struct Tensor {
  TbTensor* t = nullptr;
  Tensor(TbDataType dtype, const std::vector<int64_t>& shape, const char* layout) {
    CHECK_TB(tb_tensor_alloc(TbDevice{TB_DEVICE_CUDA, 0}, dtype, (int32_t)shape.size(), shape.data(),
                             layout, 0, &t));
  }
  ~Tensor() { tb_tensor_release(t); }
  void* data() const {
    void* p = nullptr;
    CHECK_TB(tb_tensor_data(t, &p));
    return p;
  }
  int64_t bytes() const {
    int64_t n = 0;
    CHECK_TB(tb_tensor_nbytes(t, &n));
    return n;
  }
};

// Fills device memory with random bytes (a 64 MiB random block, repeated).
void fill_random(void* device, int64_t bytes) {
  static std::vector<uint8_t> block = [] {
    std::vector<uint8_t> b(64 << 20);
    std::mt19937_64 rng(12345);
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    return b;
  }();
  for (int64_t done = 0; done < bytes; done += (int64_t)block.size()) {
    size_t n = (size_t)std::min<int64_t>((int64_t)block.size(), bytes - done);
    CHECK_CUDA(cudaMemcpy(static_cast<uint8_t*>(device) + done, block.data(), n, cudaMemcpyHostToDevice));
  }
}

// Copies a device tensor into a new host tensor of the same dtype, shape and layout.
TbTensor* to_host(const Tensor& device, TbDataType dtype, const std::vector<int64_t>& shape, const char* layout) {
  TbTensor* host = nullptr;
  CHECK_TB(tb_tensor_alloc(TbDevice{TB_DEVICE_CPU, 0}, dtype, (int32_t)shape.size(), shape.data(), layout, 0, &host));
  CHECK_TB(tb_copy(device.t, host, nullptr));
  CHECK_CUDA(cudaDeviceSynchronize());
  return host;
}

// Checks a GPU result against the CPU running the same operation (`cpu_op` fills `expected`).
// float32 outputs may differ in the last bits (fused multiply-add), everything else not at all.
void verify(const char* name, const Tensor& src, const Tensor& dst, TbDataType src_dtype, TbDataType dst_dtype,
            const std::vector<int64_t>& src_shape, const std::vector<int64_t>& dst_shape, const char* src_layout,
            const char* dst_layout, const std::function<TbStatus(TbTensor*, TbTensor*)>& cpu_op) {
  TbTensor* host_src = to_host(src, src_dtype, src_shape, src_layout);
  TbTensor* actual = to_host(dst, dst_dtype, dst_shape, dst_layout);
  TbTensor* expected = nullptr;
  CHECK_TB(tb_tensor_alloc(TbDevice{TB_DEVICE_CPU, 0}, dst_dtype, (int32_t)dst_shape.size(), dst_shape.data(),
                           dst_layout, 0, &expected));
  CHECK_TB(cpu_op(host_src, expected));
  void *a = nullptr, *e = nullptr;
  int64_t bytes = 0;
  CHECK_TB(tb_tensor_data(actual, &a));
  CHECK_TB(tb_tensor_data(expected, &e));
  CHECK_TB(tb_tensor_nbytes(expected, &bytes));
  int64_t wrong = 0;
  if (dst_dtype.code == TB_DTYPE_CODE_FLOAT && dst_dtype.bits == 32) {
    const float* x = static_cast<const float*>(a);
    const float* y = static_cast<const float*>(e);
    for (int64_t i = 0; i < bytes / 4; ++i) wrong += !(std::fabs(x[i] - y[i]) <= 1e-5f * (1 + std::fabs(y[i])));
  } else {
    wrong = std::memcmp(a, e, (size_t)bytes) != 0;
  }
  tb_tensor_release(host_src);
  tb_tensor_release(actual);
  tb_tensor_release(expected);
  if (wrong != 0) {
    std::fprintf(stderr, "MISMATCH: %s: the GPU output differs from the CPU reference\n", name);
    std::exit(1);
  }
}

// Median milliseconds of `iterations` timed runs of `work`, after `warmup` runs.
double median_ms(const std::function<void()>& work, int warmup = 3, int iterations = 15) {
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  for (int i = 0; i < warmup; ++i) work();
  std::vector<double> times;
  for (int i = 0; i < iterations; ++i) {
    CHECK_CUDA(cudaEventRecord(start, nullptr));
    work();
    CHECK_CUDA(cudaEventRecord(stop, nullptr));
    CHECK_CUDA(cudaEventSynchronize(stop));
    float ms = 0;
    CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
    times.push_back(ms);
  }
  CHECK_CUDA(cudaEventDestroy(start));
  CHECK_CUDA(cudaEventDestroy(stop));
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

// GB/s of a device-to-device copy of `bytes` (read + written).
double copy_gbps(int64_t bytes) {
  void *a = nullptr, *b = nullptr;
  CHECK_CUDA(cudaMalloc(&a, bytes));
  CHECK_CUDA(cudaMalloc(&b, bytes));
  fill_random(a, bytes);
  double ms = median_ms([&] { CHECK_CUDA(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, nullptr)); });
  CHECK_CUDA(cudaFree(a));
  CHECK_CUDA(cudaFree(b));
  return 2.0 * bytes / (ms * 1e6);
}

std::vector<int64_t> permute(const std::vector<int64_t>& shape, const std::string& from, const std::string& to) {
  std::vector<int64_t> out;
  for (char c : to) out.push_back(shape[from.find(c)]);
  return out;
}

struct Row {
  std::string name;
  double mbytes, ms, gbps, copy, ratio, target;
};

void print(const std::vector<Row>& rows) {
  std::printf("| case | MB moved | time (ms) | GB/s | copy GB/s | ratio | target | met |\n");
  std::printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n");
  for (const Row& r : rows) {
    const char* met = r.target <= 0 ? "-" : r.ratio >= r.target ? "yes" : "NO";
    std::printf("| %s | %.1f | %.4f | %.0f | %.0f | %.3f | %s | %s |\n", r.name.c_str(), r.mbytes, r.ms, r.gbps,
                r.copy, r.ratio, r.target > 0 ? std::to_string(r.target).substr(0, 4).c_str() : "-", met);
  }
}

int first_call() {
  int32_t n = 0;
  CHECK_TB(tb_cuda_device_count(&n));
  CHECK_CUDA(cudaFree(nullptr));  // CUDA context up before timing
  Tensor src(TB_DTYPE_UINT8, {1080, 1920, 3}, "HWC"), dst(TB_DTYPE_UINT8, {3, 1080, 1920}, "CHW");
  CHECK_CUDA(cudaDeviceSynchronize());
  auto t0 = std::chrono::steady_clock::now();
  CHECK_TB(tb_reformat(src.t, dst.t, nullptr));
  CHECK_CUDA(cudaDeviceSynchronize());
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("first tb_reformat call: %.2f ms\n", ms);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--first-call") == 0) return first_call();
  cudaDeviceProp prop{};
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  std::printf("device: %s, %d SMs\n\n", prop.name, prop.multiProcessorCount);

  const std::vector<std::vector<int64_t>> shapes = {
      {64, 1080, 1920, 3}, {256, 224, 224, 3}, {32, 512, 512, 64}, {64, 1080, 1920, 4}};
  std::vector<Row> rows;
  for (const auto& nhwc : shapes) {
    for (TbDataType dtype : {TB_DTYPE_UINT8, TB_DTYPE_FLOAT32}) {
      const bool f32 = dtype.bits == 32;
      for (int direction = 0; direction < 2; ++direction) {
        const std::string from = direction == 0 ? "NHWC" : "NCHW", to = direction == 0 ? "NCHW" : "NHWC";
        const std::vector<int64_t> src_shape = direction == 0 ? nhwc : permute(nhwc, "NHWC", "NCHW");
        Tensor src(dtype, src_shape, from.c_str()), dst(dtype, permute(src_shape, from, to), to.c_str());
        fill_random(src.data(), src.bytes());
        const double ms = median_ms([&] { CHECK_TB(tb_reformat(src.t, dst.t, nullptr)); });
        char name[128];
        std::snprintf(name, sizeof name, "%s->%s %s %lldx%lldx%lldx%lld", from.c_str(), to.c_str(), f32 ? "f32" : "u8",
                      (long long)nhwc[0], (long long)nhwc[1], (long long)nhwc[2], (long long)nhwc[3]);
        verify(name, src, dst, dtype, dtype, src_shape, permute(src_shape, from, to), from.c_str(), to.c_str(),
               [](TbTensor* in, TbTensor* out) { return tb_reformat(in, out, nullptr); });
        const double moved = 2.0 * src.bytes();
        const double copy = copy_gbps(src.bytes());
        const double gbps = moved / (ms * 1e6);
        double target = src.bytes() >= (32 << 20) ? (f32 ? 0.97 : 0.95) : 0;
        rows.push_back({name, moved / 1e6, ms, gbps, copy, gbps / copy, target});
      }
    }
  }
  for (const auto& nhwc : {std::vector<int64_t>{64, 1080, 1920, 3}, std::vector<int64_t>{256, 224, 224, 3}}) {
    Tensor src(TB_DTYPE_UINT8, nhwc, "NHWC"), dst(TB_DTYPE_FLOAT32, permute(nhwc, "NHWC", "NCHW"), "NCHW");
    fill_random(src.data(), src.bytes());
    const float scale[] = {1 / 58.395f, 1 / 57.12f, 1 / 57.375f};
    const float offset[] = {-123.675f / 58.395f, -116.28f / 57.12f, -103.53f / 57.375f};
    const double ms = median_ms([&] { CHECK_TB(tb_convert(src.t, dst.t, scale, offset, 3, nullptr)); });
    char name[128];
    std::snprintf(name, sizeof name, "normalize u8 NHWC->f32 NCHW %lldx%lldx%lldx%lld", (long long)nhwc[0],
                  (long long)nhwc[1], (long long)nhwc[2], (long long)nhwc[3]);
    verify(name, src, dst, TB_DTYPE_UINT8, TB_DTYPE_FLOAT32, nhwc, permute(nhwc, "NHWC", "NCHW"), "NHWC", "NCHW",
           [&](TbTensor* in, TbTensor* out) { return tb_convert(in, out, scale, offset, 3, nullptr); });
    const double moved = 5.0 * src.bytes();
    const double copy = copy_gbps(dst.bytes());
    rows.push_back({name, moved / 1e6, ms, moved / (ms * 1e6), copy, moved / (ms * 1e6) / copy, 0.90});
  }
  print(rows);

  // One 1080p image, HWC -> CHW u8: 1000 back-to-back launches between two events.
  {
    Tensor src(TB_DTYPE_UINT8, {1080, 1920, 3}, "HWC"), dst(TB_DTYPE_UINT8, {3, 1080, 1920}, "CHW");
    fill_random(src.data(), src.bytes());
    for (int i = 0; i < 20; ++i) CHECK_TB(tb_reformat(src.t, dst.t, nullptr));
    verify("HWC->CHW u8 1080x1920x3", src, dst, TB_DTYPE_UINT8, TB_DTYPE_UINT8, {1080, 1920, 3}, {3, 1080, 1920},
           "HWC", "CHW", [](TbTensor* in, TbTensor* out) { return tb_reformat(in, out, nullptr); });
    cudaEvent_t start, stop;
    CHECK_CUDA(cudaEventCreate(&start));
    CHECK_CUDA(cudaEventCreate(&stop));
    CHECK_CUDA(cudaEventRecord(start, nullptr));
    for (int i = 0; i < 1000; ++i) CHECK_TB(tb_reformat(src.t, dst.t, nullptr));
    CHECK_CUDA(cudaEventRecord(stop, nullptr));
    CHECK_CUDA(cudaEventSynchronize(stop));
    float ms = 0;
    CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
    std::printf("\n| latency case | µs per call (1000 back-to-back) | target | met |\n| --- | ---: | ---: | --- |\n");
    std::printf("| HWC->CHW u8 1080x1920x3 | %.2f | 8 | %s |\n", ms, ms <= 8.0 ? "yes" : "NO");
  }
  return 0;
}
