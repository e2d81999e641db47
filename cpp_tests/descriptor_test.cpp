// Descriptor standards on host memory (runs on every machine): NumPy array interface and DLPack
// (legacy + versioned) round trips, ownership counters, and a table of malformed descriptors.

#include "test_support.hpp"

#include <cstdint>
#include <cstring>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

namespace {

using tbtest::CleanupCounter;

// A producer's DLPack tensor over a host buffer, whose deleter counts its calls.
struct Producer {
  std::vector<float> values = std::vector<float>(3 * 4 + 2);
  std::vector<int64_t> shape{3, 4};
  std::vector<int64_t> strides{4, 1};  // elements
  int deletes = 0;
  TbDLManagedTensor legacy{};
  TbDLManagedTensorVersioned versioned{};

  Producer() {
    std::iota(values.begin(), values.end(), 0.0f);
    TbDLTensor t{};
    t.data = values.data();
    t.device = TbDevice{TB_DEVICE_CPU, 0};
    t.ndim = 2;
    t.dtype = TB_DTYPE_FLOAT32;
    t.shape = shape.data();
    t.strides = strides.data();
    t.byte_offset = 2 * sizeof(float);  // the first element is values[2]
    legacy.dl_tensor = t;
    legacy.manager_ctx = this;
    legacy.deleter = [](TbDLManagedTensor* self) {
      ++static_cast<Producer*>(self->manager_ctx)->deletes;
    };
    versioned.version = TbDLPackVersion{1, 0};
    versioned.dl_tensor = t;
    versioned.manager_ctx = this;
    versioned.deleter = [](TbDLManagedTensorVersioned* self) {
      ++static_cast<Producer*>(self->manager_ctx)->deletes;
    };
  }
};

using tbtest::info_of;

TEST(NumPyInterface, ImportIsZeroCopyAndExportMatches) {
  std::vector<int16_t> pixels(4 * 6 * 3);
  CleanupCounter keep_alive;
  TbArrayInterface in = tbtest::array_interface(pixels.data(), "<i2", {4, 6, 3});
  in.readonly = true;
  TbTensor* t = nullptr;
  TB_ASSERT_OK(tb_tensor_from_array_interface(&in, "HWC", &CleanupCounter::callback, &keep_alive, &t));
  TbTensorInfo info = info_of(t);
  EXPECT_EQ(info.data, pixels.data());
  EXPECT_EQ(info.device.device_type, TB_DEVICE_CPU);
  EXPECT_TRUE(info.readonly);
  EXPECT_STREQ(info.layout.labels, "HWC");
  EXPECT_EQ(info.strides[0], 6 * 3 * 2);

  TbArrayInterface out{};
  TB_ASSERT_OK(tb_tensor_to_array_interface(t, &out));
  EXPECT_EQ(out.version, 3);
  EXPECT_EQ(out.data, pixels.data());
  EXPECT_STREQ(out.typestr, "<i2");
  EXPECT_TRUE(out.readonly);
  EXPECT_FALSE(out.has_strides) << "strides are None exactly when C-contiguous";
  EXPECT_FALSE(out.has_stream);

  TbTensor* chw = nullptr;
  TB_ASSERT_OK(tb_tensor_permute(t, "CHW", &chw));
  TB_ASSERT_OK(tb_tensor_to_array_interface(chw, &out));
  EXPECT_TRUE(out.has_strides);
  EXPECT_EQ(out.strides[0], 2);
  EXPECT_EQ(out.strides[1], 36);

  TbArrayInterface cai{};
  TB_EXPECT_STATUS(TB_ERROR_DEVICE_MISMATCH, tb_tensor_to_cuda_array_interface(t, &cai));
  EXPECT_NE(tbtest::last_error().find("host memory"), std::string::npos);

  TB_ASSERT_OK(tb_tensor_release(t));
  TB_ASSERT_OK(tb_tensor_release(chw));
  EXPECT_EQ(keep_alive.calls.load(), 1);
}

TEST(NumPyInterface, ZeroSizeNegativeStridesAndPaddedRows) {
  std::vector<uint8_t> buffer(64 * 5);
  struct Case {
    void* data;
    std::vector<int64_t> shape, strides;
  } cases[] = {
      {nullptr, {0, 3}, {}},
      {buffer.data() + 4, {5}, {-1}},
      {buffer.data(), {5, 3}, {64, 1}},
  };
  for (const Case& c : cases) {
    TbArrayInterface in = tbtest::array_interface(c.data, "|u1", c.shape, c.strides);
    TbTensor* t = nullptr;
    TB_ASSERT_OK(tb_tensor_from_array_interface(&in, nullptr, nullptr, nullptr, &t));
    TbArrayInterface out{};
    TB_ASSERT_OK(tb_tensor_to_array_interface(t, &out));
    EXPECT_EQ(out.data, c.data);
    EXPECT_EQ(out.rank, in.rank);
    for (int i = 0; i < in.rank; ++i) {
      EXPECT_EQ(out.shape[i], in.shape[i]);
      if (in.has_strides) {
        EXPECT_EQ(out.strides[i], in.strides[i]);
      }
    }
    TB_ASSERT_OK(tb_tensor_release(t));
  }
}

TEST(DLPack, LegacyImportHonoursByteOffsetAndRunsTheDeleterOnce) {
  Producer p;
  TbTensor* t = nullptr;
  TB_ASSERT_OK(tb_tensor_from_dlpack(&p.legacy, "HW", &t));
  TbTensorInfo info = info_of(t);
  EXPECT_EQ(info.data, p.values.data() + 2);
  EXPECT_EQ(info.strides[0], 16);
  EXPECT_EQ(info.strides[1], 4);
  EXPECT_FALSE(info.readonly);
  TbTensor* view = nullptr;
  TB_ASSERT_OK(tb_tensor_select(t, 0, 2, &view));
  TB_ASSERT_OK(tb_tensor_release(t));
  EXPECT_EQ(p.deletes, 0);
  TB_ASSERT_OK(tb_tensor_release(view));
  EXPECT_EQ(p.deletes, 1);
}

TEST(DLPack, VersionedImportWithNullStridesAndReadOnlyFlag) {
  Producer p;
  p.versioned.dl_tensor.strides = nullptr;
  p.versioned.flags = TB_DLPACK_FLAG_READ_ONLY;
  TbTensor* t = nullptr;
  TB_ASSERT_OK(tb_tensor_from_dlpack_versioned(&p.versioned, nullptr, &t));
  TbTensorInfo info = info_of(t);
  EXPECT_TRUE(info.readonly);
  EXPECT_TRUE(info.contiguous);
  EXPECT_EQ(info.strides[0], 16);
  TB_ASSERT_OK(tb_tensor_release(t));
  EXPECT_EQ(p.deletes, 1);
}

TEST(DLPack, ExportBothFormsShareMemoryAndKeepTheSourceAlive) {
  std::vector<double> values(2 * 3 * 4);
  CleanupCounter cleanup;
  CleanupCounter writable_cleanup;
  const int64_t shape[] = {2, 3, 4};
  TbTensor* t = nullptr;
  TB_ASSERT_OK(tb_tensor_wrap(values.data(), TbDevice{TB_DEVICE_CPU, 0}, TB_DTYPE_FLOAT64, 3,
                              shape, nullptr, "NHW", true, &CleanupCounter::callback, &cleanup, &t));
  // The legacy form cannot say read-only, so it exports a writable wrap of the same memory.
  TbTensor* writable = nullptr;
  TB_ASSERT_OK(tb_tensor_wrap(values.data(), TbDevice{TB_DEVICE_CPU, 0}, TB_DTYPE_FLOAT64, 3,
                              shape, nullptr, "NHW", false, &CleanupCounter::callback,
                              &writable_cleanup, &writable));
  TbTensor* permuted = nullptr;
  TB_ASSERT_OK(tb_tensor_permute(t, "WNH", &permuted));
  TbDLManagedTensorVersioned* versioned = nullptr;
  TbDLManagedTensor* legacy = nullptr;
  TB_ASSERT_OK(tb_tensor_to_dlpack_versioned(permuted, &versioned));
  TB_ASSERT_OK(tb_tensor_to_dlpack(writable, &legacy));
  TB_ASSERT_OK(tb_tensor_release(permuted));
  TB_ASSERT_OK(tb_tensor_release(t));
  TB_ASSERT_OK(tb_tensor_release(writable));
  EXPECT_EQ(cleanup.calls.load(), 0) << "exports keep the memory alive";
  EXPECT_EQ(writable_cleanup.calls.load(), 0) << "exports keep the memory alive";

  EXPECT_EQ(versioned->version.major, TB_DLPACK_MAJOR_VERSION);
  EXPECT_EQ(versioned->flags & TB_DLPACK_FLAG_READ_ONLY, static_cast<uint64_t>(TB_DLPACK_FLAG_READ_ONLY));
  EXPECT_EQ(versioned->flags & TB_DLPACK_FLAG_IS_COPIED, 0u);
  const TbDLTensor& v = versioned->dl_tensor;
  EXPECT_EQ(v.data, values.data());
  EXPECT_EQ(v.ndim, 3);
  ASSERT_NE(v.strides, nullptr) << "strides are always present";
  EXPECT_EQ(std::vector<int64_t>(v.shape, v.shape + 3), (std::vector<int64_t>{4, 2, 3}));
  EXPECT_EQ(std::vector<int64_t>(v.strides, v.strides + 3), (std::vector<int64_t>{1, 12, 4}));
  EXPECT_EQ(v.byte_offset, 0u);
  EXPECT_EQ(legacy->dl_tensor.strides[0], 12);

  // Re-import the versioned export: the same memory, read-only, and its deleter runs once.
  TbTensor* back = nullptr;
  TB_ASSERT_OK(tb_tensor_from_dlpack_versioned(versioned, nullptr, &back));
  TbTensorInfo info = info_of(back);
  EXPECT_EQ(info.data, values.data());
  EXPECT_TRUE(info.readonly);
  EXPECT_EQ(info.strides[0], 8);
  TB_ASSERT_OK(tb_tensor_release(back));
  EXPECT_EQ(cleanup.calls.load(), 1) << "the versioned export's deleter let go of the memory";
  EXPECT_EQ(writable_cleanup.calls.load(), 0) << "the legacy export still holds the memory";
  auto deleter = legacy->deleter;  // read before the struct is freed by the call
  deleter(legacy);
  EXPECT_EQ(writable_cleanup.calls.load(), 1);
  deleter(legacy);  // a consumer bug: calling the deleter twice is ignored, not a double free
  EXPECT_EQ(writable_cleanup.calls.load(), 1);
}

// Regression: the legacy struct has no read-only flag, so exporting a read-only tensor through it
// and importing it back gave a writable tensor that tb_copy wrote into.
TEST(DLPack, LegacyExportRefusesReadOnlyTensor) {
  std::vector<float> values(6, 1.0f);
  std::vector<float> other(6, 2.0f);
  const int64_t shape[] = {2, 3};
  CleanupCounter cleanup;
  TbTensor* t = nullptr;
  TB_ASSERT_OK(tb_tensor_wrap(values.data(), tbtest::cpu(), TB_DTYPE_FLOAT32, 2, shape, nullptr,
                              nullptr, true, &CleanupCounter::callback, &cleanup, &t));
  TbTensor* view = nullptr;
  TB_ASSERT_OK(tb_tensor_slice(t, 0, 1, 2, 1, &view));
  for (TbTensor* readonly : {t, view}) {
    TbDLManagedTensor* legacy = nullptr;
    TB_EXPECT_STATUS(TB_ERROR_READ_ONLY, tb_tensor_to_dlpack(readonly, &legacy));
    EXPECT_EQ(legacy, nullptr) << "*out is unchanged on failure";
    EXPECT_NE(tbtest::last_error().find("tb_tensor_to_dlpack: tensor is read-only"),
              std::string::npos)
        << tbtest::last_error();
    EXPECT_NE(tbtest::last_error().find("tb_tensor_to_dlpack_versioned"), std::string::npos);
  }
  TB_ASSERT_OK(tb_tensor_release(view));

  // The versioned export keeps read-only through a round trip: writes into it are refused.
  TbDLManagedTensorVersioned* versioned = nullptr;
  TB_ASSERT_OK(tb_tensor_to_dlpack_versioned(t, &versioned));
  TbTensor* back = nullptr;
  TB_ASSERT_OK(tb_tensor_from_dlpack_versioned(versioned, nullptr, &back));
  EXPECT_TRUE(info_of(back).readonly);
  TbTensor* source = nullptr;
  TB_ASSERT_OK(tb_tensor_wrap(other.data(), tbtest::cpu(), TB_DTYPE_FLOAT32, 2, shape, nullptr,
                              nullptr, false, nullptr, nullptr, &source));
  TB_EXPECT_STATUS(TB_ERROR_READ_ONLY, tb_copy(source, back, nullptr));
  EXPECT_EQ(values[0], 1.0f) << "the read-only memory was written";
  TB_ASSERT_OK(tb_tensor_release(source));
  TB_ASSERT_OK(tb_tensor_release(back));
  TB_ASSERT_OK(tb_tensor_release(t));
  EXPECT_EQ(cleanup.calls.load(), 1);
}

TEST(DLPack, ExportRefusesStridesThatSplitElements) {
  std::vector<uint8_t> bytes(64);
  const int64_t shape[] = {3};
  const int64_t strides[] = {12};
  TbTensor* t = nullptr;
  TB_ASSERT_OK(tb_tensor_wrap(bytes.data(), TbDevice{TB_DEVICE_CPU, 0}, TB_DTYPE_COMPLEX64, 1, shape,
                              strides, nullptr, false, nullptr, nullptr, &t));
  TbDLManagedTensorVersioned* out = reinterpret_cast<TbDLManagedTensorVersioned*>(0x1);
  TB_EXPECT_STATUS(TB_ERROR_NOT_SUPPORTED, tb_tensor_to_dlpack_versioned(t, &out));
  EXPECT_NE(tbtest::last_error().find("not a multiple of the item size 8"), std::string::npos);
  TB_ASSERT_OK(tb_tensor_release(t));
}

// PyTorch exports torch.float4_e2m1fn_x2 as (code 17, bits 4, lanes 2) with shape and strides in
// pairs and no flags (aten/src/ATen/DLConvertor.cpp, getDLDataType / toScalarType): both struct
// forms import zero-copy and export back in the same form.
TEST(DLPack, Float4PairsCrossBothWaysInPyTorchsForm) {
  std::vector<uint8_t> bytes(4 * 8);
  std::iota(bytes.begin(), bytes.end(), uint8_t{0});
  int64_t shape[] = {4, 6};
  int64_t strides[] = {8, 1};  // pairs (bytes): rows padded to 8
  int deletes = 0;
  TbDLManagedTensorVersioned versioned{};
  versioned.version = TbDLPackVersion{1, 1};
  versioned.manager_ctx = &deletes;
  versioned.deleter = [](TbDLManagedTensorVersioned* self) { ++*static_cast<int*>(self->manager_ctx); };
  versioned.dl_tensor = TbDLTensor{bytes.data(), tbtest::cpu(), 2, TB_DTYPE_FLOAT4_E2M1FN_X2, shape, strides, 0};
  TbTensor* t = nullptr;
  TB_ASSERT_OK(tb_tensor_from_dlpack_versioned(&versioned, "HW", &t));
  TbTensorInfo info = info_of(t);
  EXPECT_EQ(info.data, bytes.data());
  EXPECT_EQ(info.dtype.code, TB_DTYPE_CODE_FLOAT4_E2M1FN);
  EXPECT_EQ(info.dtype.bits, 4);
  EXPECT_EQ(info.dtype.lanes, 2);
  EXPECT_EQ(info.shape[1], 6);
  EXPECT_EQ(info.strides[0], 8);
  EXPECT_EQ(info.strides[1], 1);
  EXPECT_EQ(info.nbytes, 24);
  const char* name = nullptr;
  TB_ASSERT_OK(tb_dtype_name(info.dtype, &name));
  EXPECT_STREQ(name, "float4_e2m1fn_x2");
  int64_t item_size = 0;
  TB_ASSERT_OK(tb_dtype_item_size(TB_DTYPE_FLOAT4_E2M1FN_X2, &item_size));
  EXPECT_EQ(item_size, 1);

  // Views work as for any one-byte type; exports keep lanes 2 and set no padded flag.
  TbTensor* columns = nullptr;
  TB_ASSERT_OK(tb_tensor_slice(t, 1, 2, 6, 1, &columns));
  TbTensor* transposed = nullptr;
  TB_ASSERT_OK(tb_tensor_permute(columns, "WH", &transposed));
  TbDLManagedTensorVersioned* out = nullptr;
  TB_ASSERT_OK(tb_tensor_to_dlpack_versioned(transposed, &out));
  EXPECT_EQ(out->flags & TB_DLPACK_FLAG_IS_SUBBYTE_TYPE_PADDED, 0u);
  EXPECT_EQ(out->dl_tensor.dtype.lanes, 2);
  EXPECT_EQ(out->dl_tensor.data, bytes.data() + 2);
  EXPECT_EQ(std::vector<int64_t>(out->dl_tensor.shape, out->dl_tensor.shape + 2), (std::vector<int64_t>{4, 4}));
  EXPECT_EQ(std::vector<int64_t>(out->dl_tensor.strides, out->dl_tensor.strides + 2), (std::vector<int64_t>{1, 8}));
  TbTensor* back = nullptr;
  TB_ASSERT_OK(tb_tensor_from_dlpack_versioned(out, nullptr, &back));
  EXPECT_EQ(info_of(back).dtype.lanes, 2);
  TbDLManagedTensor* legacy = nullptr;
  TB_ASSERT_OK(tb_tensor_to_dlpack(back, &legacy));
  EXPECT_EQ(legacy->dl_tensor.dtype.lanes, 2);
  TbTensor* again = nullptr;
  TB_ASSERT_OK(tb_tensor_from_dlpack(legacy, nullptr, &again));
  EXPECT_EQ(info_of(again).data, bytes.data() + 2);
  EXPECT_EQ(info_of(again).dtype.lanes, 2);

  // No array-interface typestr, and no arithmetic: both refused with a reason.
  TbArrayInterface described{};
  TB_EXPECT_STATUS(TB_ERROR_NOT_SUPPORTED, tb_tensor_to_array_interface(t, &described));
  EXPECT_NE(tbtest::last_error().find("float4_e2m1fn_x2 has no NumPy typestr"), std::string::npos)
      << tbtest::last_error();
  TbTensor* converted = nullptr;
  const float scale = 1.0f, offset = 0.0f;
  TB_EXPECT_STATUS(TB_ERROR_NOT_SUPPORTED,
                   tb_convert_new(t, nullptr, TB_DTYPE_FLOAT32, &scale, &offset, 1, nullptr, &converted));
  EXPECT_NE(tbtest::last_error().find("not float4_e2m1fn_x2"), std::string::npos) << tbtest::last_error();
  for (TbTensor* each : {t, columns, transposed, back, again}) TB_ASSERT_OK(tb_tensor_release(each));
  EXPECT_EQ(deletes, 1);
}

// DLPack's default form of float4 (bits 4, lanes 1, no padded flag) packs two elements per byte,
// the first in the low bits: the same bytes as float4_e2m1fn_x2 with the last extent halved.
TEST(DLPack, PackedFloat4ImportsAsPairsAndPaddedStaysPadded) {
  std::vector<uint8_t> bytes(4 + 4 * 8);
  int64_t shape[] = {4, 12};
  int64_t strides[] = {16, 1};  // elements: 8-byte rows
  TbDLManagedTensorVersioned versioned{};
  versioned.version = TbDLPackVersion{1, 1};
  versioned.dl_tensor =
      TbDLTensor{bytes.data(), tbtest::cpu(), 2, TbDataType{TB_DTYPE_CODE_FLOAT4_E2M1FN, 4, 1}, shape, strides, 4};
  TbTensor* pairs = nullptr;
  TB_ASSERT_OK(tb_tensor_from_dlpack_versioned(&versioned, nullptr, &pairs));
  TbTensorInfo info = info_of(pairs);
  EXPECT_EQ(info.data, bytes.data() + 4);
  EXPECT_EQ(info.dtype.lanes, 2);
  EXPECT_EQ(info.shape[0], 4);
  EXPECT_EQ(info.shape[1], 6);
  EXPECT_EQ(info.strides[0], 8);
  EXPECT_EQ(info.strides[1], 1);
  TB_ASSERT_OK(tb_tensor_release(pairs));

  int64_t padded_strides[] = {32, 1};  // one element per byte: 12 of 32-byte rows
  std::vector<uint8_t> padded_bytes(4 * 32);
  TbDLManagedTensorVersioned padded{};
  padded.version = TbDLPackVersion{1, 1};
  padded.flags = TB_DLPACK_FLAG_IS_SUBBYTE_TYPE_PADDED;
  padded.dl_tensor = TbDLTensor{padded_bytes.data(), tbtest::cpu(), 2, TbDataType{TB_DTYPE_CODE_FLOAT4_E2M1FN, 4, 1},
                                shape, padded_strides, 0};
  TbTensor* held = nullptr;
  TB_ASSERT_OK(tb_tensor_from_dlpack_versioned(&padded, nullptr, &held));
  info = info_of(held);
  EXPECT_EQ(info.dtype.lanes, 1);
  EXPECT_EQ(info.shape[1], 12);
  EXPECT_EQ(info.strides[0], 32);
  TB_ASSERT_OK(tb_tensor_release(held));
}

TEST(CudaArrayInterface, ImportNeedsTheDriverUnlessEmpty) {
  int32_t devices = 0;
  if (tb_cuda_device_count(&devices) == TB_SUCCESS) {
    GTEST_SKIP() << "a CUDA device is present; cuda_interop_test covers CUDA imports";
  }
  float value = 0;
  TbArrayInterface in = tbtest::array_interface(&value, "<f4", {1});
  TbTensor* t = nullptr;
  TB_EXPECT_STATUS(TB_ERROR_CUDA_UNAVAILABLE,
                   tb_tensor_from_cuda_array_interface(&in, nullptr, nullptr, nullptr, &t));
  TbArrayInterface empty = tbtest::array_interface(nullptr, "<f4", {0, 3});
  TB_ASSERT_OK(tb_tensor_from_cuda_array_interface(&empty, nullptr, nullptr, nullptr, &t));
  EXPECT_EQ(info_of(t).device.device_type, TB_DEVICE_CUDA);
  TB_ASSERT_OK(tb_tensor_release(t));
}

// ---- Malformed descriptors -------------------------------------------------------------------

enum class Kind { Cuda, NumPy, Legacy, Versioned };

struct BadDescriptor {
  const char* name;
  Kind kind;
  std::function<void(TbArrayInterface&, Producer&)> spoil;
  TbStatus expected;
  const char* fragment;
};

// GoogleTest prints each parameter (e.g. in --gtest_list_tests, which test discovery runs); without
// this it dumps the struct's bytes, padding included, which are uninitialised (valgrind reports
// them). The case name says everything.
std::ostream& operator<<(std::ostream& os, const BadDescriptor& c) { return os << c.name; }

float g_host_values[16];

std::string case_name(const ::testing::TestParamInfo<BadDescriptor>& info) {
  return info.param.name;
}

class MalformedDescriptor : public ::testing::TestWithParam<BadDescriptor> {};

TEST_P(MalformedDescriptor, IsRefusedWithoutTakingOwnership) {
  const BadDescriptor& c = GetParam();
  Producer p;
  TbArrayInterface d = tbtest::array_interface(g_host_values, "<f4", {2, 4});
  c.spoil(d, p);
  CleanupCounter keep_alive;
  TbTensor* out = reinterpret_cast<TbTensor*>(0x1);
  TbStatus status = TB_SUCCESS;
  switch (c.kind) {
    case Kind::Cuda:
      status = tb_tensor_from_cuda_array_interface(&d, nullptr, &CleanupCounter::callback,
                                                   &keep_alive, &out);
      break;
    case Kind::NumPy:
      status = tb_tensor_from_array_interface(&d, nullptr, &CleanupCounter::callback, &keep_alive,
                                              &out);
      break;
    case Kind::Legacy:
      status = tb_tensor_from_dlpack(&p.legacy, nullptr, &out);
      break;
    case Kind::Versioned:
      status = tb_tensor_from_dlpack_versioned(&p.versioned, nullptr, &out);
      break;
  }
  EXPECT_EQ(status, c.expected) << tb_status_name(status) << ": " << tbtest::last_error();
  EXPECT_NE(tbtest::last_error().find(c.fragment), std::string::npos) << tbtest::last_error();
  EXPECT_EQ(out, nullptr);
  EXPECT_EQ(keep_alive.calls.load(), 0);
  EXPECT_EQ(p.deletes, 0) << "a failed import must not call the producer's deleter";
}

using A = TbArrayInterface;
using P = Producer;

// clang-format off
const BadDescriptor kMalformed[] = {
  {"cai_version_0", Kind::Cuda, [](A& d, P&) { d.version = 0; }, TB_ERROR_INVALID_ARGUMENT, "version 0 is not supported"},
  {"cai_version_1", Kind::Cuda, [](A& d, P&) { d.version = 1; }, TB_ERROR_INVALID_ARGUMENT, "need version 2 or later"},
  {"cai_version_negative", Kind::Cuda, [](A& d, P&) { d.version = -3; }, TB_ERROR_INVALID_ARGUMENT, "version -3"},
  {"cai_stream_zero", Kind::Cuda, [](A& d, P&) { d.has_stream = true; d.stream = 0; }, TB_ERROR_INVALID_ARGUMENT, "stream 0 is disallowed"},
  {"cai_mask", Kind::Cuda, [](A& d, P&) { d.has_mask = true; }, TB_ERROR_NOT_SUPPORTED, "masked arrays"},
  {"cai_big_endian", Kind::Cuda, [](A& d, P&) { std::strcpy(d.typestr, ">f4"); }, TB_ERROR_NOT_SUPPORTED, "big-endian"},
  {"cai_object_dtype", Kind::Cuda, [](A& d, P&) { std::strcpy(d.typestr, "|O8"); }, TB_ERROR_NOT_SUPPORTED, "Python objects"},
  {"cai_rank_16", Kind::Cuda, [](A& d, P&) { d.rank = 16; }, TB_ERROR_INVALID_ARGUMENT, "rank 16 is out of range"},
  {"cai_rank_negative", Kind::Cuda, [](A& d, P&) { d.rank = -1; }, TB_ERROR_INVALID_ARGUMENT, "rank -1"},
  {"cai_typestr_unterminated", Kind::Cuda, [](A& d, P&) { std::memset(d.typestr, 'f', sizeof d.typestr); }, TB_ERROR_INVALID_ARGUMENT, "not NUL-terminated"},
  {"cai_typestr_empty", Kind::Cuda, [](A& d, P&) { d.typestr[0] = 0; }, TB_ERROR_INVALID_ARGUMENT, "typestr is empty"},
  {"cai_typestr_not_utf8", Kind::Cuda, [](A& d, P&) { d.typestr[1] = '\xff'; }, TB_ERROR_INVALID_ARGUMENT, "typestr is not valid UTF-8"},
  {"numpy_version_1", Kind::NumPy, [](A& d, P&) { d.version = 1; }, TB_ERROR_INVALID_ARGUMENT, "NumPy array interface version 1"},
  {"numpy_with_stream", Kind::NumPy, [](A& d, P&) { d.has_stream = true; d.stream = 7; }, TB_ERROR_INVALID_ARGUMENT, "no 'stream' entry"},
  {"numpy_mask", Kind::NumPy, [](A& d, P&) { d.has_mask = true; }, TB_ERROR_NOT_SUPPORTED, "mask"},
  {"numpy_unicode", Kind::NumPy, [](A& d, P&) { std::strcpy(d.typestr, "<U4"); }, TB_ERROR_NOT_SUPPORTED, "strings"},
  {"numpy_datetime", Kind::NumPy, [](A& d, P&) { std::strcpy(d.typestr, "<M8[ns]"); }, TB_ERROR_NOT_SUPPORTED, "datetimes"},
  {"numpy_bad_size", Kind::NumPy, [](A& d, P&) { std::strcpy(d.typestr, "<f3"); }, TB_ERROR_NOT_SUPPORTED, "unsupported element size"},
  {"numpy_size_text", Kind::NumPy, [](A& d, P&) { std::strcpy(d.typestr, "<fx"); }, TB_ERROR_INVALID_ARGUMENT, "is not a byte count"},
  {"numpy_negative_extent", Kind::NumPy, [](A& d, P&) { d.shape[1] = -4; }, TB_ERROR_INVALID_ARGUMENT, "shape[1] = -4"},
  {"numpy_null_data", Kind::NumPy, [](A& d, P&) { d.data = nullptr; }, TB_ERROR_INVALID_ARGUMENT, "data is NULL but the tensor has 8 elements"},
  {"numpy_misaligned", Kind::NumPy, [](A& d, P&) { d.data = reinterpret_cast<char*>(g_host_values) + 2; }, TB_ERROR_INVALID_ARGUMENT, "misaligned for float32"},
  {"numpy_overlap_writable", Kind::NumPy, [](A& d, P&) { d.has_strides = true; d.strides[0] = 0; d.strides[1] = 4; }, TB_ERROR_INVALID_ARGUMENT, "overlap"},
  {"numpy_stride_overflow", Kind::NumPy, [](A& d, P&) { d.has_strides = true; d.strides[0] = INT64_MAX; d.strides[1] = 4; d.readonly = true; }, TB_ERROR_OVERFLOW, "overflows int64"},
  {"numpy_misaligned_stride", Kind::NumPy, [](A& d, P&) { d.has_strides = true; d.strides[0] = 18; d.strides[1] = 4; }, TB_ERROR_INVALID_ARGUMENT, "strides[0] = 18 bytes is misaligned"},
  {"legacy_null_shape", Kind::Legacy, [](A&, P& p) { p.legacy.dl_tensor.shape = nullptr; }, TB_ERROR_INVALID_ARGUMENT, "shape is NULL but 2 entries are needed"},
  {"legacy_ndim_negative", Kind::Legacy, [](A&, P& p) { p.legacy.dl_tensor.ndim = -2; }, TB_ERROR_INVALID_ARGUMENT, "rank -2"},
  {"legacy_ndim_too_large", Kind::Legacy, [](A&, P& p) { p.legacy.dl_tensor.ndim = 40; }, TB_ERROR_INVALID_ARGUMENT, "rank 40"},
  {"legacy_lanes", Kind::Legacy, [](A&, P& p) { p.legacy.dl_tensor.dtype.lanes = 4; }, TB_ERROR_NOT_SUPPORTED, "lanes = 4"},
  {"legacy_dtype_code", Kind::Legacy, [](A&, P& p) { p.legacy.dl_tensor.dtype.code = 17; }, TB_ERROR_NOT_SUPPORTED, "code 17"},
  {"legacy_opaque_handle", Kind::Legacy, [](A&, P& p) { p.legacy.dl_tensor.dtype = TbDataType{TB_DTYPE_CODE_OPAQUE_HANDLE, 64, 1}; }, TB_ERROR_NOT_SUPPORTED, "code 3"},
  {"legacy_float8", Kind::Legacy, [](A&, P& p) { p.legacy.dl_tensor.dtype = TbDataType{TB_DTYPE_CODE_FLOAT, 8, 1}; }, TB_ERROR_NOT_SUPPORTED, "bits 8"},
  {"legacy_vulkan_device", Kind::Legacy, [](A&, P& p) { p.legacy.dl_tensor.device = TbDevice{7, 0}; }, TB_ERROR_NOT_SUPPORTED, "Vulkan"},
  {"legacy_unknown_device", Kind::Legacy, [](A&, P& p) { p.legacy.dl_tensor.device = TbDevice{1000, 0}; }, TB_ERROR_INVALID_ARGUMENT, "device type 1000"},
  {"legacy_negative_ordinal", Kind::Legacy, [](A&, P& p) { p.legacy.dl_tensor.device = TbDevice{TB_DEVICE_CUDA, -1}; }, TB_ERROR_INVALID_ARGUMENT, "ordinal -1"},
  {"legacy_stride_overflow", Kind::Legacy, [](A&, P& p) { p.strides[0] = INT64_MAX / 2; }, TB_ERROR_OVERFLOW, "strides[0] in bytes"},
  {"legacy_byte_offset_huge", Kind::Legacy, [](A&, P& p) { p.legacy.dl_tensor.byte_offset = UINT64_MAX; }, TB_ERROR_OVERFLOW, "does not fit int64"},
  {"legacy_null_data", Kind::Legacy, [](A&, P& p) { p.legacy.dl_tensor.data = nullptr; p.legacy.dl_tensor.byte_offset = 0; }, TB_ERROR_INVALID_ARGUMENT, "data is NULL"},
  {"legacy_misaligned_offset", Kind::Legacy, [](A&, P& p) { p.legacy.dl_tensor.byte_offset = 3; }, TB_ERROR_INVALID_ARGUMENT, "misaligned for float32"},
  {"legacy_overlapping", Kind::Legacy, [](A&, P& p) { p.strides[0] = 1; }, TB_ERROR_INVALID_ARGUMENT, "overlap"},
  {"versioned_major_2", Kind::Versioned, [](A&, P& p) { p.versioned.version = TbDLPackVersion{2, 0}; p.versioned.dl_tensor.ndim = -99; }, TB_ERROR_NOT_SUPPORTED, "DLPack version 2.0 is newer"},
  {"versioned_major_0", Kind::Versioned, [](A&, P& p) { p.versioned.version = TbDLPackVersion{0, 8}; }, TB_ERROR_INVALID_ARGUMENT, "version 0.x"},
  {"versioned_float4_packed_odd_rows", Kind::Versioned, [](A&, P& p) { p.versioned.dl_tensor.dtype = TbDataType{TB_DTYPE_CODE_FLOAT4_E2M1FN, 4, 1}; p.shape[1] = 3; }, TB_ERROR_NOT_SUPPORTED, "shape[1] = 3 is odd"},
  {"legacy_float4_packed_column_major", Kind::Legacy, [](A&, P& p) { p.legacy.dl_tensor.dtype = TbDataType{TB_DTYPE_CODE_FLOAT4_E2M1FN, 4, 1}; p.strides = {1, 3}; p.legacy.dl_tensor.strides = p.strides.data(); }, TB_ERROR_NOT_SUPPORTED, "strides[1] = 3 elements: the last dimension must be contiguous"},
  {"versioned_float4_pairs_padded", Kind::Versioned, [](A&, P& p) { p.versioned.flags = TB_DLPACK_FLAG_IS_SUBBYTE_TYPE_PADDED; p.versioned.dl_tensor.dtype = TB_DTYPE_FLOAT4_E2M1FN_X2; }, TB_ERROR_NOT_SUPPORTED, "a pair of float4 fills its byte"},
  {"legacy_float4_lanes_4", Kind::Legacy, [](A&, P& p) { p.legacy.dl_tensor.dtype = TbDataType{TB_DTYPE_CODE_FLOAT4_E2M1FN, 4, 4}; }, TB_ERROR_NOT_SUPPORTED, "float4_e2m1fn takes lanes 1"},
  {"legacy_subbyte_packed", Kind::Legacy, [](A&, P& p) { p.legacy.dl_tensor.dtype = TbDataType{TB_DTYPE_CODE_FLOAT6_E3M2FN, 6, 1}; }, TB_ERROR_NOT_SUPPORTED, "float6_e3m2fn arrives packed"},
  {"versioned_bool_vector", Kind::Versioned, [](A&, P& p) { p.versioned.flags = TB_DLPACK_FLAG_READ_ONLY; p.versioned.dl_tensor.dtype = TbDataType{TB_DTYPE_CODE_BOOL, 8, 2}; }, TB_ERROR_NOT_SUPPORTED, "lanes = 2"},
  {"versioned_null_shape", Kind::Versioned, [](A&, P& p) { p.versioned.dl_tensor.shape = nullptr; }, TB_ERROR_INVALID_ARGUMENT, "shape is NULL"},
  {"versioned_negative_extent", Kind::Versioned, [](A&, P& p) { p.shape[0] = -1; }, TB_ERROR_INVALID_ARGUMENT, "shape[0] = -1"},
  {"versioned_writable_overlap", Kind::Versioned, [](A&, P& p) { p.strides[0] = 0; }, TB_ERROR_INVALID_ARGUMENT, "overlap"},
};
// clang-format on

INSTANTIATE_TEST_SUITE_P(Table, MalformedDescriptor, ::testing::ValuesIn(kMalformed), case_name);

// Every descriptor kind has cases for each status its import can return, and no case is vacuous:
// removing a kind's cases, or adding one that expects success or names no message, fails here.
TEST(MalformedDescriptorTable, CoversEveryKindAndStatus) {
  struct Need {
    Kind kind;
    TbStatus status;
  } const needs[] = {
      {Kind::Cuda, TB_ERROR_INVALID_ARGUMENT},   {Kind::Cuda, TB_ERROR_NOT_SUPPORTED},
      {Kind::NumPy, TB_ERROR_INVALID_ARGUMENT},  {Kind::NumPy, TB_ERROR_NOT_SUPPORTED},
      {Kind::NumPy, TB_ERROR_OVERFLOW},          {Kind::Legacy, TB_ERROR_INVALID_ARGUMENT},
      {Kind::Legacy, TB_ERROR_NOT_SUPPORTED},    {Kind::Legacy, TB_ERROR_OVERFLOW},
      {Kind::Versioned, TB_ERROR_INVALID_ARGUMENT}, {Kind::Versioned, TB_ERROR_NOT_SUPPORTED},
  };
  for (const Need& need : needs) {
    bool covered = false;
    for (const auto& c : kMalformed) covered |= c.kind == need.kind && c.expected == need.status;
    EXPECT_TRUE(covered) << "descriptor kind " << static_cast<int>(need.kind) << " has no case expecting "
                         << tb_status_name(need.status);
  }
  for (const auto& c : kMalformed) {
    EXPECT_NE(c.expected, TB_SUCCESS) << c.name;
    EXPECT_GT(std::string(c.fragment).size(), 3u) << c.name << ": the message fragment checks nothing";
  }
}

TEST(Descriptors, NullArgumentsAreRejected) {
  TbTensor* out = nullptr;
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT,
                   tb_tensor_from_cuda_array_interface(nullptr, nullptr, nullptr, nullptr, &out));
  EXPECT_NE(tbtest::last_error().find("desc is NULL"), std::string::npos);
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT, tb_tensor_from_dlpack(nullptr, nullptr, &out));
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT, tb_tensor_from_dlpack_versioned(nullptr, nullptr, &out));
  Producer p;
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT, tb_tensor_from_dlpack(&p.legacy, nullptr, nullptr));
  EXPECT_EQ(p.deletes, 0);
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT, tb_tensor_to_dlpack(nullptr, nullptr));
}

}  // namespace
