// The C++17 wrapper (tensorbridge.hpp): reference counting by value semantics, exceptions,
// views, operations and owning DLPack exports. Host memory: runs on every machine.
#include <tensorbridge.hpp>

#include <gtest/gtest.h>

#include <exception>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

int64_t live() {
  int64_t count = -1;
  tb::check(tb_tensor_live_count(&count));
  return count;
}

TEST(Hpp, CopyRetainsMoveTransfersDestructionReleasesOnce) {
  std::vector<float> data(12);
  int releases = 0;
  const int64_t before = live();
  {
    tb::Tensor a = tb::Tensor::wrap(data.data(), tb::Device::cpu(), tb::dtype<float>(), {3, 4}, "HW",
                                    [&releases] { ++releases; });
    EXPECT_EQ(live(), before + 1);
    tb::Tensor b = a;  // a second reference to the same handle
    EXPECT_EQ(b.get(), a.get());
    tb::Tensor c = std::move(a);
    EXPECT_FALSE(a);
    EXPECT_EQ(c.shape(), (std::vector<int64_t>{3, 4}));
    EXPECT_EQ(c.strides(), (std::vector<int64_t>{16, 4}));
    EXPECT_EQ(c.layout(), "HW");
    EXPECT_EQ(tb::dtype_name(c.dtype()), "float32");
    EXPECT_EQ(releases, 0);
  }
  EXPECT_EQ(releases, 1);
  EXPECT_EQ(live(), before);
}

TEST(Hpp, FailuresThrowWithStatusAndMessageAndKeepOwnership) {
  std::vector<float> data(4);
  int releases = 0;
  try {
    tb::Tensor::wrap(data.data(), tb::Device::cpu(), tb::dtype<float>(), {-1}, nullptr, [&] { ++releases; });
    FAIL() << "wrap with a negative extent must throw";
  } catch (const tb::Error& error) {
    EXPECT_EQ(error.status(), TB_ERROR_INVALID_ARGUMENT);
    EXPECT_STREQ(error.status_name(), "TB_ERROR_INVALID_ARGUMENT");
    EXPECT_NE(std::string(error.what()).find("shape[0] = -1"), std::string::npos);
  }
  EXPECT_EQ(releases, 0) << "a failed wrap leaves the memory with the caller";
  EXPECT_THROW(tb::dtype("float8"), tb::Error);
  EXPECT_THROW(tb::Tensor().shape(), tb::Error);
}

// Installs a handler for the test's duration and restores the previous one.
class ScopedCallbackErrorHandler {
 public:
  explicit ScopedCallbackErrorHandler(tb::CallbackErrorHandler handler)
      : previous_(tb::set_callback_error_handler(std::move(handler))) {}
  ~ScopedCallbackErrorHandler() { tb::set_callback_error_handler(std::move(previous_)); }

 private:
  tb::CallbackErrorHandler previous_;
};

TEST(Hpp, ThrowingReleaseCallbackIsReportedNotPropagated) {
  std::vector<float> data(6);
  int handled = 0;
  std::string message;
  ScopedCallbackErrorHandler scope([&](std::exception_ptr error) {
    ++handled;
    try {
      std::rethrow_exception(error);
    } catch (const std::runtime_error& e) {
      message = e.what();
    }
  });
  int releases = 0;
  // Destroyed with the callback's std::function: counts that the wrapper freed it exactly once.
  auto captured = std::make_shared<int>(0);
  std::weak_ptr<int> captured_alive = captured;
  const int64_t before = live();
  {
    tb::Tensor a = tb::Tensor::wrap(data.data(), tb::Device::cpu(), tb::dtype<float>(), {2, 3}, "HW",
                                    [&releases, captured] {
                                      ++releases;
                                      throw std::runtime_error("release failed");
                                    });
    captured.reset();
    tb::Tensor view = a.permute("WH");  // a second handle on the same memory
    EXPECT_EQ(live(), before + 2);
  }  // both handles go here; the callback throws inside the library's release
  EXPECT_EQ(releases, 1) << "the release callback runs exactly once";
  EXPECT_EQ(handled, 1) << "the handler sees the exception exactly once";
  EXPECT_EQ(message, "release failed");
  EXPECT_TRUE(captured_alive.expired()) << "the callback (and what it captured) is freed";
  EXPECT_EQ(live(), before) << "the library's cleanup completed despite the exception";

  // The library is still usable afterwards.
  tb::Tensor b = tb::Tensor::wrap(data.data(), tb::Device::cpu(), tb::dtype<float>(), {6});
  EXPECT_EQ(b.shape(), (std::vector<int64_t>{6}));
}

TEST(Hpp, SetCallbackErrorHandlerReturnsThePreviousOne) {
  int first_calls = 0;
  ScopedCallbackErrorHandler scope([&](std::exception_ptr) { ++first_calls; });
  tb::CallbackErrorHandler first = tb::set_callback_error_handler({});  // back to the default
  ASSERT_TRUE(first);
  first(nullptr);
  EXPECT_EQ(first_calls, 1);
  EXPECT_FALSE(tb::set_callback_error_handler(std::move(first))) << "the default is reported as empty";
}

TEST(Hpp, DefaultHandlerWritesTheExceptionToStderr) {
  std::vector<float> data(2);
  ::testing::internal::CaptureStderr();
  {
    tb::Tensor::wrap(data.data(), tb::Device::cpu(), tb::dtype<float>(), {2}, nullptr,
                     [] { throw std::runtime_error("cleanup exploded"); });
  }
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("cleanup exploded"), std::string::npos) << err;
}

TEST(Hpp, ViewsOperationsAndDLPack) {
  std::vector<uint8_t> pixels(2 * 3 * 4 * 3);
  std::iota(pixels.begin(), pixels.end(), 0);
  tb::Tensor batch = tb::Tensor::wrap(pixels.data(), tb::Device::cpu(), tb::dtype<uint8_t>(), {2, 3, 4, 3}, "NHWC");
  EXPECT_EQ(batch.select(0, 1).layout(), "HWC");
  EXPECT_EQ(batch.permute("NCHW").shape(), (std::vector<int64_t>{2, 3, 3, 4}));
  EXPECT_EQ(batch.slice(2, 0, INT64_MAX, 2).shape()[2], 2);
  tb::Tensor planar = tb::Tensor::alloc(tb::Device::cpu(), tb::dtype<uint8_t>(), {2, 3, 3, 4}, "NCHW");
  tb::reformat(batch, planar);
  const auto* out = static_cast<const uint8_t*>(planar.data());
  EXPECT_EQ(out[1 * 36 + 2 * 12 + 1 * 4 + 3], pixels[1 * 36 + 1 * 12 + 3 * 3 + 2]);  // n=1 c=2 h=1 w=3
  tb::Tensor normalized = tb::Tensor::alloc(tb::Device::cpu(), tb::dtype<float>(), {2, 3, 3, 4}, "NCHW");
  tb::convert(batch, normalized, {0.5f, 1.0f, 2.0f}, {0.0f, 0.0f, 1.0f});
  EXPECT_EQ(static_cast<const float*>(normalized.data())[36 + 24 + 4 + 3], 2.0f * pixels[36 + 12 + 9 + 2] + 1.0f);
  EXPECT_THROW(tb::convert(batch, normalized, {1.0f}, {}), tb::Error);
  // BGR -> RGB while normalising: output channel 0 reads source channel 2.
  tb::convert_channels(batch, normalized, {2, 1, 0}, {0.5f, 1.0f, 2.0f}, {0.0f, 0.0f, 1.0f});
  EXPECT_EQ(static_cast<const float*>(normalized.data())[36 + 4 + 3], 0.5f * pixels[36 + 12 + 9 + 2]);  // n=1 c=0 h=1 w=3
  EXPECT_EQ(static_cast<const float*>(normalized.data())[36 + 24 + 4 + 3], 2.0f * pixels[36 + 12 + 9 + 0] + 1.0f);
  EXPECT_THROW(tb::convert_channels(batch, normalized, {2, 1}), tb::Error);

  tb::DLPackVersioned exported = planar.to_dlpack_versioned();
  EXPECT_EQ(exported->dl_tensor.data, planar.data());
  tb::Tensor back = tb::Tensor::from_dlpack(std::move(exported), "NCHW");
  EXPECT_EQ(back.data(), planar.data());
  EXPECT_EQ(back.layout(), "NCHW");
  tb::Tensor copy = back.clone();
  EXPECT_NE(copy.data(), back.data());
  EXPECT_TRUE(copy.contiguous());
}

}  // namespace
