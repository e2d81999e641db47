// Raw CUDA runtime + tensorbridge, as a C++ application that owns its device buffers would use
// it. Compiles against the CUDA runtime headers alone (a toolkit or the PyPI wheels); every test
// skips, printing why, when no GPU is usable.

#include "cuda_test_support.hpp"

#include <cstring>
#include <numeric>
#include <string>
#include <vector>

namespace {

using tbtest::CleanupCounter;

// Cleanup that frees device memory with the runtime and counts its calls.
struct CudaFreeCleanup {
  CleanupCounter counter;
  static void callback(void* context, void* data) {
    EXPECT_EQ(cudaSuccess, cudaFree(data));
    CleanupCounter::callback(&static_cast<CudaFreeCleanup*>(context)->counter, data);
  }
};

TEST(CudaRuntime, WrapCudaMallocNhwcImageAndRoundTripThroughThePointer) {
  SKIP_WITHOUT_GPU();
  const int64_t shape[] = {2, 64, 48, 3};  // N, H, W, C
  const size_t bytes = 2 * 64 * 48 * 3;
  void* device_ptr = nullptr;
  CUDA_OK(cudaMalloc(&device_ptr, bytes));
  int ordinal = -1;
  CUDA_OK(cudaGetDevice(&ordinal));

  CudaFreeCleanup cleanup;
  TbTensor* t = nullptr;
  TB_ASSERT_OK(tb_tensor_wrap(device_ptr, TbDevice{TB_DEVICE_CUDA, ordinal}, TB_DTYPE_UINT8, 4,
                              shape, nullptr, TB_LAYOUT_NHWC, false, &CudaFreeCleanup::callback,
                              &cleanup, &t));

  TbTensorInfo info{};
  TB_ASSERT_OK(tb_tensor_info(t, &info));
  EXPECT_EQ(info.data, device_ptr);
  EXPECT_EQ(info.device.device_type, TB_DEVICE_CUDA);
  EXPECT_EQ(info.device.device_id, ordinal);
  EXPECT_EQ(info.dtype.code, TB_DTYPE_CODE_UINT);
  EXPECT_EQ(info.dtype.bits, 8);
  EXPECT_EQ(info.rank, 4);
  EXPECT_EQ(std::vector<int64_t>(info.shape, info.shape + 4),
            (std::vector<int64_t>{2, 64, 48, 3}));
  EXPECT_EQ(std::vector<int64_t>(info.strides, info.strides + 4),
            (std::vector<int64_t>{64 * 48 * 3, 48 * 3, 3, 1}));
  EXPECT_STREQ(info.layout.labels, "NHWC");
  EXPECT_FALSE(info.readonly);
  EXPECT_TRUE(info.contiguous);
  EXPECT_EQ(info.element_count, static_cast<int64_t>(bytes));
  EXPECT_EQ(info.nbytes, static_cast<int64_t>(bytes));

  // Data in and out through the tensor's pointer; a batch-element view addresses image 1.
  std::vector<uint8_t> in(bytes), out(bytes, 0);
  std::iota(in.begin(), in.end(), 0);
  void* data = nullptr;
  TB_ASSERT_OK(tb_tensor_data(t, &data));
  CUDA_OK(cudaMemcpy(data, in.data(), bytes, cudaMemcpyHostToDevice));
  TbTensor* second = nullptr;
  TB_ASSERT_OK(tb_tensor_select(t, 0, 1, &second));
  void* second_data = nullptr;
  TB_ASSERT_OK(tb_tensor_data(second, &second_data));
  std::vector<uint8_t> image(bytes / 2);
  CUDA_OK(cudaMemcpy(image.data(), second_data, bytes / 2, cudaMemcpyDeviceToHost));
  EXPECT_TRUE(std::equal(image.begin(), image.end(), in.begin() + bytes / 2));
  CUDA_OK(cudaMemcpy(out.data(), data, bytes, cudaMemcpyDeviceToHost));
  EXPECT_EQ(in, out);

  TB_ASSERT_OK(tb_tensor_release(t));
  EXPECT_EQ(cleanup.counter.calls.load(), 0) << "the view still holds the memory";
  TB_ASSERT_OK(tb_tensor_release(second));
  EXPECT_EQ(cleanup.counter.calls.load(), 1) << "cudaFree cleanup must run exactly once";
  EXPECT_EQ(cleanup.counter.last_data, device_ptr);
}

TEST(CudaRuntime, AllocateEveryCudaKindAndTouchIt) {
  SKIP_WITHOUT_GPU();
  int32_t count = 0;
  TB_ASSERT_OK(tb_cuda_device_count(&count));
  EXPECT_GE(count, 1);
  const int64_t shape[] = {3, 100, 7};
  for (int32_t kind : {TB_DEVICE_CUDA, TB_DEVICE_CUDA_HOST, TB_DEVICE_CUDA_MANAGED}) {
    TbTensor* t = nullptr;
    TB_ASSERT_OK(tb_tensor_alloc(TbDevice{kind, 0}, TB_DTYPE_FLOAT32, 3, shape, "HWC", 256, &t));
    TbTensorInfo info{};
    TB_ASSERT_OK(tb_tensor_info(t, &info));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(info.data) % 256, 0u) << kind;
    EXPECT_EQ(info.strides[0], 2816) << "100 * 7 * 4 = 2800 bytes padded to a multiple of 256";
    cudaPointerAttributes attributes{};
    CUDA_OK(cudaPointerGetAttributes(&attributes, info.data));
    const cudaMemoryType expected = kind == TB_DEVICE_CUDA        ? cudaMemoryTypeDevice
                                    : kind == TB_DEVICE_CUDA_HOST ? cudaMemoryTypeHost
                                                                  : cudaMemoryTypeManaged;
    EXPECT_EQ(attributes.type, expected) << "kind " << kind;
    CUDA_OK(cudaMemset(info.data, 0x5a, 3 * 2816));
    uint8_t probe = 0;
    CUDA_OK(cudaMemcpy(&probe, static_cast<uint8_t*>(info.data) + 3 * 2816 - 1, 1,
                       cudaMemcpyDefault));
    EXPECT_EQ(probe, 0x5a);
    TB_ASSERT_OK(tb_tensor_release(t));
  }
}

TEST(CudaRuntime, CallerCurrentDeviceIsUnchanged) {
  SKIP_WITHOUT_GPU();
  int before = -1, after = -2;
  CUDA_OK(cudaGetDevice(&before));
  const int64_t shape[] = {16};
  TbTensor* t = nullptr;
  TB_ASSERT_OK(tb_tensor_alloc(TbDevice{TB_DEVICE_CUDA, 0}, TB_DTYPE_UINT8, 1, shape, nullptr, 0, &t));
  TB_ASSERT_OK(tb_tensor_release(t));
  CUDA_OK(cudaGetDevice(&after));
  EXPECT_EQ(before, after);
  CUDA_OK(cudaDeviceSynchronize());
}

TEST(CudaRuntime, NonexistentOrdinalIsAClearError) {
  SKIP_WITHOUT_GPU();
  int devices = 0;
  CUDA_OK(cudaGetDeviceCount(&devices));
  const int64_t shape[] = {16};
  TbTensor* t = nullptr;
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT,
                   tb_tensor_alloc(TbDevice{TB_DEVICE_CUDA, devices}, TB_DTYPE_UINT8, 1, shape,
                                   nullptr, 0, &t));
  EXPECT_NE(tbtest::last_error().find("does not exist"), std::string::npos);
}

// A C++ NVDEC application: an NV12 frame in pitched device memory (cudaMallocPitch, as the
// decoder's output surfaces are), wrapped as one (3H/2, W) tensor with its pitch and as two
// planes, converted on the application's stream to normalised float32 NCHW; the same bytes as the
// CPU path gives for a host copy of the frame.
TEST(CudaRuntime, PitchedNv12FrameConvertsOnTheCallersStreamToTheCpuBytes) {
  SKIP_WITHOUT_GPU();
  const int64_t height = 36, width = 100, rows = height * 3 / 2;
  std::vector<uint8_t> host(static_cast<size_t>(rows * width));
  for (size_t i = 0; i < host.size(); ++i) host[i] = static_cast<uint8_t>((i * 2654435761u) >> 24);
  void* frame = nullptr;
  size_t pitch = 0;
  CUDA_OK(cudaMallocPitch(&frame, &pitch, width, rows));
  CUDA_OK(cudaMemcpy2D(frame, pitch, host.data(), width, width, rows, cudaMemcpyHostToDevice));
  cudaStream_t stream = nullptr;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));

  const int64_t one_shape[] = {rows, width}, one_strides[] = {static_cast<int64_t>(pitch), 1};
  const int64_t y_shape[] = {height, width}, uv_shape[] = {height / 2, width / 2, 2};
  const int64_t uv_strides[] = {static_cast<int64_t>(pitch), 2, 1};
  TbTensor *whole = nullptr, *luma = nullptr, *chroma = nullptr, *packed = nullptr;
  const TbDevice gpu{TB_DEVICE_CUDA, 0};
  TB_ASSERT_OK(tb_tensor_wrap(frame, gpu, TB_DTYPE_UINT8, 2, one_shape, one_strides, nullptr, false,
                              nullptr, nullptr, &whole));
  TB_ASSERT_OK(tb_tensor_wrap(frame, gpu, TB_DTYPE_UINT8, 2, y_shape, one_strides, nullptr, false,
                              nullptr, nullptr, &luma));
  TB_ASSERT_OK(tb_tensor_wrap(static_cast<uint8_t*>(frame) + height * pitch, gpu, TB_DTYPE_UINT8, 3,
                              uv_shape, uv_strides, nullptr, false, nullptr, nullptr, &chroma));
  TB_ASSERT_OK(tb_tensor_wrap(host.data(), TbDevice{TB_DEVICE_CPU, 0}, TB_DTYPE_UINT8, 2, one_shape,
                              nullptr, nullptr, false, nullptr, nullptr, &packed));

  const TbFrameFormat format{TB_PIXEL_NV12, TB_COLOR_BT709, TB_RANGE_LIMITED, false};
  const float scale[] = {1 / (255 * 0.229f), 1 / (255 * 0.224f), 1 / (255 * 0.225f)};
  const float offset[] = {-0.485f / 0.229f, -0.456f / 0.224f, -0.406f / 0.225f};
  TbTensor *expected = nullptr, *from_whole = nullptr, *from_planes = nullptr;
  const TbTensor* cpu_frame[] = {packed};
  TB_ASSERT_OK(tb_frame_convert_new(cpu_frame, 1, &format, "CHW", TB_DTYPE_FLOAT32, scale, offset, 3,
                                    nullptr, &expected));
  const TbTensor* one[] = {whole};
  const TbTensor* two[] = {luma, chroma};
  TB_ASSERT_OK(tb_frame_convert_new(one, 1, &format, "CHW", TB_DTYPE_FLOAT32, scale, offset, 3, stream,
                                    &from_whole));
  TB_ASSERT_OK(tb_frame_convert_new(two, 2, &format, "CHW", TB_DTYPE_FLOAT32, scale, offset, 3, stream,
                                    &from_planes));
  const size_t out_bytes = static_cast<size_t>(3 * height * width) * sizeof(float);
  std::vector<uint8_t> want(out_bytes), got_whole(out_bytes), got_planes(out_bytes);
  std::memcpy(want.data(), tbtest::data_of(expected), out_bytes);
  CUDA_OK(cudaMemcpyAsync(got_whole.data(), tbtest::data_of(from_whole), out_bytes, cudaMemcpyDeviceToHost,
                          stream));
  CUDA_OK(cudaMemcpyAsync(got_planes.data(), tbtest::data_of(from_planes), out_bytes, cudaMemcpyDeviceToHost,
                          stream));
  CUDA_OK(cudaStreamSynchronize(stream));
  EXPECT_EQ(want, got_whole);
  EXPECT_EQ(want, got_planes);

  // A chroma plane that does not match the luma: a clear status, nothing enqueued.
  const int64_t bad_shape[] = {height / 2, width / 2 - 1, 2};
  TbTensor* bad = nullptr;
  TB_ASSERT_OK(tb_tensor_wrap(static_cast<uint8_t*>(frame) + height * pitch, gpu, TB_DTYPE_UINT8, 3,
                              bad_shape, uv_strides, nullptr, false, nullptr, nullptr, &bad));
  const TbTensor* mismatched[] = {luma, bad};
  TbTensor* never = nullptr;
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT,
                   tb_frame_convert_new(mismatched, 2, &format, "CHW", TB_DTYPE_FLOAT32, nullptr, nullptr, 0,
                                        stream, &never));
  EXPECT_EQ(never, nullptr);
  EXPECT_NE(tbtest::last_error().find("does not match a 36×100 luma plane"), std::string::npos)
      << tbtest::last_error();

  for (TbTensor* t : {whole, luma, chroma, packed, expected, from_whole, from_planes, bad}) {
    TB_ASSERT_OK(tb_tensor_release(t));
  }
  CUDA_OK(cudaStreamDestroy(stream));
  CUDA_OK(cudaFree(frame));
}

}  // namespace
