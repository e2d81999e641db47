// Uses the installed C++ header and shared library.
#include <tensorbridge.hpp>

#include <cstdio>
#include <vector>

int main() {
  std::vector<float> hwc(4 * 5 * 3, 1.0f);
  tb::Tensor image = tb::Tensor::wrap(hwc.data(), tb::Device::cpu(), tb::dtype<float>(), {4, 5, 3}, "HWC");
  tb::Tensor chw = tb::Tensor::alloc(tb::Device::cpu(), tb::dtype<float>(), {3, 4, 5}, "CHW");
  tb::reformat(image, chw);
  std::printf("cmake consumer: tensorbridge %s, reformatted to %s\n", tb_version_string(), chw.layout().c_str());
  return chw.shape()[0] == 3 ? 0 : 1;
}
