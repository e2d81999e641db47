// A C++ application that owns its device buffers: cudaMalloc an NHWC batch, fill it with its
// own CUDA kernel, wrap it (cleanup = cudaFree), reformat to NCHW through tensorbridge on its own
// stream, export the result as DLPack, and check it on the host.
#include <tensorbridge.hpp>

#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

#define CUDA_CHECK(call)                                                                 \
  do {                                                                                   \
    cudaError_t e_ = (call);                                                             \
    if (e_ != cudaSuccess) {                                                             \
      std::fprintf(stderr, "%s: %s\n", #call, cudaGetErrorString(e_));                   \
      std::exit(1);                                                                      \
    }                                                                                    \
  } while (0)

// pixel (n, h, w, c) = (n * 7 + h * 5 + w * 3 + c) mod 256
__global__ void fill_nhwc(uint8_t* image, int n, int h, int w, int c) {
  const long long total = 1LL * n * h * w * c;
  for (long long i = blockIdx.x * 1LL * blockDim.x + threadIdx.x; i < total; i += 1LL * gridDim.x * blockDim.x) {
    const int ci = static_cast<int>(i % c), wi = static_cast<int>(i / c % w), hi = static_cast<int>(i / c / w % h),
              ni = static_cast<int>(i / c / w / h);
    image[i] = static_cast<uint8_t>((ni * 7 + hi * 5 + wi * 3 + ci) & 255);
  }
}

}  // namespace

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("no CUDA GPU: nothing to run\n");
    return 0;
  }
  const int N = 4, H = 270, W = 480, C = 3;
  uint8_t* device_image = nullptr;
  CUDA_CHECK(cudaMalloc(&device_image, size_t(N) * H * W * C));
  cudaStream_t stream = nullptr;
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  fill_nhwc<<<256, 256, 0, stream>>>(device_image, N, H, W, C);
  CUDA_CHECK(cudaGetLastError());

  int releases = 0;
  {
    tb::Tensor nhwc = tb::Tensor::wrap(device_image, tb::Device::cuda(0), tb::dtype<uint8_t>(), {N, H, W, C}, "NHWC",
                                       [&] { CUDA_CHECK(cudaFree(device_image)); ++releases; });
    tb::Tensor nchw = tb::Tensor::alloc(tb::Device::cuda(0), tb::dtype<uint8_t>(), {N, C, H, W}, "NCHW");
    tb::reformat(nhwc, nchw, stream);  // ordered after fill_nhwc on the same stream

    tb::DLPackVersioned exported = nchw.to_dlpack_versioned();
    const TbDLTensor& dl = exported->dl_tensor;
    std::printf("DLPack export: device (%d, %d), ndim %d, shape %lldx%lldx%lldx%lld, strides %lld %lld %lld %lld\n",
                dl.device.device_type, dl.device.device_id, dl.ndim, (long long)dl.shape[0], (long long)dl.shape[1],
                (long long)dl.shape[2], (long long)dl.shape[3], (long long)dl.strides[0], (long long)dl.strides[1],
                (long long)dl.strides[2], (long long)dl.strides[3]);

    std::vector<uint8_t> host(size_t(N) * C * H * W);
    CUDA_CHECK(cudaMemcpyAsync(host.data(), dl.data, host.size(), cudaMemcpyDeviceToHost, stream));
    CUDA_CHECK(cudaStreamSynchronize(stream));
    size_t bad = 0;
    for (int n = 0; n < N; ++n)
      for (int c = 0; c < C; ++c)
        for (int h = 0; h < H; ++h)
          for (int w = 0; w < W; ++w) {
            const uint8_t expected = static_cast<uint8_t>((n * 7 + h * 5 + w * 3 + c) & 255);
            bad += host[((size_t(n) * C + c) * H + h) * W + w] != expected;
          }
    std::printf("NHWC -> NCHW on the application's stream: %zu wrong pixels of %zu\n", bad, host.size());
    if (bad) return 1;
  }
  CUDA_CHECK(cudaStreamDestroy(stream));
  std::printf("cudaFree cleanup ran %d time(s)\n", releases);
  return releases == 1 ? 0 : 1;
}
