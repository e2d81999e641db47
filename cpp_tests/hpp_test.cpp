// The C++17 wrapper (tensorbridge.hpp): reference counting by value semantics, exceptions,
// views, operations and owning DLPack exports. Host memory: runs on every machine.
#include <tensorbridge.hpp>

#include <gtest/gtest.h>

#include <numeric>
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
