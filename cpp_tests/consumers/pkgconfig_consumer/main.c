/* Uses the installed C header and library found through pkg-config (or the static library). */
#include <tensorbridge.h>

#include <stdio.h>

int main(void) {
  float data[6] = {0};
  const int64_t shape[] = {2, 3};
  const TbDevice cpu = {TB_DEVICE_CPU, 0};
  TbTensor* t = NULL;
  if (tb_tensor_wrap(data, cpu, TB_DTYPE_FLOAT32, 2, shape, NULL, "HW", false, NULL, NULL, &t) != TB_SUCCESS) {
    fprintf(stderr, "%s\n", tb_last_error_message());
    return 1;
  }
  tb_tensor_release(t);
  printf("C consumer: tensorbridge %s\n", tb_version_string());
  return 0;
}
