/* Host time per call of the library's GPU operations, called from C (no Python): what the
 * Python package's per-call figures (bench/python_wrap.py, bench/python_alloc.py) rest on. Each
 * case runs 20 bursts of 100 back-to-back calls on the legacy default stream; the GPU queue is
 * drained between bursts (outside the timing) so a full launch queue never throttles the host.
 * Prints a markdown table of the median µs per call.
 *
 *   mkdir -p build-gpu && ln -sf $PWD/.prebuilt/libtensorbridge.so build-gpu/libtensorbridge.so.0
 *   cc -O2 -Iinclude bench/call_cost.c build-gpu/libtensorbridge.so.0 -Wl,-rpath,$PWD/build-gpu -ldl \
 *      -o build-gpu/call_cost && build-gpu/call_cost */
#include <tensorbridge.h>

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { BURSTS = 20, CALLS = 100 };

typedef int (*driver_fn)();
static driver_fn cu_stream_synchronize, cu_memcpy_async, cu_ctx_push, cu_ctx_pop, cu_stream_create,
    cu_memset_async;
static void* context;

static void check(TbStatus status, const char* what) {
  if (status != TB_SUCCESS) {
    fprintf(stderr, "%s failed: %s\n", what, tb_last_error_message());
    exit(1);
  }
}

/* Makes the primary context of device 0 current on this thread, so the benchmark can drain the
 * legacy default stream with cuStreamSynchronize. */
static void open_driver(void) {
  void* cuda = dlopen("libcuda.so.1", RTLD_NOW);
  if (cuda == NULL) {
    fprintf(stderr, "libcuda.so.1 not found: this benchmark needs a GPU\n");
    exit(1);
  }
  driver_fn init = (driver_fn)dlsym(cuda, "cuInit");
  driver_fn retain = (driver_fn)dlsym(cuda, "cuDevicePrimaryCtxRetain");
  driver_fn set_current = (driver_fn)dlsym(cuda, "cuCtxSetCurrent");
  cu_stream_synchronize = (driver_fn)dlsym(cuda, "cuStreamSynchronize");
  cu_memcpy_async = (driver_fn)dlsym(cuda, "cuMemcpyAsync");
  cu_memset_async = (driver_fn)dlsym(cuda, "cuMemsetD8Async");
  cu_ctx_push = (driver_fn)dlsym(cuda, "cuCtxPushCurrent_v2");
  cu_ctx_pop = (driver_fn)dlsym(cuda, "cuCtxPopCurrent_v2");
  cu_stream_create = (driver_fn)dlsym(cuda, "cuStreamCreate");
  if (init(0) != 0 || retain(&context, 0) != 0 || set_current(context) != 0) {
    fprintf(stderr, "CUDA driver initialisation failed\n");
    exit(1);
  }
}

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int by_value(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

/* The median over the bursts of µs per call of `call(argument)`; `stream` (NULL: the legacy
 * default stream) is drained between bursts. */
static double median_on(void (*call)(void*), void* argument, void* stream) {
  void* drained = stream != NULL ? stream : (void*)1;
  double samples[BURSTS];
  for (int i = 0; i < CALLS; i++) call(argument); /* warm-up: kernels built, pool primed */
  cu_stream_synchronize(drained);
  for (int burst = 0; burst < BURSTS; burst++) {
    double start = now_us();
    for (int i = 0; i < CALLS; i++) call(argument);
    samples[burst] = (now_us() - start) / CALLS;
    cu_stream_synchronize(drained);
  }
  qsort(samples, BURSTS, sizeof samples[0], by_value);
  return samples[BURSTS / 2];
}

static double median_us(void (*call)(void*), void* argument) { return median_on(call, argument, NULL); }

struct pair {
  TbTensor* src;
  TbTensor* dst;
  void* stream; /* NULL: the legacy default stream */
};

static unsigned long long data_of(TbTensor* t) {
  TbTensorInfo description;
  check(tb_tensor_info(t, &description), "tb_tensor_info");
  return (unsigned long long)(uintptr_t)description.data;
}

/* The driver calls themselves, for reference: what one operation cannot go below. */
static void driver_memcpy(void* argument) {
  struct pair* p = argument;
  TbTensorInfo description;
  check(tb_tensor_info(p->src, &description), "tb_tensor_info");
  if (cu_memcpy_async(data_of(p->dst), data_of(p->src), (size_t)description.nbytes, p->stream) != 0) exit(1);
}

static void driver_memset(void* argument) {
  struct pair* p = argument;
  if (cu_memset_async(data_of(p->dst), 0, (size_t)150528, p->stream) != 0) exit(1);
}

static void driver_push_pop(void* argument) {
  (void)argument;
  void* popped = NULL;
  if (cu_ctx_push(context) != 0 || cu_ctx_pop(&popped) != 0) exit(1);
}

static void reformat(void* argument) {
  struct pair* p = argument;
  check(tb_reformat(p->src, p->dst, p->stream), "tb_reformat");
}

static void copy(void* argument) {
  struct pair* p = argument;
  check(tb_copy(p->src, p->dst, p->stream), "tb_copy");
}

static void reformat_new(void* argument) {
  struct pair* p = argument;
  TbTensor* out = NULL;
  check(tb_reformat_new(p->src, "NCHW", NULL, &out), "tb_reformat_new");
  check(tb_tensor_release(out), "tb_tensor_release");
}

static void alloc_async(void* argument) {
  (void)argument;
  const int64_t shape[] = {1, 3, 224, 224};
  TbTensor* out = NULL;
  check(tb_tensor_alloc_async((TbDevice){TB_DEVICE_CUDA, 0}, TB_DTYPE_UINT8, 4, shape, "NCHW", 0,
                              (void*)1, &out),
        "tb_tensor_alloc_async");
  check(tb_tensor_release(out), "tb_tensor_release");
}

static void info(void* argument) {
  struct pair* p = argument;
  TbTensorInfo description;
  check(tb_tensor_info(p->src, &description), "tb_tensor_info");
}

static TbTensor* device_tensor(const int64_t* shape, int rank, const char* layout) {
  TbTensor* t = NULL;
  check(tb_tensor_alloc((TbDevice){TB_DEVICE_CUDA, 0}, TB_DTYPE_UINT8, rank, shape, layout, 0, &t),
        "tb_tensor_alloc");
  return t;
}

int main(void) {
  open_driver();
  const int64_t nhwc[] = {1, 224, 224, 3}, nchw[] = {1, 3, 224, 224};
  const int64_t hwc[] = {1080, 1920, 3}, chw[] = {3, 1080, 1920};
  struct pair small = {device_tensor(nhwc, 4, "NHWC"), device_tensor(nchw, 4, "NCHW")};
  struct pair small_copy = {small.src, device_tensor(nhwc, 4, "NHWC")};
  struct pair large = {device_tensor(hwc, 3, "HWC"), device_tensor(chw, 3, "CHW")};
  printf("| C call (legacy default stream, device memory) | µs per call |\n| --- | ---: |\n");
  printf("| tb_tensor_info | %.2f |\n", median_us(info, &small));
  printf("| tb_reformat NHWC->NCHW u8 1x224x224x3 | %.2f |\n", median_us(reformat, &small));
  printf("| tb_copy u8 1x224x224x3 (packed: one memcpy) | %.2f |\n", median_us(copy, &small_copy));
  printf("| tb_reformat HWC->CHW u8 1080x1920x3 | %.2f |\n", median_us(reformat, &large));
  printf("| tb_reformat_new 1x224x224x3 -> NCHW + tb_tensor_release | %.2f |\n",
         median_us(reformat_new, &small));
  printf("| tb_tensor_alloc_async 1x3x224x224 + tb_tensor_release | %.2f |\n",
         median_us(alloc_async, NULL));
  printf("| driver: cuMemcpyAsync 150528 bytes device to device (+ 3 tb_tensor_info) | %.2f |\n",
         median_us(driver_memcpy, &small_copy));
  printf("| driver: cuMemsetD8Async 150528 bytes (+ 1 tb_tensor_info) | %.2f |\n",
         median_us(driver_memset, &small_copy));
  printf("| driver: cuCtxPushCurrent + cuCtxPopCurrent | %.2f |\n", median_us(driver_push_pop, NULL));
  void* stream = NULL;
  if (cu_stream_create(&stream, 1 /* CU_STREAM_NON_BLOCKING */) != 0) exit(1);
  struct pair small_on_stream = {small.src, small.dst, stream};
  struct pair copy_on_stream = {small_copy.src, small_copy.dst, stream};
  printf("| tb_reformat NHWC->NCHW u8 1x224x224x3, a non-blocking stream | %.2f |\n",
         median_on(reformat, &small_on_stream, stream));
  printf("| tb_copy u8 1x224x224x3, a non-blocking stream | %.2f |\n", median_on(copy, &copy_on_stream, stream));
  printf("| driver: cuMemcpyAsync 150528 bytes, a non-blocking stream | %.2f |\n",
         median_on(driver_memcpy, &copy_on_stream, stream));
  TbTensor* all[] = {small.src, small.dst, small_copy.dst, large.src, large.dst};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) check(tb_tensor_release(all[i]), "release");
  return 0;
}
