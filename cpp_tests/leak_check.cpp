// Linked into every test executable: when the tests of the process are done, no TbTensor handle
// may still be alive. CTest runs each test in its own process, so this checks every test.
#include "test_support.hpp"

namespace {

class NoLeakedHandles : public ::testing::Environment {
 public:
  void TearDown() override {
    EXPECT_EQ(tbtest::live_tensors(), 0) << "a test leaked TbTensor handles";
  }
};

const auto* const kRegistered = ::testing::AddGlobalTestEnvironment(new NoLeakedHandles);

}  // namespace
