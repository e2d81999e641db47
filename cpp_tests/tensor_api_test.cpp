// Queries, views, reference counting, allocation and the error model of the C ABI, on host
// memory (runs on every machine).

#include "test_support.hpp"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

namespace {

using tbtest::CleanupCounter;
using tbtest::cpu;

// A 2×4×5×3 NHWC uint8 batch over a real host buffer, counted by `counter`.
struct Batch {
  std::vector<uint8_t> pixels = std::vector<uint8_t>(2 * 4 * 5 * 3);
  CleanupCounter counter;
  TbTensor* tensor = nullptr;

  Batch() {
    std::iota(pixels.begin(), pixels.end(), 0);
    const int64_t shape[] = {2, 4, 5, 3};
    EXPECT_EQ(TB_SUCCESS, tb_tensor_wrap(pixels.data(), cpu(), TB_DTYPE_UINT8, 4, shape, nullptr,
                                         TB_LAYOUT_NHWC, false, &CleanupCounter::callback,
                                         &counter, &tensor))
        << tb_last_error_message();
  }
};

using tbtest::info_of;

// Reads element `index` of a uint8 tensor through its strides.
uint8_t at(const TbTensorInfo& info, std::initializer_list<int64_t> index) {
  const uint8_t* p = static_cast<const uint8_t*>(info.data);
  int dim = 0;
  for (int64_t i : index) p += i * info.strides[dim++];
  return *p;
}

TEST(Queries, EveryPropertyOfAWrappedBatch) {
  Batch b;
  void* data = nullptr;
  int32_t rank = 0;
  int64_t shape[TB_MAX_RANK] = {};
  int64_t strides[TB_MAX_RANK] = {};
  TbDataType dtype{};
  TbDevice device{};
  TbLayout layout{};
  bool readonly = true, contiguous = false;
  int64_t count = 0, nbytes = 0;
  TB_ASSERT_OK(tb_tensor_data(b.tensor, &data));
  TB_ASSERT_OK(tb_tensor_rank(b.tensor, &rank));
  TB_ASSERT_OK(tb_tensor_shape(b.tensor, TB_MAX_RANK, shape));
  TB_ASSERT_OK(tb_tensor_strides(b.tensor, 4, strides));
  TB_ASSERT_OK(tb_tensor_dtype(b.tensor, &dtype));
  TB_ASSERT_OK(tb_tensor_device(b.tensor, &device));
  TB_ASSERT_OK(tb_tensor_layout(b.tensor, &layout));
  TB_ASSERT_OK(tb_tensor_is_readonly(b.tensor, &readonly));
  TB_ASSERT_OK(tb_tensor_is_contiguous(b.tensor, &contiguous));
  TB_ASSERT_OK(tb_tensor_element_count(b.tensor, &count));
  TB_ASSERT_OK(tb_tensor_nbytes(b.tensor, &nbytes));
  EXPECT_EQ(data, b.pixels.data());
  EXPECT_EQ(rank, 4);
  EXPECT_EQ(std::vector<int64_t>(shape, shape + 4), (std::vector<int64_t>{2, 4, 5, 3}));
  EXPECT_EQ(std::vector<int64_t>(strides, strides + 4), (std::vector<int64_t>{60, 15, 3, 1}));
  EXPECT_EQ(dtype.code, TB_DTYPE_CODE_UINT);
  EXPECT_EQ(dtype.bits, 8);
  EXPECT_EQ(dtype.lanes, 1);
  EXPECT_EQ(device.device_type, TB_DEVICE_CPU);
  EXPECT_STREQ(layout.labels, "NHWC");
  EXPECT_FALSE(readonly);
  EXPECT_TRUE(contiguous);
  EXPECT_EQ(count, 120);
  EXPECT_EQ(nbytes, 120);
  TB_ASSERT_OK(tb_tensor_release(b.tensor));
  EXPECT_EQ(b.counter.calls.load(), 1);
}

TEST(Views, PermuteNhwcToNchwSharesMemory) {
  Batch b;
  TbTensor* nchw = nullptr;
  TB_ASSERT_OK(tb_tensor_permute(b.tensor, TB_LAYOUT_NCHW, &nchw));
  TbTensorInfo v = info_of(nchw);
  EXPECT_STREQ(v.layout.labels, "NCHW");
  EXPECT_EQ(std::vector<int64_t>(v.shape, v.shape + 4), (std::vector<int64_t>{2, 3, 4, 5}));
  EXPECT_EQ(std::vector<int64_t>(v.strides, v.strides + 4), (std::vector<int64_t>{60, 1, 15, 3}));
  EXPECT_FALSE(v.contiguous);
  // Element (n=1, c=2, h=3, w=4) is pixel (1, 3, 4, 2) of the NHWC buffer.
  EXPECT_EQ(at(v, {1, 2, 3, 4}), b.pixels[60 + 3 * 15 + 4 * 3 + 2]);
  TB_ASSERT_OK(tb_tensor_release(b.tensor));
  EXPECT_EQ(b.counter.calls.load(), 0) << "the view keeps the memory alive";
  TB_ASSERT_OK(tb_tensor_release(nchw));
  EXPECT_EQ(b.counter.calls.load(), 1);
}

TEST(Views, SelectGivesAnHwcImageAndSliceKeepsTheBatch) {
  Batch b;
  TbTensor* image = nullptr;
  TbTensor* tail = nullptr;
  TbTensor* flipped = nullptr;
  TB_ASSERT_OK(tb_tensor_select(b.tensor, 0, 1, &image));
  TB_ASSERT_OK(tb_tensor_slice(b.tensor, 0, 1, INT64_MAX, 1, &tail));
  TB_ASSERT_OK(tb_tensor_slice(b.tensor, -2, INT64_MAX, INT64_MIN, -1, &flipped));
  TbTensorInfo i = info_of(image), t = info_of(tail), f = info_of(flipped);
  EXPECT_STREQ(i.layout.labels, "HWC");
  EXPECT_EQ(i.rank, 3);
  EXPECT_EQ(i.data, b.pixels.data() + 60);
  EXPECT_STREQ(t.layout.labels, "NHWC");
  EXPECT_EQ(t.shape[0], 1);
  EXPECT_EQ(t.data, b.pixels.data() + 60);
  EXPECT_EQ(f.strides[2], -3) << "W reversed";
  EXPECT_EQ(at(f, {0, 0, 0, 0}), b.pixels[4 * 3]);
  for (TbTensor* x : {b.tensor, image, tail}) TB_ASSERT_OK(tb_tensor_release(x));
  EXPECT_EQ(b.counter.calls.load(), 0);
  TB_ASSERT_OK(tb_tensor_release(flipped));
  EXPECT_EQ(b.counter.calls.load(), 1);
}

TEST(Views, TransposeAndRelabel) {
  Batch b;
  TbTensor* plain = nullptr;
  TbTensor* moved = nullptr;
  TB_ASSERT_OK(tb_tensor_with_layout(b.tensor, nullptr, &plain));
  const int32_t axes[] = {3, 0, 1, 2};
  TB_ASSERT_OK(tb_tensor_transpose(plain, 4, axes, &moved));
  TbTensorInfo m = info_of(moved);
  EXPECT_STREQ(m.layout.labels, "");
  EXPECT_EQ(m.shape[0], 3);
  EXPECT_EQ(m.strides[0], 1);
  for (TbTensor* x : {b.tensor, plain, moved}) TB_ASSERT_OK(tb_tensor_release(x));
  EXPECT_EQ(b.counter.calls.load(), 1);
}

struct ViewCase {
  const char* name;
  TbStatus expected;
  const char* fragment;
  TbStatus (*call)(TbTensor* t, TbTensor** out);
};

// Printed as its name, not as raw bytes (whose padding is uninitialised).
std::ostream& operator<<(std::ostream& os, const ViewCase& c) { return os << c.name; }

// clang-format off
const ViewCase kBadViews[] = {
  {"permute_missing_label", TB_ERROR_INVALID_ARGUMENT, "label 'D' is missing", [](TbTensor* t, TbTensor** o) { return tb_tensor_permute(t, "NDHW", o); }},
  {"permute_other_rank", TB_ERROR_INVALID_ARGUMENT, "different rank", [](TbTensor* t, TbTensor** o) { return tb_tensor_permute(t, "HWC", o); }},
  {"permute_null_layout", TB_ERROR_INVALID_ARGUMENT, "layout is NULL", [](TbTensor* t, TbTensor** o) { return tb_tensor_permute(t, nullptr, o); }},
  {"permute_repeated", TB_ERROR_INVALID_ARGUMENT, "repeated", [](TbTensor* t, TbTensor** o) { return tb_tensor_permute(t, "NHHC", o); }},
  {"transpose_repeated_axis", TB_ERROR_INVALID_ARGUMENT, "is not a permutation", [](TbTensor* t, TbTensor** o) { const int32_t a[] = {0, 0, 1, 2}; return tb_tensor_transpose(t, 4, a, o); }},
  {"transpose_negative_axis", TB_ERROR_INVALID_ARGUMENT, "out of range or repeated", [](TbTensor* t, TbTensor** o) { const int32_t a[] = {-1, 0, 1, 2}; return tb_tensor_transpose(t, 4, a, o); }},
  {"transpose_short", TB_ERROR_INVALID_ARGUMENT, "permutation has 3 axes but the tensor has rank 4", [](TbTensor* t, TbTensor** o) { const int32_t a[] = {0, 1, 2}; return tb_tensor_transpose(t, 3, a, o); }},
  {"transpose_null_axes", TB_ERROR_INVALID_ARGUMENT, "axes is NULL", [](TbTensor* t, TbTensor** o) { return tb_tensor_transpose(t, 4, nullptr, o); }},
  {"slice_step_zero", TB_ERROR_INVALID_ARGUMENT, "slice step is 0", [](TbTensor* t, TbTensor** o) { return tb_tensor_slice(t, 0, 0, 1, 0, o); }},
  {"slice_dim_out_of_range", TB_ERROR_INVALID_ARGUMENT, "dimension 4 is out of range for a tensor of rank 4", [](TbTensor* t, TbTensor** o) { return tb_tensor_slice(t, 4, 0, 1, 1, o); }},
  {"slice_dim_too_negative", TB_ERROR_INVALID_ARGUMENT, "dimension -5", [](TbTensor* t, TbTensor** o) { return tb_tensor_slice(t, -5, 0, 1, 1, o); }},
  {"select_index_past_end", TB_ERROR_INVALID_ARGUMENT, "index 2 is out of range for dimension 0 of extent 2", [](TbTensor* t, TbTensor** o) { return tb_tensor_select(t, 0, 2, o); }},
  {"select_index_too_negative", TB_ERROR_INVALID_ARGUMENT, "index -3", [](TbTensor* t, TbTensor** o) { return tb_tensor_select(t, 0, -3, o); }},
  {"relabel_wrong_rank", TB_ERROR_INVALID_ARGUMENT, "has 3 labels but the tensor has rank 4", [](TbTensor* t, TbTensor** o) { return tb_tensor_with_layout(t, "HWC", o); }},
  {"view_null_out", TB_ERROR_INVALID_ARGUMENT, "out is NULL", [](TbTensor* t, TbTensor**) { return tb_tensor_select(t, 0, 0, nullptr); }},
  {"view_of_null", TB_ERROR_INVALID_ARGUMENT, "tensor is NULL", [](TbTensor*, TbTensor** o) { return tb_tensor_select(nullptr, 0, 0, o); }},
  {"view_of_garbage_handle", TB_ERROR_INVALID_ARGUMENT, "is not a live TbTensor handle", [](TbTensor*, TbTensor** o) { return tb_tensor_select(reinterpret_cast<TbTensor*>(0x1234), 0, 0, o); }},
  {"shape_capacity_too_small", TB_ERROR_INVALID_ARGUMENT, "capacity 3 is smaller than the tensor's rank 4", [](TbTensor* t, TbTensor**) { int64_t s[3]; return tb_tensor_shape(t, 3, s); }},
  {"strides_null_out", TB_ERROR_INVALID_ARGUMENT, "out is NULL", [](TbTensor* t, TbTensor**) { return tb_tensor_strides(t, 4, nullptr); }},
  {"info_null_out", TB_ERROR_INVALID_ARGUMENT, "out is NULL", [](TbTensor* t, TbTensor**) { return tb_tensor_info(t, nullptr); }},
  {"retain_garbage", TB_ERROR_INVALID_ARGUMENT, "is not a live TbTensor handle", [](TbTensor*, TbTensor**) { return tb_tensor_retain(reinterpret_cast<TbTensor*>(0x10)); }},
};
// clang-format on

class ViewRejects : public ::testing::TestWithParam<ViewCase> {};

TEST_P(ViewRejects, WithStatusAndMessageAndNoNewHandle) {
  const ViewCase& c = GetParam();
  Batch b;
  int64_t live_before = tbtest::live_tensors();
  TbTensor* out = reinterpret_cast<TbTensor*>(0x1);
  TB_EXPECT_STATUS(c.expected, c.call(b.tensor, &out));
  EXPECT_NE(tbtest::last_error().find(c.fragment), std::string::npos) << tbtest::last_error();
  EXPECT_EQ(tbtest::live_tensors(), live_before);
  TB_ASSERT_OK(tb_tensor_release(b.tensor));
  EXPECT_EQ(b.counter.calls.load(), 1);
}

INSTANTIATE_TEST_SUITE_P(Table, ViewRejects, ::testing::ValuesIn(kBadViews),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Lifetime, RetainNeedsMatchingReleasesAndDoubleReleaseIsCaught) {
  Batch b;
  TB_ASSERT_OK(tb_tensor_retain(b.tensor));
  TB_ASSERT_OK(tb_tensor_release(b.tensor));
  EXPECT_EQ(b.counter.calls.load(), 0);
  TB_ASSERT_OK(tb_tensor_release(b.tensor));
  EXPECT_EQ(b.counter.calls.load(), 1);
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT, tb_tensor_release(b.tensor));
  EXPECT_NE(tbtest::last_error().find("already released"), std::string::npos);
  EXPECT_EQ(b.counter.calls.load(), 1) << "a double release must not run the cleanup again";
  TB_EXPECT_STATUS(TB_SUCCESS, tb_tensor_release(nullptr));
}

TEST(Lifetime, CleanupRunsOnceWhenTheLastThreadReleases) {
  Batch b;
  constexpr int kThreads = 8;
  for (int i = 0; i < kThreads; ++i) TB_ASSERT_OK(tb_tensor_retain(b.tensor));
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      TbTensor* view = nullptr;
      EXPECT_EQ(TB_SUCCESS, tb_tensor_permute(b.tensor, "NCHW", &view));
      EXPECT_EQ(TB_SUCCESS, tb_tensor_release(view));
      EXPECT_EQ(TB_SUCCESS, tb_tensor_release(b.tensor));
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(b.counter.calls.load(), 0);
  TB_ASSERT_OK(tb_tensor_release(b.tensor));
  EXPECT_EQ(b.counter.calls.load(), 1);
}

// A cleanup that calls back into the library must not deadlock.
void reentrant_cleanup(void* context, void*) {
  int64_t live = -1;
  tb_tensor_live_count(&live);
  *static_cast<int64_t*>(context) = live;
}

TEST(Lifetime, CleanupMayCallTheLibrary) {
  int64_t seen = -1;
  float value = 1.0f;
  TbTensor* t = nullptr;
  TB_ASSERT_OK(tb_tensor_wrap(&value, cpu(), TB_DTYPE_FLOAT32, 0, nullptr, nullptr, nullptr, false,
                              &reentrant_cleanup, &seen, &t));
  int64_t before = tbtest::live_tensors();
  TB_ASSERT_OK(tb_tensor_release(t));
  EXPECT_EQ(seen, before - 1);
}

TEST(Alloc, HostTensorIsAlignedZeroedAndPadded) {
  const int64_t shape[] = {2, 3, 5, 3};
  TbTensor* t = nullptr;
  TB_ASSERT_OK(tb_tensor_alloc(cpu(), TB_DTYPE_UINT8, 4, shape, TB_LAYOUT_NHWC, 64, &t));
  TbTensorInfo info = info_of(t);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(info.data) % TB_HOST_ALIGNMENT, 0u);
  EXPECT_EQ(std::vector<int64_t>(info.strides, info.strides + 4),
            (std::vector<int64_t>{192, 64, 3, 1}));
  EXPECT_FALSE(info.contiguous);
  const uint8_t* bytes = static_cast<const uint8_t*>(info.data);
  for (int i = 0; i < 384; ++i) ASSERT_EQ(bytes[i], 0) << i;
  std::memset(info.data, 7, 384);  // the whole padded allocation is writable
  TB_ASSERT_OK(tb_tensor_release(t));
}

TEST(Alloc, RejectsBadArguments) {
  const int64_t shape[] = {4, 4};
  TbTensor* t = reinterpret_cast<TbTensor*>(0x1);
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT,
                   tb_tensor_alloc(cpu(), TB_DTYPE_UINT8, 2, shape, nullptr, 48, &t));
  EXPECT_NE(tbtest::last_error().find("row_alignment = 48"), std::string::npos);
  EXPECT_EQ(t, nullptr);
  const int64_t huge[] = {INT64_MAX / 2, 4};
  TB_EXPECT_STATUS(TB_ERROR_OVERFLOW,
                   tb_tensor_alloc(cpu(), TB_DTYPE_FLOAT32, 2, huge, nullptr, 0, &t));
}

TEST(Alloc, ReportsOutOfMemoryWithoutAskingMalloc) {
  // INT64_MAX bytes is a valid size (no int64 overflow) that no address space can hold: it exceeds
  // isize::MAX, so Rust's allocator API refuses it before calling malloc. A merely huge size (say
  // 2^50) would reach malloc, whose failure aborts under AddressSanitizer unless
  // allocator_may_return_null=1, and may even succeed with overcommit.
  const int64_t too_big[] = {INT64_MAX};
  TbTensor* t = reinterpret_cast<TbTensor*>(0x1);
  TB_EXPECT_STATUS(TB_ERROR_OUT_OF_MEMORY,
                   tb_tensor_alloc(cpu(), TB_DTYPE_UINT8, 1, too_big, nullptr, 0, &t));
  EXPECT_NE(tbtest::last_error().find("cannot allocate"), std::string::npos) << tbtest::last_error();
  EXPECT_EQ(t, nullptr);
}

TEST(Alloc, CudaKindsReportUnavailableWithoutADriver) {
  int32_t devices = 0;
  if (tb_cuda_device_count(&devices) == TB_SUCCESS) {
    GTEST_SKIP() << "a CUDA device is present; cuda_runtime_test covers device allocation";
  }
  EXPECT_EQ(devices, 0);
  EXPECT_NE(tbtest::last_error().find("CUDA unavailable"), std::string::npos);
  const int64_t shape[] = {4};
  for (int32_t kind : {TB_DEVICE_CUDA, TB_DEVICE_CUDA_HOST, TB_DEVICE_CUDA_MANAGED}) {
    TbTensor* t = nullptr;
    TB_EXPECT_STATUS(TB_ERROR_CUDA_UNAVAILABLE,
                     tb_tensor_alloc(TbDevice{kind, 0}, TB_DTYPE_FLOAT32, 1, shape, nullptr, 0, &t));
    EXPECT_NE(tbtest::last_error().find("CUDA unavailable"), std::string::npos);
    EXPECT_EQ(t, nullptr);
  }
}

TEST(Errors, StatusNamesAndVersion) {
  EXPECT_STREQ(tb_status_name(TB_SUCCESS), "TB_SUCCESS");
  EXPECT_STREQ(tb_status_name(TB_ERROR_OVERFLOW), "TB_ERROR_OVERFLOW");
  EXPECT_STREQ(tb_status_name(1234), "TB_UNKNOWN_STATUS");
  EXPECT_EQ(tb_version(),
            TB_VERSION_MAJOR * 10000u + TB_VERSION_MINOR * 100u + TB_VERSION_PATCH);
  EXPECT_EQ(std::string(tb_version_string()),
            std::to_string(TB_VERSION_MAJOR) + "." + std::to_string(TB_VERSION_MINOR) + "." +
                std::to_string(TB_VERSION_PATCH));
}

TEST(Errors, MessagesArePerThread) {
  TbLayout layout;
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT, tb_layout_parse("AA", &layout));
  std::string other;
  std::thread([&] {
    TbDataType dtype;
    tb_dtype_from_typestr(">f4", &dtype);
    other = tb_last_error_message();
  }).join();
  EXPECT_NE(other.find("big-endian"), std::string::npos);
  EXPECT_NE(tbtest::last_error().find("'A' is repeated"), std::string::npos);
}

// What a thread_local destructor saw when it called the library during thread exit.
struct ThreadExitReport {
  std::atomic<bool> ran{false};
  std::atomic<TbStatus> status{TB_SUCCESS};
  std::atomic<bool> message_null{true};
  std::string message;  // written before `ran` is set
};

ThreadExitReport g_thread_exit;

// Calls failing functions from its destructor, which runs at thread exit after the library's
// thread-local error slot has been destroyed (it was created later, so it is destroyed first).
struct CallsTheLibraryOnThreadExit {
  bool armed = false;
  ~CallsTheLibraryOnThreadExit() {
    if (!armed) return;
    g_thread_exit.status = tb_tensor_release(reinterpret_cast<TbTensor*>(0x7777000000000001ull));
    const char* message = tb_last_error_message();
    g_thread_exit.message_null = message == nullptr;
    g_thread_exit.message = message ? message : "";
    TbLayout layout;
    (void)tb_layout_parse("AA", &layout);  // a second failure, and a second message lookup
    (void)tb_last_error_message();
    g_thread_exit.ran = true;
  }
};

thread_local CallsTheLibraryOnThreadExit t_calls_on_exit;

// Regression: the thread-local error slot was touched outside the panic boundary; a failing call
// from a C++ thread_local destructor (after Rust's thread-locals are gone) panicked in a function
// that cannot unwind, and the process aborted.
TEST(Errors, FailingCallsDuringThreadExitDoNotAbort) {
  std::thread([] {
    t_calls_on_exit.armed = true;  // constructs it: its destructor is registered first
    TbLayout layout;
    TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT, tb_layout_parse("AA", &layout));
    EXPECT_NE(tbtest::last_error().find("'A' is repeated"), std::string::npos);
  }).join();
  ASSERT_TRUE(g_thread_exit.ran.load());
  EXPECT_EQ(g_thread_exit.status.load(), TB_ERROR_INVALID_ARGUMENT);
  EXPECT_FALSE(g_thread_exit.message_null.load()) << "tb_last_error_message() is never NULL";
  EXPECT_FALSE(g_thread_exit.message.empty());
}

// The header promises that successful calls leave the thread's message unchanged.
TEST(Errors, SuccessfulCallsLeaveTheMessageUnchanged) {
  TbLayout layout;
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT, tb_layout_parse("AA", &layout));
  const std::string failure = tbtest::last_error();
  ASSERT_NE(failure.find("tb_layout_parse: "), std::string::npos) << failure;

  Batch b;  // wrap
  TbTensorInfo info{};
  TB_ASSERT_OK(tb_tensor_info(b.tensor, &info));
  TbTensor* view = nullptr;
  TB_ASSERT_OK(tb_tensor_permute(b.tensor, "NCHW", &view));
  TbTensor* sliced = nullptr;
  TB_ASSERT_OK(tb_tensor_slice(view, 0, 1, INT64_MAX, 1, &sliced));
  TB_ASSERT_OK(tb_tensor_retain(sliced));
  TB_ASSERT_OK(tb_tensor_release(sliced));
  TbTensor* copy = nullptr;
  TB_ASSERT_OK(tb_tensor_clone(sliced, nullptr, &copy));
  TbDLManagedTensorVersioned* exported = nullptr;
  TB_ASSERT_OK(tb_tensor_to_dlpack_versioned(copy, &exported));
  exported->deleter(exported);
  TbDataType dtype{};
  TB_ASSERT_OK(tb_dtype_from_typestr("<f4", &dtype));
  TB_ASSERT_OK(tb_layout_parse("NHWC", &layout));
  TB_ASSERT_OK(tb_tensor_release(nullptr));
  int64_t live = 0;
  TB_ASSERT_OK(tb_tensor_live_count(&live));
  for (TbTensor* t : {copy, sliced, view, b.tensor}) TB_ASSERT_OK(tb_tensor_release(t));
  EXPECT_EQ(b.counter.calls.load(), 1);

  EXPECT_EQ(tbtest::last_error(), failure);
}

TEST(DataTypes, TypestrsBothWays) {
  struct Row {
    const char* typestr;
    TbDataType dtype;
    const char* name;
    int64_t size;
  };
  const Row rows[] = {
      {"|b1", TB_DTYPE_BOOL, "bool", 1},          {"|i1", TB_DTYPE_INT8, "int8", 1},
      {"<i2", TB_DTYPE_INT16, "int16", 2},        {"<i4", TB_DTYPE_INT32, "int32", 4},
      {"<i8", TB_DTYPE_INT64, "int64", 8},        {"|u1", TB_DTYPE_UINT8, "uint8", 1},
      {"<u2", TB_DTYPE_UINT16, "uint16", 2},      {"<u4", TB_DTYPE_UINT32, "uint32", 4},
      {"<u8", TB_DTYPE_UINT64, "uint64", 8},      {"<f2", TB_DTYPE_FLOAT16, "float16", 2},
      {"<V2", TB_DTYPE_BFLOAT16, "bfloat16", 2},  {"<f4", TB_DTYPE_FLOAT32, "float32", 4},
      {"<f8", TB_DTYPE_FLOAT64, "float64", 8},    {"<c8", TB_DTYPE_COMPLEX64, "complex64", 8},
      {"<c16", TB_DTYPE_COMPLEX128, "complex128", 16},
  };
  for (const Row& row : rows) {
    TbDataType parsed{};
    const char* text = nullptr;
    const char* name = nullptr;
    int64_t size = 0;
    TB_ASSERT_OK(tb_dtype_from_typestr(row.typestr, &parsed));
    EXPECT_EQ(parsed.code, row.dtype.code) << row.typestr;
    EXPECT_EQ(parsed.bits, row.dtype.bits) << row.typestr;
    TB_ASSERT_OK(tb_dtype_to_typestr(parsed, &text));
    EXPECT_STREQ(text, row.typestr);
    TB_ASSERT_OK(tb_dtype_name(parsed, &name));
    EXPECT_STREQ(name, row.name);
    TB_ASSERT_OK(tb_dtype_from_name(row.name, &parsed));
    TB_ASSERT_OK(tb_dtype_item_size(parsed, &size));
    EXPECT_EQ(size, row.size);
  }
  TbDataType out{};
  for (const char* bad : {">f4", "|O8", "<U8", "<M8[ns]", "<f3", "<f536870912"}) {
    TB_EXPECT_STATUS(TB_ERROR_NOT_SUPPORTED, tb_dtype_from_typestr(bad, &out));
  }
  const char* text = nullptr;
  TB_EXPECT_STATUS(TB_ERROR_NOT_SUPPORTED,
                   tb_dtype_to_typestr(TbDataType{TB_DTYPE_CODE_FLOAT, 32, 2}, &text));
  EXPECT_NE(tbtest::last_error().find("lanes = 2"), std::string::npos);
}

// Regression: malformed typestrs gave TB_ERROR_NOT_SUPPORTED although the header promises
// TB_ERROR_INVALID_ARGUMENT for them; a huge size overflowed `size * 8`.
TEST(DataTypes, MalformedTypestrsAreInvalidArguments) {
  struct Row {
    const char* typestr;
    TbStatus expected;
    const char* fragment;
  };
  const Row rows[] = {
      {"<", TB_ERROR_INVALID_ARGUMENT, "missing the kind character"},
      {"<z4", TB_ERROR_INVALID_ARGUMENT, "kind 'z' is not a NumPy array-interface kind"},
      {"xf4", TB_ERROR_INVALID_ARGUMENT, "byte order 'x'"},
      {"<f", TB_ERROR_INVALID_ARGUMENT, "is not a byte count"},
      {"<f99999999999", TB_ERROR_INVALID_ARGUMENT, "is not a byte count"},
      {"<f536870912", TB_ERROR_NOT_SUPPORTED, "element size 536870912 bytes is larger"},
      {"<f4294967295", TB_ERROR_NOT_SUPPORTED, "larger than any supported type"},
      {"<c4", TB_ERROR_NOT_SUPPORTED, "unsupported element size"},
  };
  for (const Row& row : rows) {
    TbDataType out{};
    TB_EXPECT_STATUS(row.expected, tb_dtype_from_typestr(row.typestr, &out));
    EXPECT_NE(tbtest::last_error().find(row.fragment), std::string::npos)
        << row.typestr << ": " << tbtest::last_error();
  }
}

TEST(Layouts, ParseFindAndRank) {
  TbLayout layout{};
  int32_t index = 0, rank = 0;
  TB_ASSERT_OK(tb_layout_parse(TB_LAYOUT_NCDHW, &layout));
  TB_ASSERT_OK(tb_layout_rank(&layout, &rank));
  TB_ASSERT_OK(tb_layout_find(&layout, 'D', &index));
  EXPECT_EQ(rank, 5);
  EXPECT_EQ(index, 2);
  TB_ASSERT_OK(tb_layout_find(&layout, 'X', &index));
  EXPECT_EQ(index, -1);
  TbLayout unterminated;
  std::memset(unterminated.labels, 'A', sizeof unterminated.labels);
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT, tb_layout_rank(&unterminated, &rank));
  EXPECT_NE(tbtest::last_error().find("not NUL-terminated"), std::string::npos);
}

}  // namespace
