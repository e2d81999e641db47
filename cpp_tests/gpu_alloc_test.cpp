// Allocation on the GPU: stream-ordered pool memory that never makes the host wait for other
// streams, frees ordered after every stream the memory was used on, installed CUDA allocators
// given the right stream, and clear out-of-memory errors. Streams are kept busy with a host
// function that sleeps (cudaLaunchHostFunc), so no kernel needs compiling. Skips without a GPU.

#include "cuda_test_support.hpp"

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

void CUDART_CB sleep_on_stream(void* milliseconds) {
  std::this_thread::sleep_for(std::chrono::milliseconds(reinterpret_cast<intptr_t>(milliseconds)));
}

/// Keeps `stream` busy for `ms` milliseconds from now.
void occupy(cudaStream_t stream, intptr_t ms) {
  ASSERT_EQ(cudaSuccess, cudaLaunchHostFunc(stream, sleep_on_stream, reinterpret_cast<void*>(ms)));
}

double elapsed_ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

TbTensor* alloc_on(cudaStream_t stream, int64_t elements) {
  const int64_t shape[] = {elements};
  TbTensor* t = nullptr;
  EXPECT_EQ(TB_SUCCESS, tb_tensor_alloc_async(tbtest::cuda(0), TB_DTYPE_UINT32, 1, shape, nullptr,
                                              0, stream, &t))
      << tb_last_error_message();
  return t;
}

using tbtest::data_of;

uint64_t pool_used() {
  uint64_t bytes = 0;
  EXPECT_EQ(TB_SUCCESS, tb_cuda_pool_used_bytes(0, &bytes)) << tb_last_error_message();
  return bytes;
}

/// Runs one reformat so that the kernel is compiled and loaded and the pool is open: loading a
/// module may wait for the device, once per process and kernel specialisation.
void warm_up() {
  const int64_t shape[] = {1080, 1920, 3}, planar_shape[] = {3, 1080, 1920};
  TbTensor *image = nullptr, *planar = nullptr;
  ASSERT_EQ(TB_SUCCESS, tb_tensor_alloc(tbtest::cuda(0), TB_DTYPE_UINT8, 3, shape, TB_LAYOUT_HWC,
                                        0, &image));
  ASSERT_EQ(TB_SUCCESS, tb_tensor_alloc(tbtest::cuda(0), TB_DTYPE_UINT8, 3, planar_shape,
                                        TB_LAYOUT_CHW, 0, &planar));
  // Written before it is read: compute-sanitizer initcheck reports reads of unwritten memory.
  ASSERT_EQ(cudaSuccess, cudaMemset(data_of(image), 0, 1080 * 1920 * 3));
  ASSERT_EQ(TB_SUCCESS, tb_reformat(image, planar, nullptr));
  ASSERT_EQ(cudaSuccess, cudaDeviceSynchronize());
  tb_tensor_release(image);
  tb_tensor_release(planar);
}

TEST(GpuAlloc, ReleaseBehindABusySideStreamDoesNotBlockTheHost) {
  SKIP_WITHOUT_GPU();
  CUDA_OK(cudaSetDevice(0));
  warm_up();
  for (unsigned flags : {cudaStreamDefault, cudaStreamNonBlocking}) {
    cudaStream_t side = nullptr, work = nullptr;
    CUDA_OK(cudaStreamCreateWithFlags(&side, flags));
    CUDA_OK(cudaStreamCreateWithFlags(&work, cudaStreamNonBlocking));
    occupy(side, 1000);

    auto start = Clock::now();
    const int64_t shape[] = {1080, 1920, 3};
    TbTensor* image = nullptr;  // synchronous allocation, no stream
    TB_ASSERT_OK(tb_tensor_alloc(tbtest::cuda(0), TB_DTYPE_UINT8, 3, shape, TB_LAYOUT_HWC, 0,
                                 &image));
    TbTensor* planar = nullptr;  // stream-ordered allocation, used by an operation, released
    const int64_t planar_shape[] = {3, 1080, 1920};
    TB_ASSERT_OK(tb_tensor_alloc_async(tbtest::cuda(0), TB_DTYPE_UINT8, 3, planar_shape,
                                       TB_LAYOUT_CHW, 0, work, &planar));
    CUDA_OK(cudaMemsetAsync(data_of(image), 0, 1080 * 1920 * 3, work));  // written before read
    TB_ASSERT_OK(tb_reformat(image, planar, work));
    TB_ASSERT_OK(tb_tensor_release(planar));
    TB_ASSERT_OK(tb_tensor_release(image));
    double host_ms = elapsed_ms(start);

    EXPECT_EQ(cudaErrorNotReady, cudaStreamQuery(side)) << "the side stream finished early";
    EXPECT_LT(host_ms, 20.0) << "allocating and releasing waited for the busy side stream "
                             << "(stream flags " << flags << ")";
    CUDA_OK(cudaStreamSynchronize(side));
    CUDA_OK(cudaStreamSynchronize(work));
    CUDA_OK(cudaStreamDestroy(side));
    CUDA_OK(cudaStreamDestroy(work));
  }
}

TEST(GpuAlloc, MemoryReadOnAnotherStreamIsNotReusedBeforeTheRead) {
  SKIP_WITHOUT_GPU();
  CUDA_OK(cudaSetDevice(0));
  const int64_t n = 1 << 20;
  cudaStream_t a, b, c;
  for (cudaStream_t* s : {&a, &b, &c}) CUDA_OK(cudaStreamCreateWithFlags(s, cudaStreamNonBlocking));
  std::vector<uint32_t> first(n), second(n, 0xdeadbeefu), seen(n, 0);
  for (int64_t i = 0; i < n; ++i) first[i] = static_cast<uint32_t>(i * 2654435761u);
  uint32_t* pinned = nullptr;
  CUDA_OK(cudaMallocHost(reinterpret_cast<void**>(&pinned), n * sizeof(uint32_t)));

  TbTensor* t = alloc_on(a, n);
  CUDA_OK(cudaMemcpyAsync(data_of(t), first.data(), n * 4, cudaMemcpyHostToDevice, a));
  occupy(b, 300);  // the consumer's read happens late
  TB_ASSERT_OK(tb_tensor_sync(t, b));
  CUDA_OK(cudaMemcpyAsync(pinned, data_of(t), n * 4, cudaMemcpyDeviceToHost, b));
  TB_ASSERT_OK(tb_tensor_release(t));  // the free must wait for the read on b

  // A new allocation on a third stream, written at once: it must not get the memory b reads.
  TbTensor* u = alloc_on(c, n);
  CUDA_OK(cudaMemcpyAsync(data_of(u), second.data(), n * 4, cudaMemcpyHostToDevice, c));
  CUDA_OK(cudaStreamSynchronize(c));
  CUDA_OK(cudaStreamSynchronize(b));
  std::copy(pinned, pinned + n, seen.begin());
  EXPECT_EQ(seen, first) << "the memory was reused before the read on the other stream";
  TB_ASSERT_OK(tb_tensor_release(u));
  CUDA_OK(cudaFreeHost(pinned));
  for (cudaStream_t s : {a, b, c}) CUDA_OK(cudaStreamDestroy(s));
}

TEST(GpuAlloc, EightThreadsAllocateAndFreeOnTheirOwnStreams) {
  SKIP_WITHOUT_GPU();
  CUDA_OK(cudaSetDevice(0));
  CUDA_OK(cudaDeviceSynchronize());
  uint64_t baseline = pool_used();
  int64_t live_before = tbtest::live_tensors();
  std::vector<std::thread> threads;
  std::vector<int> failures(8, 0);
  for (int id = 0; id < 8; ++id) {
    threads.emplace_back([id, &failures] {
      cudaSetDevice(0);
      cudaStream_t stream;
      cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
      for (int round = 0; round < 100; ++round) {
        const int64_t n = 1000 + 37 * ((round * 8 + id) % 101);
        std::vector<uint32_t> in(n), out(n, 0);
        for (int64_t i = 0; i < n; ++i) in[i] = static_cast<uint32_t>(id << 24 | round << 12 | i);
        TbTensor* t = alloc_on(stream, n);
        if (t == nullptr) { ++failures[id]; break; }
        cudaMemcpyAsync(data_of(t), in.data(), n * 4, cudaMemcpyHostToDevice, stream);
        cudaMemcpyAsync(out.data(), data_of(t), n * 4, cudaMemcpyDeviceToHost, stream);
        tb_tensor_release(t);
        cudaStreamSynchronize(stream);
        if (out != in) ++failures[id];
      }
      cudaStreamDestroy(stream);
    });
  }
  for (auto& thread : threads) thread.join();
  for (int id = 0; id < 8; ++id) EXPECT_EQ(failures[id], 0) << "thread " << id;
  CUDA_OK(cudaDeviceSynchronize());
  EXPECT_EQ(tbtest::live_tensors(), live_before);
  EXPECT_EQ(pool_used(), baseline) << "pool memory leaked";
}

// A CUDA allocator on the runtime's stream-ordered API that records the stream of every call.
struct StreamRecordingAllocator {
  std::mutex lock;
  std::vector<void*> allocate_streams, free_streams;
  int allocations = 0, frees = 0;

  static int32_t allocate(void* context, int64_t bytes, int64_t alignment, TbDevice device,
                          void* stream, void** out, char* message, size_t capacity) {
    auto* self = static_cast<StreamRecordingAllocator*>(context);
    if (device.device_type != TB_DEVICE_CUDA || alignment > 256) return TB_ERROR_INVALID_ARGUMENT;
    cudaError_t err = cudaMallocAsync(out, static_cast<size_t>(bytes),
                                      static_cast<cudaStream_t>(stream));
    if (err != cudaSuccess) {
      std::snprintf(message, capacity, "%s", cudaGetErrorName(err));
      return TB_ERROR_OUT_OF_MEMORY;
    }
    if (stream == nullptr) cudaStreamSynchronize(nullptr);
    std::lock_guard<std::mutex> guard(self->lock);
    ++self->allocations;
    self->allocate_streams.push_back(stream);
    return TB_SUCCESS;
  }

  static void release(void* context, void* data, int64_t, TbDevice, void* stream) {
    auto* self = static_cast<StreamRecordingAllocator*>(context);
    cudaFreeAsync(data, static_cast<cudaStream_t>(stream));
    std::lock_guard<std::mutex> guard(self->lock);
    ++self->frees;
    self->free_streams.push_back(stream);
  }
};

TEST(GpuAlloc, InstalledCudaAllocatorIsCalledOnceWithTheRightStreams) {
  SKIP_WITHOUT_GPU();
  CUDA_OK(cudaSetDevice(0));
  StreamRecordingAllocator recorder;
  TbAllocator allocator{&recorder, &StreamRecordingAllocator::allocate,
                        &StreamRecordingAllocator::release};
  TB_ASSERT_OK(tb_allocator_set(TB_DEVICE_CUDA, &allocator));
  cudaStream_t first, second;
  CUDA_OK(cudaStreamCreateWithFlags(&first, cudaStreamNonBlocking));
  CUDA_OK(cudaStreamCreateWithFlags(&second, cudaStreamNonBlocking));

  TbTensor* t = alloc_on(first, 4096);
  CUDA_OK(cudaMemsetAsync(data_of(t), 0, 4096 * 4, first));  // written before the clone reads it
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(recorder.allocations, 1);
  EXPECT_EQ(recorder.allocate_streams[0], first);
  TbTensor* copy = nullptr;  // clone on the second stream: allocated there, t used there too
  TB_ASSERT_OK(tb_tensor_clone(t, second, &copy));
  ASSERT_EQ(recorder.allocations, 2);
  EXPECT_EQ(recorder.allocate_streams[1], second);
  TB_ASSERT_OK(tb_tensor_release(t));
  TB_ASSERT_OK(tb_tensor_release(copy));
  ASSERT_EQ(recorder.frees, 2);
  // Both frees are ordered after the memory's uses on tensorbridge's own free stream of the
  // device (which waits for the uses' completion markers), so a stream the application destroys
  // before releasing a tensor is never touched.
  EXPECT_NE(recorder.free_streams[0], nullptr);
  EXPECT_EQ(recorder.free_streams[0], recorder.free_streams[1]);
  EXPECT_NE(recorder.free_streams[0], first);
  EXPECT_NE(recorder.free_streams[0], second);
  TB_ASSERT_OK(tb_allocator_set(TB_DEVICE_CUDA, nullptr));
  CUDA_OK(cudaDeviceSynchronize());
  CUDA_OK(cudaStreamDestroy(first));
  CUDA_OK(cudaStreamDestroy(second));
}

TEST(GpuAlloc, OnePebibyteIsAClearOutOfMemory) {
  SKIP_WITHOUT_GPU();
  const int64_t shape[] = {int64_t{1} << 50};
  for (bool async : {false, true}) {
    TbTensor* t = reinterpret_cast<TbTensor*>(0x1);
    TbStatus status =
        async ? tb_tensor_alloc_async(tbtest::cuda(0), TB_DTYPE_UINT8, 1, shape, nullptr, 0,
                                      nullptr, &t)
              : tb_tensor_alloc(tbtest::cuda(0), TB_DTYPE_UINT8, 1, shape, nullptr, 0, &t);
    EXPECT_EQ(status, TB_ERROR_OUT_OF_MEMORY) << tb_last_error_message();
    EXPECT_EQ(t, nullptr);
    std::string message = tbtest::last_error();
    EXPECT_NE(message.find("1125899906842624 bytes on cuda:0"), std::string::npos) << message;
  }
}

TEST(GpuAlloc, TrimGivesCachedMemoryBackAndUsageReturnsToBaseline) {
  SKIP_WITHOUT_GPU();
  CUDA_OK(cudaSetDevice(0));
  CUDA_OK(cudaDeviceSynchronize());
  uint64_t baseline = pool_used();
  std::vector<TbTensor*> tensors;
  for (int i = 0; i < 16; ++i) tensors.push_back(alloc_on(nullptr, int64_t{1} << 20));
  EXPECT_GE(pool_used(), baseline + 16 * (uint64_t{4} << 20));
  for (TbTensor* t : tensors) TB_ASSERT_OK(tb_tensor_release(t));
  CUDA_OK(cudaDeviceSynchronize());
  EXPECT_EQ(pool_used(), baseline);
  TB_ASSERT_OK(tb_cuda_pool_trim(0, 0));
  TB_EXPECT_STATUS(TB_ERROR_INVALID_ARGUMENT, tb_cuda_pool_trim(4096, 0));
}

}  // namespace

namespace {

TEST(GpuAlloc, ReleasingAfterTheStreamIsDestroyedIsSafe) {
  SKIP_WITHOUT_GPU();
  CUDA_OK(cudaSetDevice(0));
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const int64_t shape[] = {64, 64, 3}, planar_shape[] = {3, 64, 64};
  TbTensor *image = nullptr, *planar = nullptr;
  TB_ASSERT_OK(tb_tensor_alloc_async(tbtest::cuda(0), TB_DTYPE_FLOAT32, 3, shape, TB_LAYOUT_HWC, 0,
                                     stream, &image));
  TB_ASSERT_OK(tb_tensor_alloc(tbtest::cuda(0), TB_DTYPE_FLOAT32, 3, planar_shape, TB_LAYOUT_CHW, 0,
                               &planar));
  CUDA_OK(cudaMemsetAsync(data_of(image), 0, 64 * 64 * 3 * sizeof(float), stream));  // written first
  TB_ASSERT_OK(tb_reformat(image, planar, stream));
  CUDA_OK(cudaStreamSynchronize(stream));
  CUDA_OK(cudaStreamDestroy(stream));  // as RAII code often does, before the tensors go
  TB_ASSERT_OK(tb_tensor_release(image));
  TB_ASSERT_OK(tb_tensor_release(planar));
  CUDA_OK(cudaDeviceSynchronize());
}

}  // namespace
