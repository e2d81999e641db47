/* tensorbridge demo: wrap an HWC image the program owns, print what tensorbridge sees, take a CHW
 * view and a batch slice without copying, and — where a GPU is usable — round-trip the image
 * through device memory allocated by tensorbridge. Prints which path it took. */
#include <tensorbridge.h>

#include <cuda_runtime_api.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(call)                                                                          \
  do {                                                                                       \
    TbStatus status_ = (call);                                                               \
    if (status_ != TB_SUCCESS) {                                                             \
      fprintf(stderr, "%s failed: %s: %s\n", #call, tb_status_name(status_),                 \
              tb_last_error_message());                                                      \
      exit(1);                                                                               \
    }                                                                                        \
  } while (0)

static void print_tensor(const char* title, const TbTensor* tensor) {
  TbTensorInfo info;
  const char* dtype = "?";
  int i;
  CHECK(tb_tensor_info(tensor, &info));
  CHECK(tb_dtype_name(info.dtype, &dtype));
  printf("%-22s layout %-5s dtype %-7s shape (", title, info.layout.labels, dtype);
  for (i = 0; i < info.rank; ++i) printf("%s%lld", i ? ", " : "", (long long)info.shape[i]);
  printf(") strides (");
  for (i = 0; i < info.rank; ++i) printf("%s%lld", i ? ", " : "", (long long)info.strides[i]);
  printf(") bytes %lld %s%s\n", (long long)info.nbytes, info.contiguous ? "contiguous" : "strided",
         info.readonly ? " read-only" : "");
}

static void count_cleanup(void* context, void* data) {
  (void)data;
  ++*(int*)context;
}

/* Copies the image to a tensorbridge-allocated device tensor and back; returns 0 when equal. */
static int gpu_round_trip(const unsigned char* image, size_t bytes, const int64_t* shape) {
  TbTensor* device_image = NULL;
  TbDevice gpu = {TB_DEVICE_CUDA, 0};
  void* device_data = NULL;
  unsigned char* back = calloc(bytes, 1);
  int mismatch;
  CHECK(tb_tensor_alloc(gpu, TB_DTYPE_UINT8, 3, shape, TB_LAYOUT_HWC, 0, &device_image));
  CHECK(tb_tensor_data(device_image, &device_data));
  print_tensor("device copy", device_image);
  if (cudaMemcpy(device_data, image, bytes, cudaMemcpyHostToDevice) != cudaSuccess ||
      cudaMemcpy(back, device_data, bytes, cudaMemcpyDeviceToHost) != cudaSuccess) {
    fprintf(stderr, "cudaMemcpy failed\n");
    exit(1);
  }
  mismatch = memcmp(back, image, bytes) != 0;
  free(back);
  CHECK(tb_tensor_release(device_image));
  return mismatch;
}

int main(void) {
  enum { H = 4, W = 6, C = 3 };
  static unsigned char pixels[H * W * C];
  const int64_t shape[] = {H, W, C};
  const TbDevice cpu = {TB_DEVICE_CPU, 0};
  TbTensor *image = NULL, *planar = NULL, *rows = NULL, *batch = NULL, *first = NULL;
  int cleanups = 0, devices = 0, i;

  for (i = 0; i < H * W * C; ++i) pixels[i] = (unsigned char)i;
  printf("tensorbridge %s\n", tb_version_string());

  CHECK(tb_tensor_wrap(pixels, cpu, TB_DTYPE_UINT8, 3, shape, NULL, TB_LAYOUT_HWC, false,
                       count_cleanup, &cleanups, &image));
  print_tensor("wrapped HWC image", image);

  CHECK(tb_tensor_permute(image, TB_LAYOUT_CHW, &planar));
  print_tensor("CHW view (no copy)", planar);

  CHECK(tb_tensor_slice(image, 0, 1, 3, 1, &rows));
  print_tensor("rows 1..3 (no copy)", rows);

  {
    /* The same pixels seen as a batch of two 2-row images, then its first element. */
    const int64_t batch_shape[] = {2, H / 2, W, C};
    CHECK(tb_tensor_wrap(pixels, cpu, TB_DTYPE_UINT8, 4, batch_shape, NULL, TB_LAYOUT_NHWC, true,
                         NULL, NULL, &batch));
    CHECK(tb_tensor_select(batch, 0, 1, &first));
    print_tensor("NHWC batch (read-only)", batch);
    print_tensor("batch element 1", first);
  }

  if (tb_cuda_device_count(&devices) == TB_SUCCESS &&
      cudaGetDeviceCount(&devices) == cudaSuccess && devices > 0) {
    int mismatch = gpu_round_trip(pixels, sizeof pixels, shape);
    printf("path: GPU (%d device(s)): host -> device -> host round trip %s\n", devices,
           mismatch ? "FAILED" : "matches");
    if (mismatch) return 1;
  } else {
    printf("path: CPU only (%s)\n", tb_last_error_message());
  }

  CHECK(tb_tensor_release(first));
  CHECK(tb_tensor_release(batch));
  CHECK(tb_tensor_release(rows));
  CHECK(tb_tensor_release(planar));
  printf("cleanup calls after releasing the views: %d\n", cleanups);
  CHECK(tb_tensor_release(image));
  printf("cleanup calls after releasing the image: %d\n", cleanups);
  return cleanups == 1 ? 0 : 1;
}
