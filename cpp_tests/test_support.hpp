// Helpers shared by the C++ tests: status assertions and a cleanup counter.
#pragma once

#include <gtest/gtest.h>
#include <tensorbridge.h>

#include <atomic>
#include <cstring>
#include <string>
#include <vector>

// Asserts that `call` returned `expected`; on mismatch prints the library's last message.
#define TB_EXPECT_STATUS(expected, call)                                                   \
  do {                                                                                     \
    TbStatus tb_status_ = (call);                                                          \
    EXPECT_EQ(tb_status_, (expected))                                                      \
        << tb_status_name(tb_status_) << ": " << tb_last_error_message();                  \
  } while (0)

#define TB_ASSERT_OK(call) ASSERT_EQ(TB_SUCCESS, (call)) << tb_last_error_message()

namespace tbtest {

// Counts cleanup calls; pass `&counter` as the cleanup context of tb_tensor_wrap.
struct CleanupCounter {
  std::atomic<int> calls{0};
  void* last_data = nullptr;

  static void callback(void* context, void* data) {
    auto* self = static_cast<CleanupCounter*>(context);
    self->last_data = data;
    self->calls.fetch_add(1);
  }
};

inline std::string last_error() { return tb_last_error_message(); }

inline TbDevice cpu() { return TbDevice{TB_DEVICE_CPU, 0}; }
inline TbDevice cuda(int32_t ordinal) { return TbDevice{TB_DEVICE_CUDA, ordinal}; }

// An owning tensor handle: released when it goes out of scope, or earlier with reset().
struct Owned {
  TbTensor* t = nullptr;
  Owned() = default;
  explicit Owned(TbTensor* tensor) : t(tensor) {}
  Owned(const Owned&) = delete;
  Owned& operator=(const Owned&) = delete;
  ~Owned() { reset(); }
  void reset() {
    tb_tensor_release(t);
    t = nullptr;
  }
};

// The address of a tensor's element (0, …, 0).
inline void* data_of(const TbTensor* t) {
  void* data = nullptr;
  EXPECT_EQ(TB_SUCCESS, tb_tensor_data(t, &data)) << tb_last_error_message();
  return data;
}

// Everything `tb_tensor_info` reports about a tensor.
inline TbTensorInfo info_of(const TbTensor* t) {
  TbTensorInfo info{};
  EXPECT_EQ(TB_SUCCESS, tb_tensor_info(t, &info)) << tb_last_error_message();
  return info;
}

// A new tensor from `tb_tensor_alloc` (one reference, for the caller to release); NULL, with a
// test failure naming the error, when the allocation fails.
inline TbTensor* alloc(TbDevice device, TbDataType dtype, const std::vector<int64_t>& shape,
                       const char* layout, int64_t row_alignment = 0) {
  TbTensor* t = nullptr;
  EXPECT_EQ(TB_SUCCESS, tb_tensor_alloc(device, dtype, static_cast<int32_t>(shape.size()), shape.data(),
                                        layout, row_alignment, &t))
      << tb_last_error_message();
  return t;
}

// Number of live tensor handles, for leak checks.
inline int64_t live_tensors() {
  int64_t count = -1;
  EXPECT_EQ(TB_SUCCESS, tb_tensor_live_count(&count));
  return count;
}

/// A version-3 array-interface descriptor (CUDA Array Interface or NumPy): `strides` empty means
/// absent (C-contiguous).
inline TbArrayInterface array_interface(void* data, const char* typestr, std::vector<int64_t> shape,
                                        std::vector<int64_t> strides = {}) {
  TbArrayInterface d{};
  d.version = 3;
  d.data = data;
  std::strncpy(d.typestr, typestr, sizeof d.typestr - 1);
  d.rank = static_cast<int32_t>(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) d.shape[i] = shape[i];
  d.has_strides = !strides.empty();
  for (size_t i = 0; i < strides.size(); ++i) d.strides[i] = strides[i];
  return d;
}

}  // namespace tbtest
