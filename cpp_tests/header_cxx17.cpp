// The header must compile as C++17 with -Wall -Wextra -Wpedantic -Werror, and its macros (dtype
// literals, layout names) must be usable there.
#include <tensorbridge.h>

#include <cstdio>

int main() {
  constexpr TbDataType u8 = TB_DTYPE_UINT8;
  static_assert(sizeof(TbDataType) == 4, "TbDataType must match DLPack's DLDataType");
  static_assert(sizeof(TbDevice) == 8, "TbDevice must match DLPack's DLDevice");
  TbLayout layout{};
  if (tb_layout_parse(TB_LAYOUT_NHWC, &layout) != TB_SUCCESS || u8.bits != 8) return 1;
  std::printf("C++17 header OK, library %s\n", tb_version_string());
  return 0;
}
