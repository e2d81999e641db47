/* Per-call cost of the handle layer under contention: T threads call tensorbridge functions on
 * TbTensor handles, and the table gives nanoseconds per call (wall time × threads ÷ calls).
 *
 *   cc -O2 -pthread -Iinclude bench/handle_bench.c -ldl -o handle_bench
 *   ./handle_bench path/to/libtensorbridge.so [threads] [iterations]
 *
 * The library is loaded with dlopen, so two builds (before and after a change) can be compared
 * with one binary. Each result is checked: a failing call aborts the benchmark. */
#include <tensorbridge.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef TbStatus (*wrap_fn)(void*, TbDevice, TbDataType, int32_t, const int64_t*, const int64_t*,
                            const char*, bool, TbCleanupFn, void*, TbTensor**);
typedef TbStatus (*handle_fn)(TbTensor*);
typedef TbStatus (*info_fn)(const TbTensor*, TbTensorInfo*);
typedef TbStatus (*select_fn)(const TbTensor*, int32_t, int64_t, TbTensor**);

static wrap_fn wrap;
static handle_fn retain, release;
static info_fn info;
static select_fn select_view;
static long iterations;
static TbTensor* shared_tensor;
static unsigned char memory[64][4 * 8 * 3];

enum workload { OWN_RETAIN_RELEASE, OWN_INFO, SHARED_INFO, WRAP_VIEW_RELEASE, WORKLOADS };
static const char* const names[WORKLOADS] = {
    "retain + release, own tensor", "tb_tensor_info, own tensor",
    "tb_tensor_info, one shared tensor", "wrap + select view + 2 releases"};
static const int calls_per_iteration[WORKLOADS] = {2, 1, 1, 4};

struct job {
  enum workload what;
  int index;
};

static void check(TbStatus status, const char* what) {
  if (status != TB_SUCCESS) {
    fprintf(stderr, "%s failed with status %d\n", what, (int)status);
    exit(1);
  }
}

static TbTensor* wrap_own(int index) {
  int64_t shape[3] = {4, 8, 3};
  TbDevice cpu = {TB_DEVICE_CPU, 0};
  TbTensor* t = NULL;
  check(wrap(memory[index], cpu, TB_DTYPE_UINT8, 3, shape, NULL, "HWC", false, NULL, NULL, &t),
        "tb_tensor_wrap");
  return t;
}

static void* run(void* arg) {
  const struct job* job = arg;
  TbTensor* own = wrap_own(job->index);
  TbTensorInfo out;
  for (long i = 0; i < iterations; ++i) {
    switch (job->what) {
      case OWN_RETAIN_RELEASE:
        check(retain(own), "retain");
        check(release(own), "release");
        break;
      case OWN_INFO:
        check(info(own, &out), "info");
        break;
      case SHARED_INFO:
        check(info(shared_tensor, &out), "info");
        break;
      case WRAP_VIEW_RELEASE: {
        TbTensor* t = wrap_own(job->index);
        TbTensor* row = NULL;
        check(select_view(t, 0, 1, &row), "select");
        check(release(t), "release");
        check(release(row), "release");
        break;
      }
      default:
        break;
    }
  }
  check(release(own), "release");
  return NULL;
}

static double seconds(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s libtensorbridge.so [threads] [iterations]\n", argv[0]);
    return 2;
  }
  int threads = argc > 2 ? atoi(argv[2]) : 16;
  iterations = argc > 3 ? atol(argv[3]) : 200000;
  if (threads < 1 || threads > 64 || iterations < 1) return 2;
  void* lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return 1;
  }
  *(void**)&wrap = dlsym(lib, "tb_tensor_wrap");
  *(void**)&retain = dlsym(lib, "tb_tensor_retain");
  *(void**)&release = dlsym(lib, "tb_tensor_release");
  *(void**)&info = dlsym(lib, "tb_tensor_info");
  *(void**)&select_view = dlsym(lib, "tb_tensor_select");
  if (!wrap || !retain || !release || !info || !select_view) return 1;
  shared_tensor = wrap_own(63);

  printf("| workload | threads | ns per call |\n| --- | ---: | ---: |\n");
  for (int w = 0; w < WORKLOADS; ++w) {
    pthread_t ids[64];
    struct job jobs[64];
    double start = seconds();
    for (int t = 0; t < threads; ++t) {
      jobs[t].what = (enum workload)w;
      jobs[t].index = t;
      pthread_create(&ids[t], NULL, run, &jobs[t]);
    }
    for (int t = 0; t < threads; ++t) pthread_join(ids[t], NULL);
    double elapsed = seconds() - start;
    double calls = (double)iterations * threads * calls_per_iteration[w];
    printf("| %s | %d | %.1f |\n", names[w], threads, elapsed * threads / calls * 1e9);
  }
  check(release(shared_tensor), "release");
  return 0;
}
