/* The header must compile as C99 with -Wall -Wextra -Wpedantic -Werror; this program also checks
 * that the library it is linked with matches the header's version. */
#include <tensorbridge.h>

#include <stdio.h>

int main(void) {
  const TbDataType f32 = TB_DTYPE_FLOAT32;
  const TbDevice cpu = {TB_DEVICE_CPU, 0};
  const int64_t shape[] = {2, 3};
  float data[6] = {0};
  TbTensor* t = NULL;
  TbTensorInfo info;
  uint32_t expected = TB_VERSION_MAJOR * 10000u + TB_VERSION_MINOR * 100u + TB_VERSION_PATCH;
  if (tb_version() != expected) {
    fprintf(stderr, "header %u != library %u\n", expected, tb_version());
    return 1;
  }
  if (tb_tensor_wrap(data, cpu, f32, 2, shape, NULL, TB_LAYOUT_HW, false, NULL, NULL, &t) !=
          TB_SUCCESS ||
      tb_tensor_info(t, &info) != TB_SUCCESS || info.strides[0] != 12) {
    fprintf(stderr, "wrap failed: %s\n", tb_last_error_message());
    return 1;
  }
  tb_tensor_release(t);
  printf("C99 header OK, library %s\n", tb_version_string());
  return 0;
}
