// Table-driven validation of tb_tensor_wrap: every rule has positive and negative cases, and
// every negative case asserts the status, a fragment of the message, that *out is NULL and that
// the cleanup callback did not run (ownership stays with the caller on failure).
//
// Data addresses here are fake, suitably aligned numbers: tb_tensor_wrap never dereferences.

#include "test_support.hpp"

#include <cstdint>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

namespace {

using tbtest::CleanupCounter;

constexpr uintptr_t kBase = 0x100000;  // aligned for every dtype
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

const TbDataType kU8 = TB_DTYPE_UINT8;
const TbDataType kU16 = TB_DTYPE_UINT16;
const TbDataType kF32 = TB_DTYPE_FLOAT32;
const TbDataType kF64 = TB_DTYPE_FLOAT64;
const TbDataType kC128 = TB_DTYPE_COMPLEX128;

struct WrapCase {
  const char* name;
  uintptr_t data;
  TbDevice device;
  TbDataType dtype;
  int32_t rank;
  std::vector<int64_t> shape;   // passed as NULL when empty and `null_shape`
  std::vector<int64_t> strides; // passed as NULL when empty
  const char* layout;
  bool readonly;
  TbStatus expected;
  const char* fragment;  // must appear in the message (negative cases)
  bool null_shape = false;
};

std::ostream& operator<<(std::ostream& os, const WrapCase& c) { return os << c.name; }

TbStatus wrap(const WrapCase& c, CleanupCounter& counter, TbTensor** out) {
  const int64_t* shape = (c.null_shape || c.shape.empty()) ? nullptr : c.shape.data();
  const int64_t* strides = c.strides.empty() ? nullptr : c.strides.data();
  return tb_tensor_wrap(reinterpret_cast<void*>(c.data), c.device, c.dtype, c.rank, shape,
                        strides, c.layout, c.readonly, &CleanupCounter::callback, &counter, out);
}

const TbDevice kCpu{TB_DEVICE_CPU, 0};

// clang-format off
const std::vector<WrapCase> kNegative = {
  {"rank_negative", kBase, kCpu, kF32, -1, {}, {}, nullptr, false, TB_ERROR_INVALID_ARGUMENT, "rank -1 is out of range"},
  {"rank_16", kBase, kCpu, kF32, 16, std::vector<int64_t>(16, 1), {}, nullptr, false, TB_ERROR_INVALID_ARGUMENT, "rank 16 is out of range 0..=15"},
  {"rank_int_max", kBase, kCpu, kF32, std::numeric_limits<int32_t>::max(), {1}, {}, nullptr, false, TB_ERROR_INVALID_ARGUMENT, "rank 2147483647"},
  {"rank_int_min", kBase, kCpu, kF32, std::numeric_limits<int32_t>::min(), {1}, {}, nullptr, false, TB_ERROR_INVALID_ARGUMENT, "rank -2147483648"},
  {"shape_null", kBase, kCpu, kF32, 3, {}, {}, nullptr, false, TB_ERROR_INVALID_ARGUMENT, "shape is NULL but 3 entries are needed", true},
  {"extent_negative_first", kBase, kCpu, kF32, 2, {-1, 3}, {}, nullptr, false, TB_ERROR_INVALID_ARGUMENT, "shape[0] = -1 is negative"},
  {"extent_negative_last", kBase, kCpu, kU8, 3, {2, 3, -5}, {}, nullptr, false, TB_ERROR_INVALID_ARGUMENT, "shape[2] = -5"},
  {"extent_int64_min", kBase, kCpu, kU8, 2, {2, kMin}, {}, nullptr, false, TB_ERROR_INVALID_ARGUMENT, "shape[1] = -9223372036854775808"},
  {"extent_negative_with_strides", kBase, kCpu, kU8, 2, {-2, 3}, {3, 1}, nullptr, false, TB_ERROR_INVALID_ARGUMENT, "shape[0] = -2"},
  {"null_data_nonempty", 0, kCpu, kF32, 2, {2, 3}, {}, nullptr, false, TB_ERROR_INVALID_ARGUMENT, "data is NULL but the tensor has 6 elements"},
  {"null_data_scalar", 0, kCpu, kF32, 0, {}, {}, nullptr, false, TB_ERROR_INVALID_ARGUMENT, "data is NULL but the tensor has 1 elements"},
  {"contiguous_stride_overflow", kBase, kCpu, kF32, 3, {1LL << 32, 1LL << 32, 1LL << 32}, {}, nullptr, true, TB_ERROR_OVERFLOW, "overflows int64"},
  {"element_count_overflow", kBase, kCpu, kU8, 2, {1LL << 40, 1LL << 40}, {0, 0}, nullptr, true, TB_ERROR_OVERFLOW, "element count"},
  {"byte_extent_overflow", kBase, kCpu, kU8, 2, {1LL << 20, 1LL << 20}, {1LL << 50, 1}, nullptr, false, TB_ERROR_OVERFLOW, "byte extent of dimension 0"},
  {"negative_stride_overflow", kBase, kCpu, kF32, 1, {1LL << 62}, {-4}, nullptr, false, TB_ERROR_OVERFLOW, "overflows int64"},
  {"span_sum_overflow", kBase, kCpu, kU8, 2, {3, 3}, {kMax / 2, kMax / 2}, nullptr, true, TB_ERROR_OVERFLOW, "overflows int64"},
  {"item_size_pushes_past_int64", kBase, kCpu, kF64, 1, {2}, {kMax - 4}, nullptr, true, TB_ERROR_OVERFLOW, "byte extent"},
  // Regression cases: unchecked sums and products (a debug panic or a release wrap).
  {"overlap_span_sum_overflow", 0x8000000000000000ull, kCpu, kU8, 3, {2, 2, 2}, {-(1LL << 62) + 1, -(1LL << 62), 1LL << 62}, nullptr, false, TB_ERROR_OVERFLOW, "overlap check's span"},
  {"broadcast_nbytes_overflow_f32", kBase, kCpu, kF32, 1, {(1LL << 61) + 1}, {0}, nullptr, true, TB_ERROR_OVERFLOW, "item size of shape [2305843009213693953]"},
  {"broadcast_nbytes_overflow_f64", kBase, kCpu, kF64, 1, {1LL << 62}, {0}, nullptr, true, TB_ERROR_OVERFLOW, "item size"},
  {"zero_extent_last_hides_nothing", kBase, kCpu, kU8, 3, {kMax, 2, 0}, {0, 0, 0}, nullptr, false, TB_ERROR_OVERFLOW, "item size"},
  {"zero_extent_first_hides_nothing", kBase, kCpu, kU8, 3, {0, kMax, 2}, {0, 0, 0}, nullptr, false, TB_ERROR_OVERFLOW, "item size"},
  {"below_address_zero", 0x1000, kCpu, kF32, 1, {16}, {-4096}, nullptr, false, TB_ERROR_OVERFLOW, "outside the address space"},
  {"past_address_space_end", 0xFFFFFFFFFFFFF000ull, kCpu, kU8, 1, {8192}, {}, nullptr, false, TB_ERROR_OVERFLOW, "outside the address space"},
  {"writable_zero_stride", kBase, kCpu, kF32, 2, {4, 3}, {0, 4}, nullptr, false, TB_ERROR_INVALID_ARGUMENT, "strides[0] = 0 makes elements overlap"},
  {"writable_all_zero_strides", kBase, kCpu, kU8, 1, {5}, {0}, nullptr, false, TB_ERROR_INVALID_ARGUMENT, "overlap"},
  {"writable_rows_overlap", kBase, kCpu, kF32, 2, {4, 3}, {8, 4}, nullptr, false, TB_ERROR_INVALID_ARGUMENT, "strides[0] = 8 makes elements overlap (it must step at least 12 bytes)"},
  {"writable_u8_rows_overlap", kBase, kCpu, kU8, 2, {4, 4}, {2, 1}, nullptr, false, TB_ERROR_INVALID_ARGUMENT, "overlap"},
  {"writable_negative_rows_overlap", kBase, kCpu, kF32, 2, {3, 2}, {-4, 4}, nullptr, false, TB_ERROR_INVALID_ARGUMENT, "overlap"},
  {"writable_interleaved_overlap", kBase, kCpu, kU16, 3, {2, 2, 2}, {4, 2, 2}, nullptr, false, TB_ERROR_INVALID_ARGUMENT, "overlap"},
  {"strides_rank_layout_mismatch", kBase, kCpu, kF32, 4, {1, 2, 3, 4}, {}, "HWC", false, TB_ERROR_INVALID_ARGUMENT, "layout \"HWC\" has 3 labels but the tensor has rank 4"},
  {"layout_longer_than_rank", kBase, kCpu, kF32, 2, {2, 3}, {}, "NHWC", false, TB_ERROR_INVALID_ARGUMENT, "has 4 labels but the tensor has rank 2"},
  {"layout_repeated_label", kBase, kCpu, kF32, 3, {2, 3, 4}, {}, "HWH", false, TB_ERROR_INVALID_ARGUMENT, "label 'H' is repeated"},
  {"layout_sixteen_labels", kBase, kCpu, kF32, 1, {1}, {}, "ABCDEFGHIJKLMNOP", false, TB_ERROR_INVALID_ARGUMENT, "at most 15"},
  {"layout_digit", kBase, kCpu, kF32, 4, {1, 2, 3, 4}, {}, "N1WC", false, TB_ERROR_INVALID_ARGUMENT, "not an ASCII letter"},
  {"layout_space", kBase, kCpu, kF32, 3, {1, 2, 3}, {}, "H C", false, TB_ERROR_INVALID_ARGUMENT, "not an ASCII letter"},
  {"layout_not_utf8", kBase, kCpu, kF32, 1, {1}, {}, "\xff", false, TB_ERROR_INVALID_ARGUMENT, "layout is not valid UTF-8"},
  {"device_type_unknown", kBase, TbDevice{99, 0}, kF32, 1, {1}, {}, nullptr, false, TB_ERROR_INVALID_ARGUMENT, "device type 99 is not a known device type"},
  {"device_type_zero", kBase, TbDevice{0, 0}, kF32, 1, {1}, {}, nullptr, false, TB_ERROR_INVALID_ARGUMENT, "device type 0"},
  {"device_type_opencl", kBase, TbDevice{4, 0}, kF32, 1, {1}, {}, nullptr, false, TB_ERROR_NOT_SUPPORTED, "OpenCL"},
  {"device_type_rocm", kBase, TbDevice{10, 0}, kF32, 1, {1}, {}, nullptr, false, TB_ERROR_NOT_SUPPORTED, "ROCm"},
  {"device_ordinal_negative", kBase, TbDevice{TB_DEVICE_CUDA, -1}, kF32, 1, {1}, {}, nullptr, false, TB_ERROR_INVALID_ARGUMENT, "device ordinal -1 is negative"},
  {"cpu_ordinal_nonzero", kBase, TbDevice{TB_DEVICE_CPU, 1}, kF32, 1, {1}, {}, nullptr, false, TB_ERROR_INVALID_ARGUMENT, "the CPU has ordinal 0"},
  {"dtype_vector_lanes", kBase, kCpu, TbDataType{TB_DTYPE_CODE_FLOAT, 32, 4}, 1, {1}, {}, nullptr, false, TB_ERROR_NOT_SUPPORTED, "lanes = 4"},
  {"dtype_zero_lanes", kBase, kCpu, TbDataType{TB_DTYPE_CODE_FLOAT, 32, 0}, 1, {1}, {}, nullptr, false, TB_ERROR_NOT_SUPPORTED, "lanes = 0"},
  {"dtype_float24", kBase, kCpu, TbDataType{TB_DTYPE_CODE_FLOAT, 24, 1}, 1, {1}, {}, nullptr, false, TB_ERROR_NOT_SUPPORTED, "bits 24"},
  {"dtype_opaque_handle", kBase, kCpu, TbDataType{TB_DTYPE_CODE_OPAQUE_HANDLE, 64, 1}, 1, {1}, {}, nullptr, false, TB_ERROR_NOT_SUPPORTED, "code 3"},
  {"dtype_unknown_code", kBase, kCpu, TbDataType{42, 32, 1}, 1, {1}, {}, nullptr, false, TB_ERROR_NOT_SUPPORTED, "code 42"},
  {"dtype_bfloat32", kBase, kCpu, TbDataType{TB_DTYPE_CODE_BFLOAT, 32, 1}, 1, {1}, {}, nullptr, false, TB_ERROR_NOT_SUPPORTED, "not a supported element type"},
  {"dtype_int128", kBase, kCpu, TbDataType{TB_DTYPE_CODE_INT, 128, 1}, 1, {1}, {}, nullptr, false, TB_ERROR_NOT_SUPPORTED, "bits 128"},
  {"misaligned_f32_data", kBase + 1, kCpu, kF32, 1, {4}, {}, nullptr, false, TB_ERROR_INVALID_ARGUMENT, "is misaligned for float32 (needs a multiple of 4 bytes)"},
  {"misaligned_f32_stride", kBase, kCpu, kF32, 2, {2, 2}, {6, 12}, nullptr, true, TB_ERROR_INVALID_ARGUMENT, "strides[0] = 6 bytes is misaligned for float32"},
  {"misaligned_f64_stride", kBase, kCpu, kF64, 1, {3}, {12}, nullptr, false, TB_ERROR_INVALID_ARGUMENT, "misaligned for float64"},
  {"misaligned_c128_data", kBase + 4, kCpu, kC128, 1, {1}, {}, nullptr, false, TB_ERROR_INVALID_ARGUMENT, "misaligned for complex128 (needs a multiple of 8 bytes)"},
  {"misaligned_u16_data", kBase + 1, kCpu, kU16, 0, {}, {}, nullptr, false, TB_ERROR_INVALID_ARGUMENT, "misaligned for uint16"},
};

const std::vector<WrapCase> kPositive = {
  {"scalar", kBase, kCpu, kF32, 0, {}, {}, nullptr, false, TB_SUCCESS, ""},
  {"hwc_contiguous", kBase, kCpu, kU8, 3, {1080, 1920, 3}, {}, "HWC", false, TB_SUCCESS, ""},
  {"zero_size_null_data", 0, kCpu, kF32, 4, {0, 224, 224, 3}, {}, "NHWC", false, TB_SUCCESS, ""},
  {"zero_size_odd_strides", 0, kCpu, kF32, 2, {0, 3}, {0, 0}, nullptr, false, TB_SUCCESS, ""},
  {"negative_strides", kBase + 44, kCpu, kF32, 2, {3, 4}, {-16, -4}, nullptr, false, TB_SUCCESS, ""},
  {"padded_rows", kBase, kCpu, kU8, 3, {480, 640, 3}, {2048, 3, 1}, "HWC", false, TB_SUCCESS, ""},
  {"broadcast_read_only", kBase, kCpu, kF32, 2, {1000, 3}, {0, 4}, "NC", true, TB_SUCCESS, ""},
  {"channels_planar_view", kBase, kCpu, kF32, 3, {3, 4, 5}, {4, 60, 12}, "CHW", false, TB_SUCCESS, ""},
  {"extent_one_odd_stride", kBase, kCpu, kF32, 2, {1, 4}, {3, 4}, nullptr, false, TB_SUCCESS, ""},
  {"complex64_half_aligned", kBase + 4, kCpu, TB_DTYPE_COMPLEX64, 1, {2}, {12}, nullptr, false, TB_SUCCESS, ""},
  {"max_rank", kBase, kCpu, kU8, 15, std::vector<int64_t>(15, 2), {}, "ABCDEFGHIJKLMNO", false, TB_SUCCESS, ""},
  {"cuda_pointer_unchecked_without_driver", kBase, TbDevice{TB_DEVICE_CUDA, 0}, kF32, 1, {8}, {}, nullptr, false, TB_SUCCESS, ""},
  {"pinned_host", kBase, TbDevice{TB_DEVICE_CUDA_HOST, 0}, kF32, 1, {8}, {}, nullptr, false, TB_SUCCESS, ""},
  {"managed", kBase, TbDevice{TB_DEVICE_CUDA_MANAGED, 0}, kF32, 1, {8}, {}, nullptr, false, TB_SUCCESS, ""},
  {"bool_typed", kBase + 1, kCpu, TB_DTYPE_BOOL, 1, {7}, {}, nullptr, false, TB_SUCCESS, ""},
  {"bfloat16", kBase, kCpu, TB_DTYPE_BFLOAT16, 2, {2, 3}, {}, nullptr, false, TB_SUCCESS, ""},
  {"lower_case_labels_distinct", kBase, kCpu, kF32, 2, {2, 3}, {}, "Nn", false, TB_SUCCESS, ""},
};
// clang-format on

class WrapRejects : public ::testing::TestWithParam<WrapCase> {};

TEST_P(WrapRejects, WithStatusMessageAndNoOwnershipTaken) {
  const WrapCase& c = GetParam();
  CleanupCounter counter;
  TbTensor* out = reinterpret_cast<TbTensor*>(0x1);  // must be reset to NULL
  TB_EXPECT_STATUS(c.expected, wrap(c, counter, &out));
  EXPECT_NE(tbtest::last_error().find(c.fragment), std::string::npos)
      << "message: " << tbtest::last_error();
  EXPECT_NE(tbtest::last_error().find("tb_tensor_wrap: "), std::string::npos);
  EXPECT_EQ(out, nullptr);
  EXPECT_EQ(counter.calls.load(), 0) << "cleanup must not run when the wrap fails";
}

INSTANTIATE_TEST_SUITE_P(Table, WrapRejects, ::testing::ValuesIn(kNegative),
                         [](const auto& info) { return std::string(info.param.name); });

class WrapAccepts : public ::testing::TestWithParam<WrapCase> {};

TEST_P(WrapAccepts, AndReportsWhatWasWrapped) {
  const WrapCase& c = GetParam();
  CleanupCounter counter;
  TbTensor* t = nullptr;
  TB_ASSERT_OK(wrap(c, counter, &t));
  TbTensorInfo info{};
  TB_ASSERT_OK(tb_tensor_info(t, &info));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(info.data), c.data);
  EXPECT_EQ(info.rank, c.rank);
  for (int i = 0; i < c.rank; ++i) {
    EXPECT_EQ(info.shape[i], c.shape[i]) << "dim " << i;
    if (!c.strides.empty()) {
      EXPECT_EQ(info.strides[i], c.strides[i]) << "dim " << i;
    }
  }
  EXPECT_STREQ(info.layout.labels, c.layout ? c.layout : "");
  EXPECT_EQ(info.readonly, c.readonly);
  EXPECT_EQ(info.device.device_type, c.device.device_type);
  EXPECT_EQ(counter.calls.load(), 0);
  TB_ASSERT_OK(tb_tensor_release(t));
  EXPECT_EQ(counter.calls.load(), 1);
  EXPECT_EQ(counter.last_data, reinterpret_cast<void*>(c.data));
}

INSTANTIATE_TEST_SUITE_P(Table, WrapAccepts, ::testing::ValuesIn(kPositive),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Wrap, NullOutputIsRejectedAndCleanupNotCalled) {
  CleanupCounter counter;
  int64_t shape[] = {4};
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT,
                   tb_tensor_wrap(reinterpret_cast<void*>(kBase), kCpu, kF32, 1, shape, nullptr,
                                  nullptr, false, &CleanupCounter::callback, &counter, nullptr));
  EXPECT_NE(tbtest::last_error().find("out is NULL"), std::string::npos);
  EXPECT_EQ(counter.calls.load(), 0);
}

// Regression: sizes and views of tensors at the edge of int64 are exact, never wrapped.
TEST(Wrap, SizesAndViewsAtTheInt64EdgeAreExact) {
  const int64_t shape[] = {(1LL << 60) - 1};
  const int64_t strides[] = {0};
  TbTensor* broadcast = nullptr;
  TB_ASSERT_OK(tb_tensor_wrap(reinterpret_cast<void*>(kBase), kCpu, kF64, 1, shape, strides,
                              nullptr, true, nullptr, nullptr, &broadcast));
  int64_t count = 0;
  int64_t nbytes = 0;
  TB_ASSERT_OK(tb_tensor_element_count(broadcast, &count));
  TB_ASSERT_OK(tb_tensor_nbytes(broadcast, &nbytes));
  EXPECT_EQ(count, (1LL << 60) - 1);
  EXPECT_EQ(nbytes, ((1LL << 60) - 1) * 8);
  // A step of INT64_MIN (whose negation overflows) takes one element, as in Python.
  TbTensor* one = nullptr;
  TB_ASSERT_OK(tb_tensor_slice(broadcast, 0, 5, kMin, kMin, &one));
  TbTensorInfo info{};
  TB_ASSERT_OK(tb_tensor_info(one, &info));
  EXPECT_EQ(info.shape[0], 1);
  EXPECT_EQ(info.nbytes, 8);
  TB_ASSERT_OK(tb_tensor_release(one));
  TB_ASSERT_OK(tb_tensor_release(broadcast));

  // A zero-size tensor whose transpose would be a shape that wrap refuses is refused itself.
  const int64_t empty_shape[] = {0, kMax, 2};
  const int64_t empty_strides[] = {0, 0, 0};
  TbTensor* empty = nullptr;
  TB_EXPECT_STATUS(TB_ERROR_OVERFLOW,
                   tb_tensor_wrap(nullptr, kCpu, kU8, 3, empty_shape, empty_strides, nullptr,
                                  false, nullptr, nullptr, &empty));
  EXPECT_EQ(empty, nullptr);
}

// The table covers every argument of tb_tensor_wrap and every failure status it documents, and
// no case is vacuous: removing a rule's cases, or adding a case that expects success or names no
// message, fails here.
TEST(Wrap, NegativeTableCoversEveryArgumentAndStatus) {
  const char* const arguments[] = {"rank", "shape", "extent", "null_data", "stride", "overflow", "writable",
                                   "layout", "device", "dtype", "misaligned"};
  for (const char* argument : arguments) {
    bool covered = false;
    for (const WrapCase& c : kNegative) covered |= std::string(c.name).find(argument) != std::string::npos;
    EXPECT_TRUE(covered) << "no negative case for " << argument;
  }
  for (TbStatus status : {TB_ERROR_INVALID_ARGUMENT, TB_ERROR_NOT_SUPPORTED, TB_ERROR_OVERFLOW}) {
    bool covered = false;
    for (const WrapCase& c : kNegative) covered |= c.expected == status;
    EXPECT_TRUE(covered) << "no negative case expects " << tb_status_name(status);
  }
  for (const WrapCase& c : kNegative) {
    EXPECT_NE(c.expected, TB_SUCCESS) << c.name;
    EXPECT_GT(std::string(c.fragment).size(), 3u) << c.name << ": the message fragment checks nothing";
  }
}

}  // namespace
