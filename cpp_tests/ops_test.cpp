// Operations through the C ABI on host memory (every machine): results and argument errors.
// GPU results are compared with these CPU ones in gpu_ops_test.cpp.

#include "test_support.hpp"

#include <cstring>
#include <numeric>
#include <string>
#include <vector>

namespace {

using tbtest::cpu;

struct Host {
  TbTensor* t = nullptr;
  Host(TbDataType dtype, std::vector<int64_t> shape, const char* layout) {
    EXPECT_EQ(TB_SUCCESS, tb_tensor_alloc(cpu(), dtype, static_cast<int32_t>(shape.size()), shape.data(),
                                          layout, 0, &t))
        << tb_last_error_message();
  }
  ~Host() { tb_tensor_release(t); }
  template <typename T>
  T* data() const {
    void* p = nullptr;
    EXPECT_EQ(TB_SUCCESS, tb_tensor_data(t, &p));
    return static_cast<T*>(p);
  }
};

TEST(Ops, ReformatNhwcToNchwOnTheHost) {
  Host src(TB_DTYPE_UINT8, {2, 3, 4, 3}, "NHWC"), dst(TB_DTYPE_UINT8, {2, 3, 3, 4}, "NCHW");
  std::iota(src.data<uint8_t>(), src.data<uint8_t>() + 72, 1);
  TB_ASSERT_OK(tb_reformat(src.t, dst.t, nullptr));
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 3; ++c)
      for (int h = 0; h < 3; ++h)
        for (int w = 0; w < 4; ++w) {
          ASSERT_EQ(dst.data<uint8_t>()[((n * 3 + c) * 3 + h) * 4 + w],
                    src.data<uint8_t>()[((n * 3 + h) * 4 + w) * 3 + c]);
        }
}

TEST(Ops, ConvertNormalizesAndSaturates) {
  Host src(TB_DTYPE_FLOAT32, {1, 2}, "HC"), dst(TB_DTYPE_UINT8, {1, 2}, "HC");
  src.data<float>()[0] = 100.4f;
  src.data<float>()[1] = 100.0f;
  const float scale[] = {1.0f, 3.0f}, offset[] = {0.0f, 0.0f};
  TB_ASSERT_OK(tb_convert(src.t, dst.t, scale, offset, 2, nullptr));
  EXPECT_EQ(dst.data<uint8_t>()[0], 100);
  EXPECT_EQ(dst.data<uint8_t>()[1], 255) << "300 saturates";
  TB_ASSERT_OK(tb_convert(src.t, dst.t, nullptr, nullptr, 0, nullptr));  // identity
  EXPECT_EQ(dst.data<uint8_t>()[1], 100);
}

TEST(Ops, CloneIsPackedAndIndependent) {
  Host src(TB_DTYPE_INT16, {3, 4}, "HW");
  std::iota(src.data<int16_t>(), src.data<int16_t>() + 12, 0);
  TbTensor* transposed = nullptr;
  TbTensor* clone = nullptr;
  TB_ASSERT_OK(tb_tensor_permute(src.t, "WH", &transposed));
  TB_ASSERT_OK(tb_tensor_clone(transposed, nullptr, &clone));
  TbTensorInfo info{};
  TB_ASSERT_OK(tb_tensor_info(clone, &info));
  EXPECT_TRUE(info.contiguous);
  EXPECT_STREQ(info.layout.labels, "WH");
  EXPECT_EQ(static_cast<int16_t*>(info.data)[1], 4) << "row 0 of the transpose is column 0";
  EXPECT_NE(info.data, static_cast<void*>(src.data<int16_t>())) << "the clone has its own memory";
  // Independent both ways: writes to the clone leave the original alone, and back.
  auto* cloned = static_cast<int16_t*>(info.data);
  for (int i = 0; i < 12; ++i) cloned[i] = static_cast<int16_t>(-1 - i);
  for (int i = 0; i < 12; ++i) ASSERT_EQ(src.data<int16_t>()[i], i) << "the original changed at " << i;
  src.data<int16_t>()[4] = 99;
  EXPECT_EQ(cloned[1], -2) << "the clone follows writes to the original";
  tb_tensor_release(transposed);
  tb_tensor_release(clone);
}

// A tensor description wrapped at a fake CUDA address: never dereferenced, so no GPU is needed.
TbTensor* fake_cuda(uintptr_t address, TbDataType dtype, std::vector<int64_t> shape, const char* layout) {
  TbTensor* t = nullptr;
  EXPECT_EQ(TB_SUCCESS, tb_tensor_wrap(reinterpret_cast<void*>(address), tbtest::cuda(0), dtype,
                                       static_cast<int32_t>(shape.size()), shape.data(), nullptr, layout, false,
                                       nullptr, nullptr, &t))
      << tb_last_error_message();
  return t;
}

std::string reformat_plan(const TbTensor* src, const TbTensor* dst) {
  char name[TB_PLAN_NAME_CAPACITY] = "unset";
  EXPECT_EQ(TB_SUCCESS, tb_reformat_plan(src, dst, name, sizeof name)) << tb_last_error_message();
  return name;
}

// The plan queries name the kernel the operation would launch (its family, then its choices),
// the CPU method for host tensors, and fail as the operation would; no GPU is involved.
TEST(Ops, PlanQueriesNameTheKernelWithoutAGpu) {
  Host host_nhwc(TB_DTYPE_UINT8, {2, 4, 8, 3}, "NHWC"), host_nchw(TB_DTYPE_UINT8, {2, 3, 4, 8}, "NCHW");
  EXPECT_EQ(reformat_plan(host_nhwc.t, host_nchw.t), "host copy loop");

  tbtest::Owned nhwc(fake_cuda(uintptr_t{1} << 32, TB_DTYPE_UINT8, {2, 4, 8, 3}, "NHWC"));
  tbtest::Owned nchw(fake_cuda(uintptr_t{1} << 33, TB_DTYPE_UINT8, {2, 3, 4, 8}, "NCHW"));
  tbtest::Owned planar_f32(fake_cuda(uintptr_t{1} << 34, TB_DTYPE_FLOAT32, {2, 3, 4, 8}, "NCHW"));
  EXPECT_EQ(reformat_plan(nhwc.t, nchw.t), "deinterleave small=3 vec=16");
  EXPECT_EQ(reformat_plan(nchw.t, nhwc.t), "interleave small=3 vec=16 ilp=1");
  EXPECT_EQ(reformat_plan(host_nhwc.t, nchw.t), "staged upload, memcpy");
  char name[TB_PLAN_NAME_CAPACITY] = "unset";
  TB_ASSERT_OK(tb_convert_plan(nhwc.t, planar_f32.t, name, sizeof name));
  EXPECT_STREQ(name, "deinterleave small=3 vec=4") << "u8 NHWC -> f32 NCHW: four floats a store";

  char small[8] = "unset";
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT, tb_reformat_plan(nhwc.t, nchw.t, small, sizeof small));
  EXPECT_NE(tbtest::last_error().find("TB_PLAN_NAME_CAPACITY"), std::string::npos) << tbtest::last_error();
  EXPECT_STREQ(small, "unset") << "nothing is written when the name does not fit";
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT, tb_reformat_plan(nhwc.t, nchw.t, nullptr, 64));
  EXPECT_NE(tbtest::last_error().find("name is NULL"), std::string::npos) << tbtest::last_error();
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT, tb_reformat_plan(nhwc.t, planar_f32.t, name, sizeof name));
  EXPECT_NE(tbtest::last_error().find("use tb_convert"), std::string::npos) << tbtest::last_error();
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT, tb_reformat_plan(nullptr, nchw.t, name, sizeof name));
}

struct BadOp {
  const char* name;
  TbStatus expected;
  const char* fragment;
  TbStatus (*call)();
};

// Printed as its name, not as raw bytes (whose padding is uninitialised).
std::ostream& operator<<(std::ostream& os, const BadOp& c) { return os << c.name; }

// clang-format off
const BadOp kBadOps[] = {
  {"reformat_dtype_mismatch", TB_ERROR_INVALID_ARGUMENT, "use tb_convert", [] { Host a(TB_DTYPE_UINT8, {2, 2}, "HW"), b(TB_DTYPE_FLOAT32, {2, 2}, "WH"); return tb_reformat(a.t, b.t, nullptr); }},
  {"reformat_label_missing", TB_ERROR_INVALID_ARGUMENT, "label 'C' is missing", [] { Host a(TB_DTYPE_UINT8, {2, 2}, "HW"), b(TB_DTYPE_UINT8, {2, 2}, "HC"); return tb_reformat(a.t, b.t, nullptr); }},
  {"reformat_shape_mismatch", TB_ERROR_INVALID_ARGUMENT, "does not match destination shape", [] { Host a(TB_DTYPE_UINT8, {2, 3}, "HW"), b(TB_DTYPE_UINT8, {2, 3}, "WH"); return tb_reformat(a.t, b.t, nullptr); }},
  {"reformat_one_layout_missing", TB_ERROR_INVALID_ARGUMENT, "or neither", [] { Host a(TB_DTYPE_UINT8, {2, 3}, "HW"), b(TB_DTYPE_UINT8, {2, 3}, nullptr); return tb_reformat(a.t, b.t, nullptr); }},
  {"reformat_in_place", TB_ERROR_INVALID_ARGUMENT, "overlap", [] { Host a(TB_DTYPE_UINT8, {2, 3}, "HW"); return tb_reformat(a.t, a.t, nullptr); }},
  {"reformat_null_src", TB_ERROR_INVALID_ARGUMENT, "src is NULL", [] { Host a(TB_DTYPE_UINT8, {2, 3}, "HW"); return tb_reformat(nullptr, a.t, nullptr); }},
  {"copy_layouts_differ", TB_ERROR_INVALID_ARGUMENT, "use tb_reformat", [] { Host a(TB_DTYPE_UINT8, {2, 2}, "HW"), b(TB_DTYPE_UINT8, {2, 2}, "WH"); return tb_copy(a.t, b.t, nullptr); }},
  {"copy_shape_mismatch", TB_ERROR_INVALID_ARGUMENT, "differs from destination shape", [] { Host a(TB_DTYPE_UINT8, {2, 2}, nullptr), b(TB_DTYPE_UINT8, {4}, nullptr); return tb_copy(a.t, b.t, nullptr); }},
  {"copy_into_read_only", TB_ERROR_READ_ONLY, "destination tensor is read-only", [] {
     Host a(TB_DTYPE_UINT8, {4}, nullptr); uint8_t bytes[4]; int64_t shape[] = {4}; TbTensor* ro = nullptr;
     tb_tensor_wrap(bytes, cpu(), TB_DTYPE_UINT8, 1, shape, nullptr, nullptr, true, nullptr, nullptr, &ro);
     TbStatus s = tb_copy(a.t, ro, nullptr); tb_tensor_release(ro); return s; }},
  {"reformat_into_read_only", TB_ERROR_READ_ONLY, "destination tensor is read-only", [] {
     Host a(TB_DTYPE_UINT8, {2, 2}, "HW"); uint8_t bytes[4] = {7, 7, 7, 7}; int64_t shape[] = {2, 2}; TbTensor* ro = nullptr;
     tb_tensor_wrap(bytes, cpu(), TB_DTYPE_UINT8, 2, shape, nullptr, "WH", true, nullptr, nullptr, &ro);
     TbStatus s = tb_reformat(a.t, ro, nullptr); tb_tensor_release(ro);
     return bytes[0] == 7 && bytes[3] == 7 ? s : TB_ERROR_INTERNAL; }},
  {"convert_into_read_only", TB_ERROR_READ_ONLY, "destination tensor is read-only", [] {
     Host a(TB_DTYPE_UINT8, {2, 3}, "HC"); float out[6] = {}; int64_t shape[] = {3, 2}; TbTensor* ro = nullptr;
     tb_tensor_wrap(out, cpu(), TB_DTYPE_FLOAT32, 2, shape, nullptr, "CH", true, nullptr, nullptr, &ro);
     const float v[3] = {1, 1, 1}; TbStatus s = tb_convert(a.t, ro, v, v, 3, nullptr); tb_tensor_release(ro);
     return out[0] == 0.0f && out[5] == 0.0f ? s : TB_ERROR_INTERNAL; }},
  {"convert_negative_count", TB_ERROR_INVALID_ARGUMENT, "count = -1 is negative", [] { Host a(TB_DTYPE_UINT8, {2, 3}, "HC"), b(TB_DTYPE_FLOAT32, {2, 3}, "HC"); return tb_convert(a.t, b.t, nullptr, nullptr, -1, nullptr); }},
  {"convert_null_scale", TB_ERROR_INVALID_ARGUMENT, "scale is NULL", [] { Host a(TB_DTYPE_UINT8, {2, 3}, "HC"), b(TB_DTYPE_FLOAT32, {2, 3}, "HC"); float o[3] = {}; return tb_convert(a.t, b.t, nullptr, o, 3, nullptr); }},
  {"convert_wrong_channel_count", TB_ERROR_INVALID_ARGUMENT, "2 scale/offset values given for 3 channels", [] { Host a(TB_DTYPE_UINT8, {2, 3}, "HC"), b(TB_DTYPE_FLOAT32, {2, 3}, "HC"); float v[2] = {1, 1}; return tb_convert(a.t, b.t, v, v, 2, nullptr); }},
  {"convert_no_channel_label", TB_ERROR_INVALID_ARGUMENT, "no 'C' label", [] { Host a(TB_DTYPE_UINT8, {2, 3}, "HW"), b(TB_DTYPE_FLOAT32, {2, 3}, "HW"); float v[3] = {1, 1, 1}; return tb_convert(a.t, b.t, v, v, 3, nullptr); }},
  {"convert_unsupported_input", TB_ERROR_NOT_SUPPORTED, "not float64", [] { Host a(TB_DTYPE_FLOAT64, {2}, nullptr), b(TB_DTYPE_FLOAT32, {2}, nullptr); return tb_convert(a.t, b.t, nullptr, nullptr, 0, nullptr); }},
  {"convert_unsupported_output", TB_ERROR_NOT_SUPPORTED, "not int32", [] { Host a(TB_DTYPE_UINT8, {2}, nullptr), b(TB_DTYPE_INT32, {2}, nullptr); return tb_convert(a.t, b.t, nullptr, nullptr, 0, nullptr); }},
  {"clone_null_out", TB_ERROR_INVALID_ARGUMENT, "out is NULL", [] { Host a(TB_DTYPE_UINT8, {2}, nullptr); return tb_tensor_clone(a.t, nullptr, nullptr); }},
};
// clang-format on

class OpRejects : public ::testing::TestWithParam<BadOp> {};

TEST_P(OpRejects, WithStatusAndMessage) {
  const BadOp& c = GetParam();
  TB_EXPECT_STATUS(c.expected, c.call());
  EXPECT_NE(tbtest::last_error().find(c.fragment), std::string::npos) << tbtest::last_error();
}

INSTANTIATE_TEST_SUITE_P(Table, OpRejects, ::testing::ValuesIn(kBadOps),
                         [](const auto& info) { return std::string(info.param.name); });

// Video frames through the C ABI on host memory: known colours, the channel order, and the
// statuses of bad descriptions. GPU bytes are compared with this path in cuda_runtime_test.cpp.
TEST(Ops, Nv12FrameToRgbOnTheHost) {
  // A 2×4 frame: left half black (Y 16), right half white (Y 235); neutral chroma (128).
  Host frame(TB_DTYPE_UINT8, {3, 4}, nullptr), rgb(TB_DTYPE_UINT8, {2, 4, 3}, "HWC");
  const uint8_t samples[] = {16, 16, 235, 235, 16, 16, 235, 235, 128, 128, 128, 128};
  std::memcpy(frame.data<uint8_t>(), samples, sizeof samples);
  const TbTensor* planes[] = {frame.t};
  TbFrameFormat format{TB_PIXEL_NV12, TB_COLOR_BT601, TB_RANGE_LIMITED, false};
  TB_ASSERT_OK(tb_frame_convert(planes, 1, &format, rgb.t, nullptr, nullptr, 0, nullptr));
  for (int pixel = 0; pixel < 8; ++pixel) {
    const int expected = pixel % 4 < 2 ? 0 : 255;
    for (int c = 0; c < 3; ++c) ASSERT_EQ(rgb.data<uint8_t>()[pixel * 3 + c], expected) << pixel;
  }
  // Red chroma (Cr 240, Cb 90 at Y 82: BT.601 red): R high, B low; BGR swaps them.
  const uint8_t red[] = {82, 82, 82, 82, 82, 82, 82, 82, 90, 240, 90, 240};
  std::memcpy(frame.data<uint8_t>(), red, sizeof red);
  TB_ASSERT_OK(tb_frame_convert(planes, 1, &format, rgb.t, nullptr, nullptr, 0, nullptr));
  EXPECT_GT(rgb.data<uint8_t>()[0], 250);
  EXPECT_LT(rgb.data<uint8_t>()[2], 5);
  format.bgr = true;
  TB_ASSERT_OK(tb_frame_convert(planes, 1, &format, rgb.t, nullptr, nullptr, 0, nullptr));
  EXPECT_LT(rgb.data<uint8_t>()[0], 5);
  EXPECT_GT(rgb.data<uint8_t>()[2], 250);

  format.pixel_format = 7;
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT,
                   tb_frame_convert(planes, 1, &format, rgb.t, nullptr, nullptr, 0, nullptr));
  EXPECT_NE(tbtest::last_error().find("pixel_format = 7 is not a TbPixelFormat"), std::string::npos);
  format.pixel_format = TB_PIXEL_NV12;
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT,
                   tb_frame_convert(planes, 0, &format, rgb.t, nullptr, nullptr, 0, nullptr));
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT,
                   tb_frame_convert(nullptr, 1, &format, rgb.t, nullptr, nullptr, 0, nullptr));
  Host wrong(TB_DTYPE_UINT8, {2, 4, 4}, "HWC");
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT,
                   tb_frame_convert(planes, 1, &format, wrong.t, nullptr, nullptr, 0, nullptr));
  EXPECT_NE(tbtest::last_error().find("with 3 channels"), std::string::npos) << tbtest::last_error();
}

}  // namespace
