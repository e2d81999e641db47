// Helpers for the C++ tests that call the CUDA runtime: skipping with a printed reason where no
// GPU is usable, and checking runtime calls.
#pragma once

#include "test_support.hpp"

#include <cuda_runtime_api.h>

/// Skips the current test, printing why, unless at least `n` CUDA GPUs are usable.
#define SKIP_UNLESS_GPUS(n)                                                                       \
  do {                                                                                            \
    int devices_ = 0;                                                                             \
    cudaError_t err_ = cudaGetDeviceCount(&devices_);                                             \
    if (err_ != cudaSuccess || devices_ < (n)) {                                                  \
      GTEST_SKIP() << "needs " << (n) << " CUDA GPU(s): cudaGetDeviceCount returned "             \
                   << cudaGetErrorName(err_) << " with " << devices_ << " device(s)";             \
    }                                                                                             \
  } while (0)

/// Skips the current test, printing why, where no CUDA GPU is usable.
#define SKIP_WITHOUT_GPU() SKIP_UNLESS_GPUS(1)

/// Asserts that a CUDA runtime call succeeded.
#define CUDA_OK(call) ASSERT_EQ(cudaSuccess, (call)) << #call
