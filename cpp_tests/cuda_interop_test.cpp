// Descriptors over real CUDA memory, driven by the raw CUDA runtime. Skips, printing why, where
// no GPU is usable.

#include "cuda_test_support.hpp"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

namespace {

using tbtest::CleanupCounter;

using tbtest::info_of;

// Cleanup that frees device memory and counts its calls (context: a CleanupCounter).
void free_device(void* counter, void* data) {
  EXPECT_EQ(cudaSuccess, cudaFree(data));
  CleanupCounter::callback(counter, data);
}

TEST(CudaInterop, CaiToTensorToVersionedDlpackToTensorToCai) {
  SKIP_WITHOUT_GPU();
  void* buffer = nullptr;
  CUDA_OK(cudaMalloc(&buffer, 64 * 48 * 3 * sizeof(float)));
  CleanupCounter keep_alive;
  TbArrayInterface in = tbtest::array_interface(buffer, "<f4", {64, 48, 3});
  TbTensor* first = nullptr;
  TB_ASSERT_OK(tb_tensor_from_cuda_array_interface(&in, "HWC", &CleanupCounter::callback,
                                                   &keep_alive, &first));
  EXPECT_EQ(info_of(first).device.device_type, TB_DEVICE_CUDA);

  TbDLManagedTensorVersioned* exported = nullptr;
  TB_ASSERT_OK(tb_tensor_to_dlpack_versioned(first, &exported));
  EXPECT_EQ(exported->dl_tensor.device.device_type, TB_DEVICE_CUDA);
  TbTensor* second = nullptr;
  TB_ASSERT_OK(tb_tensor_from_dlpack_versioned(exported, "HWC", &second));
  TB_ASSERT_OK(tb_tensor_release(first));

  TbArrayInterface out{};
  TB_ASSERT_OK(tb_tensor_to_cuda_array_interface(second, &out));
  EXPECT_EQ(out.version, 3);
  EXPECT_EQ(out.data, buffer);
  EXPECT_STREQ(out.typestr, "<f4");
  EXPECT_EQ(out.rank, 3);
  EXPECT_EQ(std::vector<int64_t>(out.shape, out.shape + 3), (std::vector<int64_t>{64, 48, 3}));
  EXPECT_FALSE(out.has_strides);
  EXPECT_FALSE(out.has_stream);
  EXPECT_FALSE(out.readonly);
  EXPECT_EQ(keep_alive.calls.load(), 0);
  TB_ASSERT_OK(tb_tensor_release(second));
  EXPECT_EQ(keep_alive.calls.load(), 1) << "every cleanup and deleter ends at exactly 1";
  CUDA_OK(cudaFree(buffer));
}

TEST(CudaInterop, ProducerSideStreamIsOrderedBeforeTheConsumerWithoutHostSync) {
  SKIP_WITHOUT_GPU();
  const size_t big = size_t(1) << 30;  // slow work queued ahead of the write we check
  const size_t n = 1 << 20;
  void* slow = nullptr;
  void* target = nullptr;
  CUDA_OK(cudaMalloc(&slow, big));
  CUDA_OK(cudaMalloc(&target, n));
  CUDA_OK(cudaMemset(target, 0, n));
  CUDA_OK(cudaDeviceSynchronize());
  cudaStream_t producer = nullptr, consumer = nullptr;
  CUDA_OK(cudaStreamCreateWithFlags(&producer, cudaStreamNonBlocking));
  CUDA_OK(cudaStreamCreateWithFlags(&consumer, cudaStreamNonBlocking));

  for (int i = 0; i < 8; ++i) CUDA_OK(cudaMemsetAsync(slow, i, big, producer));
  CUDA_OK(cudaMemsetAsync(target, 0xAB, n, producer));
  TbArrayInterface in = tbtest::array_interface(target, "|u1", {static_cast<int64_t>(n)});
  in.has_stream = true;
  in.stream = reinterpret_cast<uint64_t>(producer);
  TbTensor* t = nullptr;
  TB_ASSERT_OK(tb_tensor_from_cuda_array_interface(&in, nullptr, nullptr, nullptr, &t));

  TbArrayInterface described{};
  TB_ASSERT_OK(tb_tensor_to_cuda_array_interface(t, &described));
  EXPECT_TRUE(described.has_stream);
  EXPECT_EQ(described.stream, reinterpret_cast<uint64_t>(producer)) << "pending work is named";

  TB_ASSERT_OK(tb_tensor_sync(t, consumer));  // no host synchronization in between
  std::vector<uint8_t> host(n, 0);
  CUDA_OK(cudaMemcpyAsync(host.data(), target, n, cudaMemcpyDeviceToHost, consumer));
  CUDA_OK(cudaStreamSynchronize(consumer));
  EXPECT_EQ(host.front(), 0xAB);
  EXPECT_EQ(host.back(), 0xAB);
  EXPECT_EQ(std::count(host.begin(), host.end(), 0xAB), static_cast<long>(n));

  TB_ASSERT_OK(tb_tensor_to_cuda_array_interface(t, &described));
  EXPECT_EQ(described.stream, reinterpret_cast<uint64_t>(consumer)) << "the consumer is now last";
  TB_ASSERT_OK(tb_tensor_release(t));
  CUDA_OK(cudaStreamDestroy(producer));
  CUDA_OK(cudaStreamDestroy(consumer));
  CUDA_OK(cudaFree(slow));
  CUDA_OK(cudaFree(target));
}

TEST(CudaInterop, PinnedAndManagedMemoryReportTheirKinds) {
  SKIP_WITHOUT_GPU();
  void* pinned = nullptr;
  void* managed = nullptr;
  CUDA_OK(cudaMallocHost(&pinned, 4096));
  CUDA_OK(cudaMallocManaged(&managed, 4096));
  int ordinal = 0;
  CUDA_OK(cudaGetDevice(&ordinal));
  struct Row {
    void* data;
    int32_t kind;
  } rows[] = {{pinned, TB_DEVICE_CUDA_HOST}, {managed, TB_DEVICE_CUDA_MANAGED}};
  for (const Row& row : rows) {
    TbArrayInterface in = tbtest::array_interface(row.data, "<i4", {1024});
    TbTensor* t = nullptr;
    TB_ASSERT_OK(tb_tensor_from_cuda_array_interface(&in, nullptr, nullptr, nullptr, &t));
    TbTensorInfo info = info_of(t);
    EXPECT_EQ(info.device.device_type, row.kind);
    if (row.kind == TB_DEVICE_CUDA_MANAGED) {
      EXPECT_EQ(info.device.device_id, ordinal);
    }
    TbArrayInterface host{};
    TB_EXPECT_STATUS(TB_SUCCESS, tb_tensor_to_array_interface(t, &host));  // host-accessible
    TbDLManagedTensorVersioned* dl = nullptr;
    TB_ASSERT_OK(tb_tensor_to_dlpack_versioned(t, &dl));
    EXPECT_EQ(dl->dl_tensor.device.device_type, row.kind);
    dl->deleter(dl);
    TB_ASSERT_OK(tb_tensor_release(t));
  }
  CUDA_OK(cudaFreeHost(pinned));
  CUDA_OK(cudaFree(managed));
}

TEST(CudaInterop, HostPointerDescribedAsCudaMemoryIsRefused) {
  SKIP_WITHOUT_GPU();
  std::vector<float> host(16);
  TbArrayInterface in = tbtest::array_interface(host.data(), "<f4", {16});
  TbTensor* t = nullptr;
  CleanupCounter cleanup;
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT,
                   tb_tensor_from_cuda_array_interface(&in, nullptr, &CleanupCounter::callback, &cleanup, &t));
  EXPECT_NE(tbtest::last_error().find("is not CUDA memory"), std::string::npos);
  EXPECT_EQ(t, nullptr);
  EXPECT_EQ(cleanup.calls.load(), 0) << "a failed import must not run the cleanup";
}

TEST(CudaInterop, ReadOnlyRoundTrip) {
  SKIP_WITHOUT_GPU();
  void* buffer = nullptr;
  CUDA_OK(cudaMalloc(&buffer, 1024));
  TbArrayInterface in = tbtest::array_interface(buffer, "<f2", {512});
  in.readonly = true;
  TbTensor* t = nullptr;
  CleanupCounter cleanup;
  TB_ASSERT_OK(tb_tensor_from_cuda_array_interface(&in, nullptr, &CleanupCounter::callback, &cleanup, &t));
  TbDLManagedTensorVersioned* dl = nullptr;
  TB_ASSERT_OK(tb_tensor_to_dlpack_versioned(t, &dl));
  EXPECT_TRUE(dl->flags & TB_DLPACK_FLAG_READ_ONLY);
  TbTensor* back = nullptr;
  TB_ASSERT_OK(tb_tensor_from_dlpack_versioned(dl, nullptr, &back));
  TbArrayInterface out{};
  TB_ASSERT_OK(tb_tensor_to_cuda_array_interface(back, &out));
  EXPECT_TRUE(out.readonly);
  EXPECT_STREQ(out.typestr, "<f2");
  TB_ASSERT_OK(tb_tensor_release(t));
  EXPECT_EQ(cleanup.calls.load(), 0) << "the re-imported DLPack export still holds the memory";
  TB_ASSERT_OK(tb_tensor_release(back));
  EXPECT_EQ(cleanup.calls.load(), 1) << "the cleanup runs once, after the last reference";
  CUDA_OK(cudaFree(buffer));
}

TEST(CudaInterop, ZeroSizeNegativeStridesAndPaddedRows) {
  SKIP_WITHOUT_GPU();
  size_t pitch = 0;
  void* image = nullptr;
  CUDA_OK(cudaMallocPitch(&image, &pitch, 100 * 3, 20));  // 20 rows of 100 RGB pixels
  ASSERT_GT(pitch, 300u);
  struct Case {
    void* data;
    const char* typestr;
    std::vector<int64_t> shape, strides;
    std::vector<int64_t> dl_strides;  // expected DLPack strides, in elements
  } cases[] = {
      {nullptr, "<f4", {0, 5}, {}, {5, 1}},
      {static_cast<char*>(image) + 4 * 4, "<f4", {5}, {-4}, {-1}},
      {image, "|u1", {20, 100, 3}, {static_cast<int64_t>(pitch), 3, 1},
       {static_cast<int64_t>(pitch), 3, 1}},
  };
  for (const Case& c : cases) {
    TbArrayInterface in = tbtest::array_interface(c.data, c.typestr, c.shape, c.strides);
    TbTensor* t = nullptr;
    TB_ASSERT_OK(tb_tensor_from_cuda_array_interface(&in, nullptr, nullptr, nullptr, &t));
    TbDLManagedTensor* dl = nullptr;
    TB_ASSERT_OK(tb_tensor_to_dlpack(t, &dl));
    EXPECT_EQ(std::vector<int64_t>(dl->dl_tensor.strides, dl->dl_tensor.strides + in.rank),
              c.dl_strides);
    TbTensor* back = nullptr;
    TB_ASSERT_OK(tb_tensor_from_dlpack(dl, nullptr, &back));
    TbArrayInterface out{};
    TB_ASSERT_OK(tb_tensor_to_cuda_array_interface(back, &out));
    EXPECT_EQ(out.data, c.data);
    EXPECT_EQ(out.has_strides, !c.strides.empty());
    for (size_t i = 0; i < c.strides.size(); ++i) EXPECT_EQ(out.strides[i], c.strides[i]);
    TB_ASSERT_OK(tb_tensor_release(t));
    TB_ASSERT_OK(tb_tensor_release(back));
  }
  CUDA_OK(cudaFree(image));
}

TEST(CudaInterop, WrapWithCudaFreeCleanupExportsToDlpack) {
  SKIP_WITHOUT_GPU();
  void* buffer = nullptr;
  CUDA_OK(cudaMalloc(&buffer, 256));
  const int64_t shape[] = {64};
  TbTensor* t = nullptr;
  CleanupCounter freed;
  TB_ASSERT_OK(tb_tensor_wrap(buffer, TbDevice{TB_DEVICE_CUDA, 0}, TB_DTYPE_FLOAT32, 1, shape,
                              nullptr, nullptr, false, &free_device, &freed, &t));
  TbDLManagedTensor* dl = nullptr;
  TB_ASSERT_OK(tb_tensor_to_dlpack(t, &dl));
  TB_ASSERT_OK(tb_tensor_release(t));
  EXPECT_EQ(freed.calls.load(), 0) << "the DLPack export still holds the memory";
  cudaPointerAttributes attributes{};
  CUDA_OK(cudaPointerGetAttributes(&attributes, buffer));  // still allocated: DLPack holds it
  EXPECT_EQ(attributes.type, cudaMemoryTypeDevice);
  dl->deleter(dl);
  EXPECT_EQ(freed.calls.load(), 1) << "the deleter ends the last reference: cudaFree runs once";
  EXPECT_EQ(freed.last_data, buffer);
}

}  // namespace
