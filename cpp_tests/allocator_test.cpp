// Installed allocators on the host (TB_DEVICE_CPU), where no GPU is needed: every allocation of
// that kind goes through the application's callbacks exactly once, failures come through with
// their status and message, and NULL restores the built-in allocator. Each test runs in its own
// process (CTest), so an installed allocator cannot leak into another test.

#include "test_support.hpp"

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <set>
#include <string>

namespace {

// An allocator that records what it was asked and gives aligned host memory.
struct RecordingAllocator {
  std::mutex lock;
  int allocations = 0;
  int frees = 0;
  int64_t last_bytes = 0;
  int64_t last_alignment = 0;
  TbDevice last_device{};
  void* last_stream = reinterpret_cast<void*>(0x1);
  std::set<void*> live;
  bool misalign = false;

  static int32_t allocate(void* context, int64_t bytes, int64_t alignment, TbDevice device,
                          void* stream, void** out, char*, size_t) {
    auto* self = static_cast<RecordingAllocator*>(context);
    std::lock_guard<std::mutex> guard(self->lock);
    size_t rounded = (static_cast<size_t>(bytes) + alignment - 1) / alignment * alignment;
    void* memory = std::aligned_alloc(static_cast<size_t>(alignment), rounded + alignment);
    if (memory == nullptr) return TB_ERROR_OUT_OF_MEMORY;
    ++self->allocations;
    self->last_bytes = bytes;
    self->last_alignment = alignment;
    self->last_device = device;
    self->last_stream = stream;
    self->live.insert(memory);
    *out = self->misalign ? static_cast<char*>(memory) + 1 : memory;
    return TB_SUCCESS;
  }

  static void release(void* context, void* data, int64_t bytes, TbDevice device, void* stream) {
    auto* self = static_cast<RecordingAllocator*>(context);
    std::lock_guard<std::mutex> guard(self->lock);
    ++self->frees;
    EXPECT_EQ(bytes, self->last_bytes);
    EXPECT_EQ(device.device_type, TB_DEVICE_CPU);
    EXPECT_EQ(stream, nullptr) << "host memory has no GPU work to order the free after";
    void* base = self->misalign ? static_cast<char*>(data) - 1 : data;
    EXPECT_EQ(self->live.erase(base), 1u) << "freed memory this allocator did not hand out";
    std::free(base);
  }

  TbAllocator c_allocator() { return TbAllocator{this, &allocate, &release}; }
};

int32_t refuse(void*, int64_t bytes, int64_t, TbDevice, void*, void**, char* message,
               size_t capacity) {
  std::snprintf(message, capacity, "pool exhausted after %lld bytes",
                static_cast<long long>(bytes));
  return TB_ERROR_OUT_OF_MEMORY;
}

void never_free(void*, void*, int64_t, TbDevice, void*) { ADD_FAILURE() << "nothing to free"; }

TbTensor* alloc_image(TbStatus expected = TB_SUCCESS) {
  const int64_t shape[] = {4, 6, 3};
  TbTensor* t = nullptr;
  TB_EXPECT_STATUS(expected, tb_tensor_alloc(tbtest::cpu(), TB_DTYPE_FLOAT32, 3, shape,
                                             TB_LAYOUT_HWC, 0, &t));
  return t;
}

TEST(Allocator, InstalledHostAllocatorIsCalledOncePerAllocationAndFree) {
  RecordingAllocator recorder;
  TbAllocator allocator = recorder.c_allocator();
  TB_ASSERT_OK(tb_allocator_set(TB_DEVICE_CPU, &allocator));

  TbTensor* image = alloc_image();
  ASSERT_NE(image, nullptr);
  EXPECT_EQ(recorder.allocations, 1);
  EXPECT_EQ(recorder.last_bytes, 4 * 6 * 3 * 4);
  EXPECT_EQ(recorder.last_alignment, TB_HOST_ALIGNMENT);
  EXPECT_EQ(recorder.last_device.device_type, TB_DEVICE_CPU);
  EXPECT_EQ(recorder.last_stream, nullptr);
  void* data = nullptr;
  TB_ASSERT_OK(tb_tensor_data(image, &data));
  EXPECT_EQ(recorder.live.count(data), 1u);

  // A clone allocates through the same allocator; views do not allocate.
  TbTensor* planar = nullptr;
  TB_ASSERT_OK(tb_tensor_permute(image, TB_LAYOUT_CHW, &planar));
  TbTensor* packed = nullptr;
  TB_ASSERT_OK(tb_tensor_clone(planar, nullptr, &packed));
  EXPECT_EQ(recorder.allocations, 2);

  TB_ASSERT_OK(tb_tensor_release(image));
  EXPECT_EQ(recorder.frees, 0) << "the view still holds the memory";
  TB_ASSERT_OK(tb_tensor_release(planar));
  EXPECT_EQ(recorder.frees, 1);
  TB_ASSERT_OK(tb_tensor_release(packed));
  EXPECT_EQ(recorder.frees, 2);
  EXPECT_TRUE(recorder.live.empty());
  TB_ASSERT_OK(tb_allocator_set(TB_DEVICE_CPU, nullptr));
}

TEST(Allocator, GetReportsTheInstalledAllocatorAndNullRestoresTheBuiltIn) {
  RecordingAllocator recorder;
  TbAllocator allocator = recorder.c_allocator();
  TbAllocator reported{};
  bool installed = true;
  TB_ASSERT_OK(tb_allocator_get(TB_DEVICE_CPU, &reported, &installed));
  EXPECT_FALSE(installed);
  EXPECT_EQ(reported.allocate, nullptr);

  TB_ASSERT_OK(tb_allocator_set(TB_DEVICE_CPU, &allocator));
  TB_ASSERT_OK(tb_allocator_get(TB_DEVICE_CPU, &reported, &installed));
  EXPECT_TRUE(installed);
  EXPECT_EQ(reported.context, &recorder);
  EXPECT_EQ(reported.allocate, &RecordingAllocator::allocate);
  EXPECT_EQ(reported.free, &RecordingAllocator::release);
  TbAllocator other{};
  TB_ASSERT_OK(tb_allocator_get(TB_DEVICE_CUDA, &other, &installed));
  EXPECT_FALSE(installed) << "installing for one kind leaves the others alone";

  TbTensor* made_by_recorder = alloc_image();
  TB_ASSERT_OK(tb_allocator_set(TB_DEVICE_CPU, nullptr));
  TbTensor* built_in = alloc_image();
  EXPECT_EQ(recorder.allocations, 1) << "NULL restores the built-in allocator";
  TB_ASSERT_OK(tb_tensor_release(made_by_recorder));
  EXPECT_EQ(recorder.frees, 1) << "memory goes back to the allocator that made it";
  TB_ASSERT_OK(tb_tensor_release(built_in));
  EXPECT_EQ(recorder.frees, 1);
}

TEST(Allocator, AFailingAllocatorsStatusAndMessageComeThrough) {
  TbAllocator failing{nullptr, &refuse, &never_free};
  TB_ASSERT_OK(tb_allocator_set(TB_DEVICE_CPU, &failing));
  int64_t before = tbtest::live_tensors();
  TbTensor* t = alloc_image(TB_ERROR_OUT_OF_MEMORY);
  EXPECT_EQ(t, nullptr);
  std::string message = tbtest::last_error();
  EXPECT_NE(message.find("tb_tensor_alloc"), std::string::npos) << message;
  EXPECT_NE(message.find("288 bytes on cpu:0"), std::string::npos) << message;
  EXPECT_NE(message.find("pool exhausted after 288 bytes"), std::string::npos) << message;
  EXPECT_EQ(tbtest::live_tensors(), before);
  TB_ASSERT_OK(tb_allocator_set(TB_DEVICE_CPU, nullptr));
}

TEST(Allocator, AMisalignedPointerIsRefusedAndGivenBack) {
  RecordingAllocator recorder;
  recorder.misalign = true;
  TbAllocator allocator = recorder.c_allocator();
  TB_ASSERT_OK(tb_allocator_set(TB_DEVICE_CPU, &allocator));
  TbTensor* t = alloc_image(TB_ERROR_INTERNAL);
  EXPECT_EQ(t, nullptr);
  EXPECT_NE(tbtest::last_error().find("not a multiple of the alignment 64"), std::string::npos)
      << tbtest::last_error();
  EXPECT_EQ(recorder.allocations, 1);
  EXPECT_EQ(recorder.frees, 1) << "the refused memory goes back exactly once";
  TB_ASSERT_OK(tb_allocator_set(TB_DEVICE_CPU, nullptr));
}

TEST(Allocator, SetRejectsBadArguments) {
  TbAllocator no_free{nullptr, &refuse, nullptr};
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT, tb_allocator_set(TB_DEVICE_CPU, &no_free));
  EXPECT_NE(tbtest::last_error().find("may not be NULL"), std::string::npos);
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT, tb_allocator_set(99, nullptr));
  TB_EXPECT_STATUS(TB_ERROR_NOT_SUPPORTED, tb_allocator_set(4, nullptr));  // OpenCL
  TbAllocator out{};
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT, tb_allocator_get(TB_DEVICE_CPU, &out, nullptr));
}

}  // namespace
