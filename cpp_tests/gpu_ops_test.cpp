// GPU operations against the CPU reference: every reformat / copy must equal the CPU result
// bit for bit, every convert within 1 ulp, on fresh random data with odd extents and strided
// views; destinations are poisoned first so an unwritten element cannot pass. Skips, printing
// why, where no GPU is usable; the two-GPU tests skip on one GPU.

#include "cuda_test_support.hpp"

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

using tbtest::alloc;
using tbtest::cpu;
using tbtest::cuda;
using tbtest::data_of;
using tbtest::info_of;
using tbtest::Owned;

// Bytes of the whole allocation behind a packed-or-padded host tensor (span from data).
int64_t span_bytes(const TbTensorInfo& info) {
  int64_t item = info.dtype.bits / 8, end = item;
  for (int d = 0; d < info.rank; ++d) {
    if (info.shape[d] == 0) return 0;
    end += (info.shape[d] - 1) * info.strides[d];
  }
  return end;
}

void fill_random(TbTensor* host, std::mt19937_64& rng, bool finite_floats) {
  TbTensorInfo info = info_of(host);
  auto* bytes = static_cast<uint8_t*>(info.data);
  int64_t n = span_bytes(info);
  for (int64_t i = 0; i < n; ++i) bytes[i] = static_cast<uint8_t>(rng());
  const bool half = info.dtype.bits == 16 && (info.dtype.code == TB_DTYPE_CODE_FLOAT ||
                                               info.dtype.code == TB_DTYPE_CODE_BFLOAT);
  if (finite_floats && half) {  // keep the exponent below all-ones: no Inf or NaN
    const uint16_t exponent = info.dtype.code == TB_DTYPE_CODE_FLOAT ? 0x7C00 : 0x7F80;
    for (int64_t i = 0; i + 2 <= n; i += 2) {
      uint16_t v;
      std::memcpy(&v, bytes + i, 2);
      if ((v & exponent) == exponent) v = static_cast<uint16_t>(v ^ (exponent & (exponent >> 1)));
      std::memcpy(bytes + i, &v, 2);
    }
  }
  if (finite_floats && info.dtype.code == TB_DTYPE_CODE_FLOAT && info.dtype.bits == 32) {
    std::uniform_real_distribution<float> value(-300.0f, 300.0f);
    for (int64_t i = 0; i + 4 <= n; i += 4) {
      float v = value(rng);
      std::memcpy(bytes + i, &v, 4);
    }
  }
}

// Copies a host tensor's elements into a new device tensor of the same layout (packed or with
// `row_alignment`), through tb_copy.
TbTensor* to_device(TbTensor* host, int64_t row_alignment = 0) {
  TbTensorInfo info = info_of(host);
  std::vector<int64_t> shape(info.shape, info.shape + info.rank);
  TbTensor* device = alloc(cuda(0), info.dtype, shape, info.layout.labels, row_alignment);
  EXPECT_EQ(TB_SUCCESS, tb_copy(host, device, nullptr)) << tb_last_error_message();
  return device;
}

// Poisons every byte of a device tensor's span.
void poison(TbTensor* device) {
  TbTensorInfo info = info_of(device);
  ASSERT_EQ(cudaSuccess, cudaMemset(info.data, 0xCD, static_cast<size_t>(span_bytes(info))));
}

// Reads a device tensor back into a packed host tensor.
TbTensor* to_host(TbTensor* device) {
  TbTensorInfo info = info_of(device);
  std::vector<int64_t> shape(info.shape, info.shape + info.rank);
  TbTensor* host = alloc(cpu(), info.dtype, shape, info.layout.labels);
  EXPECT_EQ(TB_SUCCESS, tb_copy(device, host, nullptr)) << tb_last_error_message();
  EXPECT_EQ(cudaSuccess, cudaDeviceSynchronize());
  return host;
}

// Element-wise comparison of two packed host tensors: exact, or within `ulps` for floats.
void expect_equal(TbTensor* expected, TbTensor* actual, int ulps, const std::string& what) {
  TbTensorInfo e = info_of(expected), a = info_of(actual);
  ASSERT_EQ(e.nbytes, a.nbytes) << what;
  const int item = e.dtype.bits / 8;
  const auto* x = static_cast<const uint8_t*>(e.data);
  const auto* y = static_cast<const uint8_t*>(a.data);
  int64_t mismatches = 0;
  for (int64_t i = 0; i < e.nbytes; i += item) {
    int64_t diff = 0;
    if (item == 4) {
      int32_t p, q;
      std::memcpy(&p, x + i, 4);
      std::memcpy(&q, y + i, 4);
      diff = std::llabs(static_cast<long long>(p) - q);
    } else if (item == 2) {
      int16_t p, q;
      std::memcpy(&p, x + i, 2);
      std::memcpy(&q, y + i, 2);
      diff = std::llabs(static_cast<long long>(p) - q);
    } else {
      diff = std::memcmp(x + i, y + i, item) != 0 ? (item == 1 ? std::llabs(x[i] - y[i]) : 1 << 20) : 0;
    }
    if (diff > ulps && ++mismatches <= 3) {
      ADD_FAILURE() << what << ": element " << i / item << " differs by " << diff;
    }
  }
  EXPECT_EQ(mismatches, 0) << what;
}

struct ReformatCase {
  const char* from;
  const char* to;
  std::vector<int64_t> shape;  // in `from` layout
};

const ReformatCase kReformats[] = {
    {"NHWC", "NCHW", {2, 7, 1023, 3}}, {"NCHW", "NHWC", {2, 3, 7, 1023}},
    {"NHWC", "NCHW", {3, 1, 7, 4}},    {"NCHW", "NHWC", {1, 4, 3, 7}},
    {"NHWC", "NCHW", {2, 3, 65, 64}},  {"NCHW", "NHWC", {2, 64, 3, 65}},
    {"HWC", "CHW", {7, 1023, 1}},      {"CHW", "HWC", {1, 1, 1}},
    {"NCDHW", "NDHWC", {2, 3, 3, 5, 7}}, {"ABCDE", "EDCBA", {3, 1, 7, 3, 2}},
    {"NHWC", "NHWC", {2, 3, 7, 5}},    {"HW", "WH", {1023, 33}},
    // Aligned extents that take the register kernels (C = 3, 4) and the tiled one (C = 40, 64).
    {"NHWC", "NCHW", {2, 4, 16, 3}},   {"NCHW", "NHWC", {2, 3, 4, 16}},
    {"NHWC", "NCHW", {2, 8, 8, 4}},    {"NCHW", "NHWC", {2, 4, 8, 8}},
    {"NHWC", "NCHW", {2, 4, 64, 64}},  {"NCHW", "NHWC", {2, 64, 4, 64}},
    {"NHWC", "NCHW", {1, 3, 48, 40}},  {"NCHW", "NHWC", {1, 40, 3, 48}},
    // Many tiles, partial ones at the end of every image (packed) or of every row (padded).
    {"NHWC", "NCHW", {2, 13, 301, 64}}, {"NCHW", "NHWC", {2, 64, 13, 301}},
    // C = 32 and 16: tiles as wide as the channels.
    {"NHWC", "NCHW", {2, 5, 67, 32}},   {"NCHW", "NHWC", {2, 32, 5, 67}},
    {"NHWC", "NCHW", {1, 9, 100, 16}},  {"NCHW", "NHWC", {1, 16, 9, 100}},
    // Runs of 64 bytes or more a thread, moved through the warp (C = 8 for every item size, C = 4
    // for 8- and 16-byte items, C = 6: runs of 6 pieces); odd widths leave partial chunks in
    // warps whose other lanes stage whole ones.
    {"NHWC", "NCHW", {2, 4, 64, 8}},   {"NCHW", "NHWC", {2, 8, 4, 64}},
    {"NHWC", "NCHW", {2, 5, 1023, 8}}, {"NCHW", "NHWC", {2, 8, 5, 1023}},
    {"NHWC", "NCHW", {1, 3, 100, 6}},  {"NCHW", "NHWC", {1, 6, 3, 100}},
    {"NCHW", "NHWC", {3, 4, 7, 333}},
};

const TbDataType kDtypes[] = {TB_DTYPE_UINT8, TB_DTYPE_FLOAT16, TB_DTYPE_FLOAT32, TB_DTYPE_FLOAT64,
                              TB_DTYPE_COMPLEX128};

std::vector<int64_t> permuted_shape(const ReformatCase& c) {
  std::vector<int64_t> shape;
  std::string from = c.from;
  for (const char* p = c.to; *p; ++p) shape.push_back(c.shape[from.find(*p)]);
  return shape;
}

TEST(GpuOps, ReformatEqualsCpuBitForBit) {
  SKIP_UNLESS_GPUS(1);
  std::mt19937_64 rng(std::random_device{}());
  for (const ReformatCase& c : kReformats) {
    for (TbDataType dtype : kDtypes) {
      for (int64_t padding : {0, 256}) {  // packed, and rows padded to 256 bytes on the GPU
        std::string what = std::string(c.from) + "->" + c.to + " bits " + std::to_string(dtype.bits) +
                           " pad " + std::to_string(padding);
        Owned host_src(alloc(cpu(), dtype, c.shape, c.from));
        fill_random(host_src.t, rng, false);
        Owned host_ref(alloc(cpu(), dtype, permuted_shape(c), c.to));
        ASSERT_EQ(TB_SUCCESS, tb_reformat(host_src.t, host_ref.t, nullptr)) << tb_last_error_message();
        Owned device_src(to_device(host_src.t, padding));
        Owned device_dst(alloc(cuda(0), dtype, permuted_shape(c), c.to, padding));
        poison(device_dst.t);
        ASSERT_EQ(TB_SUCCESS, tb_reformat(device_src.t, device_dst.t, nullptr)) << what << ": " << tb_last_error_message();
        Owned back(to_host(device_dst.t));
        expect_equal(host_ref.t, back.t, 0, what);
      }
    }
  }
}

TEST(GpuOps, StridedViewsAsSourcesEqualCpu) {
  SKIP_UNLESS_GPUS(1);
  std::mt19937_64 rng(std::random_device{}());
  for (TbDataType dtype : {TB_DTYPE_UINT8, TB_DTYPE_FLOAT32}) {
    Owned host_full(alloc(cpu(), dtype, {3, 9, 1023, 3}, "NHWC"));
    fill_random(host_full.t, rng, false);
    Owned device_full(to_device(host_full.t));
    // Every other column, reversed rows: a view with negative and doubled strides.
    TbTensor *hv1 = nullptr, *hv2 = nullptr, *dv1 = nullptr, *dv2 = nullptr;
    ASSERT_EQ(TB_SUCCESS, tb_tensor_slice(host_full.t, 2, 0, INT64_MAX, 2, &hv1));
    ASSERT_EQ(TB_SUCCESS, tb_tensor_slice(hv1, 1, INT64_MAX, INT64_MIN, -1, &hv2));
    ASSERT_EQ(TB_SUCCESS, tb_tensor_slice(device_full.t, 2, 0, INT64_MAX, 2, &dv1));
    ASSERT_EQ(TB_SUCCESS, tb_tensor_slice(dv1, 1, INT64_MAX, INT64_MIN, -1, &dv2));
    Owned a(hv1), b(hv2), c(dv1), d(dv2);
    TbTensorInfo view = info_of(hv2);
    std::vector<int64_t> nchw = {view.shape[0], view.shape[3], view.shape[1], view.shape[2]};
    Owned host_ref(alloc(cpu(), dtype, nchw, "NCHW"));
    ASSERT_EQ(TB_SUCCESS, tb_reformat(hv2, host_ref.t, nullptr)) << tb_last_error_message();
    Owned device_dst(alloc(cuda(0), dtype, nchw, "NCHW"));
    poison(device_dst.t);
    ASSERT_EQ(TB_SUCCESS, tb_reformat(dv2, device_dst.t, nullptr)) << tb_last_error_message();
    Owned back(to_host(device_dst.t));
    expect_equal(host_ref.t, back.t, 0, "strided view, bits " + std::to_string(dtype.bits));
  }
}

struct ConvertCase {
  TbDataType from, to;
  const char *src_layout, *dst_layout;
  std::vector<int64_t> shape;  // in src layout
  std::vector<float> scale, offset;
};

TEST(GpuOps, ConvertWithinOneUlpOfCpu) {
  SKIP_UNLESS_GPUS(1);
  std::mt19937_64 rng(std::random_device{}());
  const ConvertCase cases[] = {
      {TB_DTYPE_UINT8, TB_DTYPE_FLOAT32, "NHWC", "NCHW", {2, 7, 1023, 3}, {1 / 58.395f, 1 / 57.12f, 1 / 57.375f}, {-2.1179f, -2.0357f, -1.8044f}},
      {TB_DTYPE_UINT8, TB_DTYPE_FLOAT16, "NHWC", "NCHW", {1, 3, 7, 4}, {0.5f}, {-3.0f}},
      {TB_DTYPE_UINT8, TB_DTYPE_BFLOAT16, "HWC", "CHW", {7, 1023, 3}, {1 / 255.0f, 2 / 255.0f, 3 / 255.0f}, {0, 0.5f, 1}},
      {TB_DTYPE_FLOAT32, TB_DTYPE_UINT8, "NCHW", "NHWC", {2, 3, 7, 1023}, {0.75f, 1.0f, 1.5f}, {0.5f, -0.5f, 100.0f}},
      {TB_DTYPE_INT16, TB_DTYPE_UINT8, "HW", "HW", {33, 1023}, {0.01f}, {127.5f}},
      {TB_DTYPE_UINT16, TB_DTYPE_FLOAT32, "NCHW", "NCHW", {1, 5, 3, 7}, {2, 3, 4, 5, 6}, {1, 1, 1, 1, 1}},
      {TB_DTYPE_INT8, TB_DTYPE_FLOAT16, "NHWC", "NCHW", {2, 5, 5, 64}, {0.1f}, {0.0f}},
      {TB_DTYPE_FLOAT16, TB_DTYPE_BFLOAT16, "CHW", "HWC", {3, 65, 7}, {1.0f}, {0.0f}},
      {TB_DTYPE_BFLOAT16, TB_DTYPE_FLOAT32, "NHWC", "NCHW", {1, 2, 9, 8}, {3.0f}, {-1.0f}},
      // Aligned shapes for the register kernels, with a partial last chunk (36 % 16 = 4).
      {TB_DTYPE_UINT8, TB_DTYPE_FLOAT32, "NHWC", "NCHW", {2, 3, 12, 3}, {0.5f, 2.0f, -1.0f}, {1.0f, 0.0f, 3.0f}},
      {TB_DTYPE_UINT8, TB_DTYPE_FLOAT32, "NHWC", "NCHW", {2, 4, 16, 3}, {1 / 58.395f, 1 / 57.12f, 1 / 57.375f}, {-2.1179f, -2.0357f, -1.8044f}},
      {TB_DTYPE_FLOAT32, TB_DTYPE_UINT8, "NCHW", "NHWC", {2, 3, 4, 9}, {0.75f, 1.0f, 1.5f}, {0.5f, -0.5f, 100.0f}},
      {TB_DTYPE_UINT8, TB_DTYPE_FLOAT16, "NCHW", "NHWC", {2, 4, 4, 16}, {0.5f, 1.0f, 2.0f, 4.0f}, {0, 1, 2, 3}},
  };
  for (const ConvertCase& c : cases) {
    std::string what = std::string(c.src_layout) + "->" + c.dst_layout + " " +
                       std::to_string(c.from.code) + "/" + std::to_string(c.from.bits) + " -> " +
                       std::to_string(c.to.code) + "/" + std::to_string(c.to.bits);
    std::vector<int64_t> dst_shape;
    std::string from = c.src_layout;
    for (const char* p = c.dst_layout; *p; ++p) dst_shape.push_back(c.shape[from.find(*p)]);
    Owned host_src(alloc(cpu(), c.from, c.shape, c.src_layout));
    fill_random(host_src.t, rng, true);
    Owned host_ref(alloc(cpu(), c.to, dst_shape, c.dst_layout));
    const int32_t n = static_cast<int32_t>(c.scale.size());
    ASSERT_EQ(TB_SUCCESS, tb_convert(host_src.t, host_ref.t, c.scale.data(), c.offset.data(), n, nullptr))
        << what << ": " << tb_last_error_message();
    Owned device_src(to_device(host_src.t));
    Owned device_dst(alloc(cuda(0), c.to, dst_shape, c.dst_layout));
    poison(device_dst.t);
    ASSERT_EQ(TB_SUCCESS, tb_convert(device_src.t, device_dst.t, c.scale.data(), c.offset.data(), n, nullptr))
        << what << ": " << tb_last_error_message();
    Owned back(to_host(device_dst.t));
    expect_equal(host_ref.t, back.t, 1, what);
  }
}

const TbDataType kFloat8E4M3FN = TB_DTYPE_LITERAL(TB_DTYPE_CODE_FLOAT8_E4M3FN, 8);
const TbDataType kFloat8E5M2 = TB_DTYPE_LITERAL(TB_DTYPE_CODE_FLOAT8_E5M2, 8);

// Random finite values (fill_random), float8 NaN codes included turned into finite ones: a NaN's
// bytes after the affine are the hardware's canonical NaN on the GPU and the input's on the CPU.
void fill_finite(TbTensor* host, std::mt19937_64& rng) {
  fill_random(host, rng, true);
  TbTensorInfo info = info_of(host);
  auto* bytes = static_cast<uint8_t*>(info.data);
  const int64_t n = span_bytes(info);
  if (info.dtype.code == TB_DTYPE_CODE_FLOAT8_E4M3FN) {
    for (int64_t i = 0; i < n; ++i) bytes[i] = (bytes[i] & 0x7f) == 0x7f ? bytes[i] ^ 0x01 : bytes[i];
  } else if (info.dtype.code == TB_DTYPE_CODE_FLOAT8_E5M2) {
    for (int64_t i = 0; i < n; ++i) bytes[i] = (bytes[i] & 0x7c) == 0x7c ? bytes[i] ^ 0x04 : bytes[i];
  }
}

// A view of elements [start, start + count) of a 1-D tensor.
TbTensor* range(TbTensor* t, int64_t start, int64_t count) {
  TbTensor* view = nullptr;
  EXPECT_EQ(TB_SUCCESS, tb_tensor_slice(t, 0, start, start + count, 1, &view)) << tb_last_error_message();
  return view;
}

std::string dtype_name(TbDataType t) { return std::to_string(t.code) + "/" + std::to_string(t.bits); }

// Same-layout conversions take the element-wise kernel: every (input, output) pair tb_convert
// supports, with an affine, odd lengths, and views starting 0, 1 or 3 elements into their
// allocation on either side (unaligned heads, tails shorter than a chunk), must equal the CPU's
// bytes exactly.
TEST(GpuOps, SameLayoutConvertEqualsCpuBytesForEveryPair) {
  SKIP_UNLESS_GPUS(1);
  std::mt19937_64 rng(std::random_device{}());
  const TbDataType inputs[] = {TB_DTYPE_UINT8, TB_DTYPE_INT8, TB_DTYPE_UINT16, TB_DTYPE_INT16, TB_DTYPE_FLOAT16,
                               TB_DTYPE_BFLOAT16, TB_DTYPE_FLOAT32, kFloat8E4M3FN, kFloat8E5M2};
  const TbDataType outputs[] = {TB_DTYPE_FLOAT16, TB_DTYPE_BFLOAT16, TB_DTYPE_FLOAT32, TB_DTYPE_UINT8,
                                kFloat8E4M3FN, kFloat8E5M2};
  const float scale = 1.5f, offset = -2.0f;  // f32 inputs reach +-448: e4m3fn's overflow too
  for (TbDataType from : inputs) {
    for (TbDataType to : outputs) {
      for (int64_t n : {1, 7, 1023, 65549}) {
        for (auto [src_start, dst_start] : {std::pair<int64_t, int64_t>{0, 0}, {1, 0}, {0, 3}, {3, 1}}) {
          const std::string what = dtype_name(from) + " -> " + dtype_name(to) + " n " + std::to_string(n) +
                                   " starts " + std::to_string(src_start) + "/" + std::to_string(dst_start);
          Owned host_all(alloc(cpu(), from, {n + 3}, nullptr));
          fill_finite(host_all.t, rng);
          Owned host_src(range(host_all.t, src_start, n));
          Owned host_ref(alloc(cpu(), to, {n}, nullptr));
          ASSERT_EQ(TB_SUCCESS, tb_convert(host_src.t, host_ref.t, &scale, &offset, 1, nullptr))
              << what << ": " << tb_last_error_message();
          Owned device_all(to_device(host_all.t));
          Owned device_src(range(device_all.t, src_start, n));
          Owned device_dst_all(alloc(cuda(0), to, {n + 3}, nullptr));
          poison(device_dst_all.t);
          Owned device_dst(range(device_dst_all.t, dst_start, n));
          ASSERT_EQ(TB_SUCCESS, tb_convert(device_src.t, device_dst.t, &scale, &offset, 1, nullptr))
              << what << ": " << tb_last_error_message();
          Owned back(to_host(device_dst.t));
          expect_equal(host_ref.t, back.t, 0, what);
          // The elements around the view stay poisoned.
          Owned around(to_host(device_dst_all.t));
          const auto* bytes = static_cast<const uint8_t*>(info_of(around.t).data);
          const int64_t item = to.bits / 8;
          for (int64_t i = 0; i < (n + 3) * item; ++i) {
            if (i < dst_start * item || i >= (dst_start + n) * item) {
              ASSERT_EQ(bytes[i], 0xCD) << what << ": byte " << i << " outside the view was written";
            }
          }
        }
      }
    }
  }
}

// Same layout with per-channel coefficients: the channel is the innermost (HWC) or the outermost
// (CHW) dimension of one dense run. 1-byte inputs (to 1-byte outputs, and float8 decodes) go
// through a per-block table of every channel's 256 results: several copies for 3 channels, one
// copy built in place for 64.
TEST(GpuOps, SameLayoutPerChannelConvertEqualsCpuBytes) {
  SKIP_UNLESS_GPUS(1);
  std::mt19937_64 rng(std::random_device{}());
  struct Case {
    TbDataType from, to;
    const char* layout;
    std::vector<int64_t> shape;
  };
  const Case cases[] = {
      {TB_DTYPE_UINT8, TB_DTYPE_FLOAT32, "HWC", {7, 333, 3}},  {TB_DTYPE_FLOAT32, kFloat8E4M3FN, "HWC", {5, 401, 3}},
      {TB_DTYPE_UINT8, kFloat8E5M2, "HWC", {9, 77, 3}},        {TB_DTYPE_FLOAT16, TB_DTYPE_UINT8, "CHW", {3, 31, 67}},
      {kFloat8E4M3FN, TB_DTYPE_BFLOAT16, "CHW", {3, 8, 1001}}, {TB_DTYPE_UINT8, kFloat8E4M3FN, "CHW", {3, 16, 64}},
      {kFloat8E5M2, TB_DTYPE_FLOAT32, "HWC", {5, 97, 3}},      {kFloat8E4M3FN, TB_DTYPE_FLOAT16, "CHW", {3, 5, 999}},
      {kFloat8E4M3FN, kFloat8E5M2, "HWC", {3, 211, 3}},        {TB_DTYPE_UINT8, kFloat8E4M3FN, "HWC", {3, 37, 64}},
      {kFloat8E5M2, TB_DTYPE_FLOAT16, "HWC", {2, 41, 64}},     {kFloat8E4M3FN, TB_DTYPE_FLOAT32, "CHW", {64, 3, 35}},
  };
  for (const Case& c : cases) {
    const std::string what = std::string(c.layout) + " " + dtype_name(c.from) + " -> " + dtype_name(c.to);
    const int64_t channels = c.shape[std::string(c.layout).find('C')];
    std::vector<float> scale = {0.5f, 1.25f, -3.0f}, offset = {1.0f, -0.5f, 2.0f};
    if (channels != 3) {
      scale.clear();
      offset.clear();
      for (int64_t k = 0; k < channels; ++k) {
        scale.push_back((k % 2 ? -0.25f : 0.5f) * static_cast<float>(1 + k % 5));
        offset.push_back(0.125f * static_cast<float>(k) - 1.0f);
      }
    }
    Owned host_src(alloc(cpu(), c.from, c.shape, c.layout));
    fill_finite(host_src.t, rng);
    Owned host_ref(alloc(cpu(), c.to, c.shape, c.layout));
    const int32_t n = static_cast<int32_t>(channels);
    ASSERT_EQ(TB_SUCCESS, tb_convert(host_src.t, host_ref.t, scale.data(), offset.data(), n, nullptr))
        << what << ": " << tb_last_error_message();
    Owned device_src(to_device(host_src.t));
    Owned device_dst(alloc(cuda(0), c.to, c.shape, c.layout));
    poison(device_dst.t);
    ASSERT_EQ(TB_SUCCESS, tb_convert(device_src.t, device_dst.t, scale.data(), offset.data(), n, nullptr))
        << what << ": " << tb_last_error_message();
    Owned back(to_host(device_dst.t));
    expect_equal(host_ref.t, back.t, 0, what);
  }
}

// tb_convert_channels: output channel k reads source channel order[k], in each kernel that takes
// an order (the deinterleave through the permutation's inverse, the interleave, the general
// kernel for same-layout runs and for orders that repeat a channel), equal to the CPU's bytes;
// and the CPU's bytes equal to reading the reordered source directly.
TEST(GpuOps, ConvertChannelsEqualsCpuBytes) {
  SKIP_UNLESS_GPUS(1);
  std::mt19937_64 rng(std::random_device{}());
  struct Case {
    const char *from, *to;
    std::vector<int64_t> shape;  // in `from` layout
    std::vector<int32_t> order;
  };
  const Case cases[] = {
      {"NHWC", "NCHW", {2, 7, 333, 3}, {2, 1, 0}},   {"NHWC", "NCHW", {2, 8, 64, 4}, {2, 1, 0, 3}},
      {"NCHW", "NHWC", {2, 3, 7, 333}, {2, 1, 0}},   {"NCHW", "NHWC", {1, 4, 9, 64}, {3, 0, 1, 2}},
      {"HWC", "HWC", {7, 333, 3}, {2, 1, 0}},        {"NHWC", "NCHW", {2, 5, 33, 3}, {0, 0, 2}},
      {"NCHW", "NHWC", {2, 3, 5, 33}, {1, 1, 1}},    {"CHW", "HWC", {8, 5, 40}, {7, 6, 5, 4, 3, 2, 1, 0}},
  };
  const std::vector<float> scale8 = {0.5f, 1.25f, -3.0f, 2.0f, 0.25f, -1.0f, 4.0f, 0.75f};
  const std::vector<float> offset8 = {1.0f, -0.5f, 2.0f, 0.0f, 3.0f, -2.0f, 0.5f, 1.5f};
  for (const Case& c : cases) {
    for (TbDataType to : {TB_DTYPE_FLOAT32, TB_DTYPE_FLOAT16, TB_DTYPE_UINT8}) {
      const std::string what = std::string(c.from) + "->" + c.to + " to " + dtype_name(to);
      const int32_t n = static_cast<int32_t>(c.order.size());
      std::vector<float> scale(scale8.begin(), scale8.begin() + n), offset(offset8.begin(), offset8.begin() + n);
      Owned host_src(alloc(cpu(), TB_DTYPE_UINT8, c.shape, c.from));
      fill_random(host_src.t, rng, false);
      const ReformatCase as_reformat{c.from, c.to, c.shape};
      const std::vector<int64_t> out_shape = permuted_shape(as_reformat);
      Owned host_ref(alloc(cpu(), to, out_shape, c.to));
      ASSERT_EQ(TB_SUCCESS, tb_convert_channels(host_src.t, host_ref.t, c.order.data(), n, scale.data(),
                                                offset.data(), n, nullptr))
          << what << ": " << tb_last_error_message();
      // The CPU's result against the definition: the source's channels reordered first (a
      // reformat into the output layout, then each output channel from order[k]).
      Owned reformatted(alloc(cpu(), TB_DTYPE_UINT8, out_shape, c.to));
      ASSERT_EQ(TB_SUCCESS, tb_reformat(host_src.t, reformatted.t, nullptr)) << tb_last_error_message();
      const size_t c_axis = std::string(c.to).find('C');
      Owned picked(alloc(cpu(), TB_DTYPE_UINT8, out_shape, c.to));
      const TbTensorInfo r = info_of(reformatted.t);
      int64_t count = 1;
      for (int64_t extent : out_shape) count *= extent;
      for (int64_t i = 0; i < count; ++i) {
        int64_t rest = i, channel = 0, source = 0;
        for (size_t d = out_shape.size(); d-- > 0;) {
          const int64_t index = rest % out_shape[d];
          rest /= out_shape[d];
          if (d == c_axis) channel = index;
          source += (d == c_axis ? 0 : index) * r.strides[d];
        }
        source += c.order[static_cast<size_t>(channel)] * r.strides[c_axis];
        static_cast<uint8_t*>(tbtest::data_of(picked.t))[i] = static_cast<const uint8_t*>(tbtest::data_of(reformatted.t))[source];
      }
      Owned direct(alloc(cpu(), to, out_shape, c.to));
      ASSERT_EQ(TB_SUCCESS, tb_convert(picked.t, direct.t, scale.data(), offset.data(), n, nullptr)) << tb_last_error_message();
      expect_equal(direct.t, host_ref.t, 0, what + " (CPU against its definition)");
      Owned device_src(to_device(host_src.t));
      Owned device_dst(alloc(cuda(0), to, out_shape, c.to));
      poison(device_dst.t);
      ASSERT_EQ(TB_SUCCESS, tb_convert_channels(device_src.t, device_dst.t, c.order.data(), n, scale.data(),
                                                offset.data(), n, nullptr))
          << what << ": " << tb_last_error_message();
      Owned back(to_host(device_dst.t));
      expect_equal(host_ref.t, back.t, 0, what);
    }
  }
}

// Rows padded to a pitch on one side only (the source, as decoders and NVCV lay images out, or
// the destination): the transposes take the rows as a second batch dimension. Pitches of 256
// bytes and of 8 bytes (rows 16-byte aligned or not), item sizes 1, 2, 4, 8, C = 1, 3, 4, both
// directions; the padding must stay untouched.
TEST(GpuOps, PitchedReformatsEqualCpuBitForBit) {
  SKIP_UNLESS_GPUS(1);
  std::mt19937_64 rng(std::random_device{}());
  for (TbDataType dtype : {TB_DTYPE_UINT8, TB_DTYPE_FLOAT16, TB_DTYPE_FLOAT32, TB_DTYPE_FLOAT64}) {
    for (int64_t c : {1, 3, 4}) {
      for (bool to_nchw : {true, false}) {
        for (bool pitched_src : {true, false}) {
          for (int64_t pitch : {256, 8}) {
            const int64_t n = 2, h = 5, w = 100 + (c == 1 ? 3 : 0);
            const ReformatCase r = to_nchw ? ReformatCase{"NHWC", "NCHW", {n, h, w, c}}
                                           : ReformatCase{"NCHW", "NHWC", {n, c, h, w}};
            const std::string what = std::string(r.from) + "->" + r.to + " bits " + std::to_string(dtype.bits) +
                                     " C " + std::to_string(c) + (pitched_src ? " source" : " destination") +
                                     " rows at pitch " + std::to_string(pitch);
            Owned host_src(alloc(cpu(), dtype, r.shape, r.from));
            fill_random(host_src.t, rng, false);
            Owned host_ref(alloc(cpu(), dtype, permuted_shape(r), r.to));
            ASSERT_EQ(TB_SUCCESS, tb_reformat(host_src.t, host_ref.t, nullptr)) << tb_last_error_message();
            Owned device_src(to_device(host_src.t, pitched_src ? pitch : 0));
            Owned device_dst(alloc(cuda(0), dtype, permuted_shape(r), r.to, pitched_src ? 0 : pitch));
            poison(device_dst.t);
            char plan[TB_PLAN_NAME_CAPACITY] = {};
            ASSERT_EQ(TB_SUCCESS, tb_reformat_plan(device_src.t, device_dst.t, plan, sizeof plan));
            ASSERT_EQ(TB_SUCCESS, tb_reformat(device_src.t, device_dst.t, nullptr))
                << what << ": " << tb_last_error_message();
            const std::string named = what + " (" + plan + ")";
            Owned back(to_host(device_dst.t));
            expect_equal(host_ref.t, back.t, 0, named);
            // Padding bytes after each destination row keep the poison.
            TbTensorInfo info = info_of(device_dst.t);
            std::vector<uint8_t> raw(static_cast<size_t>(span_bytes(info)));
            CUDA_OK(cudaMemcpy(raw.data(), info.data, raw.size(), cudaMemcpyDeviceToHost));
            const int h_dim = to_nchw ? 2 : 1;  // the destination's H: its stride is the row pitch
            const int64_t pitch_bytes = info.strides[h_dim];
            const int64_t row_bytes = info.shape[h_dim + 1] * info.strides[h_dim + 1];
            for (int64_t row = 0; row + 1 < static_cast<int64_t>(raw.size()) / pitch_bytes; ++row) {
              for (int64_t k = row_bytes; k < pitch_bytes; ++k) {
                ASSERT_EQ(raw[row * pitch_bytes + k], 0xCD) << named << ": padding of row " << row;
              }
            }
          }
        }
      }
    }
  }
}

TEST(GpuOps, CopiesBetweenHostPinnedAndDeviceWithStridesOnBothSides) {
  SKIP_UNLESS_GPUS(1);
  std::mt19937_64 rng(std::random_device{}());
  const std::vector<int64_t> shape = {5, 7, 1023, 3};
  Owned host(alloc(cpu(), TB_DTYPE_UINT8, shape, "NHWC"));
  fill_random(host.t, rng, false);
  for (int32_t staging : {TB_DEVICE_CPU, TB_DEVICE_CUDA_HOST}) {
    for (int64_t padding : {0, 512}) {
      // host -> device (padded) -> staging (padded) -> device (packed) -> host
      Owned device(alloc(cuda(0), TB_DTYPE_UINT8, shape, "NHWC", padding));
      Owned middle(alloc(TbDevice{staging, 0}, TB_DTYPE_UINT8, shape, "NHWC", padding));
      Owned device2(alloc(cuda(0), TB_DTYPE_UINT8, shape, "NHWC"));
      Owned back(alloc(cpu(), TB_DTYPE_UINT8, shape, "NHWC"));
      poison(device.t);
      ASSERT_EQ(TB_SUCCESS, tb_copy(host.t, device.t, nullptr)) << tb_last_error_message();
      ASSERT_EQ(TB_SUCCESS, tb_copy(device.t, middle.t, nullptr)) << tb_last_error_message();
      ASSERT_EQ(TB_SUCCESS, tb_copy(middle.t, device2.t, nullptr)) << tb_last_error_message();
      ASSERT_EQ(TB_SUCCESS, tb_copy(device2.t, back.t, nullptr)) << tb_last_error_message();
      CUDA_OK(cudaDeviceSynchronize());
      expect_equal(host.t, back.t, 0, "staging kind " + std::to_string(staging) + " pad " + std::to_string(padding));
    }
  }
  TbTensor* cloned = nullptr;
  Owned device(to_device(host.t, 256));
  ASSERT_EQ(TB_SUCCESS, tb_tensor_clone(device.t, nullptr, &cloned)) << tb_last_error_message();
  Owned owned_clone(cloned);
  EXPECT_TRUE(info_of(cloned).contiguous);
  EXPECT_EQ(info_of(cloned).device.device_type, TB_DEVICE_CUDA);
  Owned back(to_host(cloned));
  expect_equal(host.t, back.t, 0, "clone");
}

TEST(GpuOps, RunsOnTheCallersNonBlockingStreamAndLeavesTheCurrentDevice) {
  SKIP_UNLESS_GPUS(1);
  std::mt19937_64 rng(std::random_device{}());
  cudaStream_t stream = nullptr;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  int before = -1;
  CUDA_OK(cudaGetDevice(&before));
  Owned host(alloc(cpu(), TB_DTYPE_FLOAT32, {4, 64, 64, 3}, "NHWC"));
  fill_random(host.t, rng, false);
  Owned ref(alloc(cpu(), TB_DTYPE_FLOAT32, {4, 3, 64, 64}, "NCHW"));
  ASSERT_EQ(TB_SUCCESS, tb_reformat(host.t, ref.t, nullptr));
  Owned src(alloc(cuda(0), TB_DTYPE_FLOAT32, {4, 64, 64, 3}, "NHWC"));
  Owned dst(alloc(cuda(0), TB_DTYPE_FLOAT32, {4, 3, 64, 64}, "NCHW"));
  ASSERT_EQ(TB_SUCCESS, tb_copy(host.t, src.t, stream));
  ASSERT_EQ(TB_SUCCESS, tb_reformat(src.t, dst.t, stream));
  TbArrayInterface cai{};
  ASSERT_EQ(TB_SUCCESS, tb_tensor_to_cuda_array_interface(dst.t, &cai));
  EXPECT_TRUE(cai.has_stream);
  EXPECT_EQ(cai.stream, reinterpret_cast<uint64_t>(stream)) << "the export names the op's stream";
  CUDA_OK(cudaStreamSynchronize(stream));
  Owned back(to_host(dst.t));
  expect_equal(ref.t, back.t, 0, "non-blocking stream");
  int after = -2;
  CUDA_OK(cudaGetDevice(&after));
  EXPECT_EQ(before, after);
  CUDA_OK(cudaStreamDestroy(stream));
}

// Host/device mismatches: GpuErrors.HostDeviceMismatchesAreClearErrors; GPUs without peer
// access: MultiGpu.CrossGpuOperandsWorkWithPeerAccessAndAreNotSupportedWithout
// (gpu_promises_test.cpp).
// An operation repeated on the same buffers is enqueued again from what its first call decided;
// other shapes over the same addresses are decided anew: each result equals the CPU's.
TEST(GpuOps, RepeatedOperationsOnTheSameBuffersFollowTheirOperands) {
  SKIP_UNLESS_GPUS(1);
  std::mt19937_64 rng(std::random_device{}());
  const int64_t bytes = 2 * 8 * 16 * 64;
  Owned src_memory(alloc(cuda(0), TB_DTYPE_UINT8, {bytes}, nullptr));
  Owned dst_memory(alloc(cuda(0), TB_DTYPE_UINT8, {bytes}, nullptr));
  const std::vector<std::vector<int64_t>> shapes = {  // NHWC; each twice in a row
      {2, 8, 16, 3}, {2, 8, 16, 3}, {2, 16, 8, 3}, {2, 16, 8, 3}, {2, 8, 16, 64}, {2, 8, 16, 3}};
  for (const std::vector<int64_t>& shape : shapes) {
    const ReformatCase c{"NHWC", "NCHW", shape};
    const std::string what = "NHWC " + std::to_string(shape[1]) + "x" + std::to_string(shape[2]) +
                             "x" + std::to_string(shape[3]) + " -> NCHW";
    TbTensor* views[2] = {nullptr, nullptr};
    const std::vector<int64_t> dst_shape = permuted_shape(c);
    ASSERT_EQ(TB_SUCCESS, tb_tensor_wrap(data_of(src_memory.t), cuda(0), TB_DTYPE_UINT8, 4, shape.data(),
                                         nullptr, "NHWC", false, nullptr, nullptr, &views[0]));
    ASSERT_EQ(TB_SUCCESS, tb_tensor_wrap(data_of(dst_memory.t), cuda(0), TB_DTYPE_UINT8, 4, dst_shape.data(),
                                         nullptr, "NCHW", false, nullptr, nullptr, &views[1]));
    Owned device_src(views[0]), device_dst(views[1]);
    Owned host_src(alloc(cpu(), TB_DTYPE_UINT8, shape, "NHWC"));
    fill_random(host_src.t, rng, false);
    Owned host_ref(alloc(cpu(), TB_DTYPE_UINT8, dst_shape, "NCHW"));
    ASSERT_EQ(TB_SUCCESS, tb_reformat(host_src.t, host_ref.t, nullptr)) << tb_last_error_message();
    ASSERT_EQ(TB_SUCCESS, tb_copy(host_src.t, device_src.t, nullptr)) << tb_last_error_message();
    ASSERT_EQ(TB_SUCCESS, tb_reformat(device_src.t, device_dst.t, nullptr)) << what << ": " << tb_last_error_message();
    Owned back(to_host(device_dst.t));
    expect_equal(host_ref.t, back.t, 0, what);
  }
}

TEST(GpuOps, MismatchedDtypesAndOverlappingOperandsAreClearErrors) {
  SKIP_UNLESS_GPUS(1);
  Owned device(alloc(cuda(0), TB_DTYPE_UINT8, {2, 3}, "HW"));
  Owned wrong_dtype(alloc(cuda(0), TB_DTYPE_FLOAT32, {2, 3}, "HW"));
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT, tb_reformat(device.t, wrong_dtype.t, nullptr));
  EXPECT_NE(tbtest::last_error().find("use tb_convert"), std::string::npos) << tbtest::last_error();
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT, tb_copy(device.t, wrong_dtype.t, nullptr));
  EXPECT_NE(tbtest::last_error().find("differs from destination dtype"), std::string::npos) << tbtest::last_error();
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT, tb_reformat(device.t, device.t, nullptr));
  EXPECT_NE(tbtest::last_error().find("overlap"), std::string::npos) << tbtest::last_error();
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT, tb_convert(device.t, device.t, nullptr, nullptr, 0, nullptr));
  EXPECT_NE(tbtest::last_error().find("overlap"), std::string::npos) << tbtest::last_error();
}

TEST(MultiGpu, CopyAcrossDevicesAndOpOnDeviceOneWhileZeroIsCurrent) {
  SKIP_UNLESS_GPUS(2);
  std::mt19937_64 rng(std::random_device{}());
  const std::vector<int64_t> shape = {2, 33, 65, 3};
  Owned host(alloc(cpu(), TB_DTYPE_UINT8, shape, "NHWC"));
  fill_random(host.t, rng, false);
  Owned ref(alloc(cpu(), TB_DTYPE_UINT8, {2, 3, 33, 65}, "NCHW"));
  ASSERT_EQ(TB_SUCCESS, tb_reformat(host.t, ref.t, nullptr));
  CUDA_OK(cudaSetDevice(0));
  TbTensor *on0 = nullptr, *on1 = nullptr, *out1 = nullptr;
  ASSERT_EQ(TB_SUCCESS, tb_tensor_alloc(TbDevice{TB_DEVICE_CUDA, 0}, TB_DTYPE_UINT8, 4, shape.data(), "NHWC", 0, &on0));
  ASSERT_EQ(TB_SUCCESS, tb_tensor_alloc(TbDevice{TB_DEVICE_CUDA, 1}, TB_DTYPE_UINT8, 4, shape.data(), "NHWC", 0, &on1));
  const int64_t nchw[] = {2, 3, 33, 65};
  ASSERT_EQ(TB_SUCCESS, tb_tensor_alloc(TbDevice{TB_DEVICE_CUDA, 1}, TB_DTYPE_UINT8, 4, nchw, "NCHW", 0, &out1));
  Owned a(on0), b(on1), c(out1);
  ASSERT_EQ(TB_SUCCESS, tb_copy(host.t, on0, nullptr)) << tb_last_error_message();
  ASSERT_EQ(TB_SUCCESS, tb_copy(on0, on1, nullptr)) << tb_last_error_message();
  ASSERT_EQ(TB_SUCCESS, tb_reformat(on1, out1, nullptr)) << tb_last_error_message();  // device 0 current
  int current = -1;
  CUDA_OK(cudaGetDevice(&current));
  EXPECT_EQ(current, 0);
  Owned back(to_host(out1));
  expect_equal(ref.t, back.t, 0, "device 1 reformat");
}

}  // namespace
