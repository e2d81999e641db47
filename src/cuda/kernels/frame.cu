// ---- YUV 4:2:0 frames (NV12, I420, P016/P010) -> RGB or BGR, one pass ----------------------
//
// Appended to layout.cu (its element types, from_float and vector access). Defines:
//   TB_FRAME            build this kernel
//   TB_TIN              tb_u8 (NV12, I420) or tb_u16 (P016, P010)
//   TB_TOUT             output element type
//   TB_FRAME_Y_VECTOR   1: each thread's eight luma samples of a row are one aligned load
//   TB_FRAME_STORE      1: planar rows (x stride = one element), 2: interleaved pixels (x stride
//                       = three elements, channel stride = one), 0: any strides; 1 and 2 store
//                       a thread's eight pixels of a row with the widest aligned accesses
//
// Each thread converts eight pixels of two rows (one row of chroma samples): it reads every
// input byte once and writes every output byte once. src/ops/frame.rs is the CPU twin and does
// the same float32 operations in the same order, so both give the same bytes.

#ifdef TB_FRAME
#define TB_FRAME_X 8  // pixels per thread along a row

struct FrameParams {
  const unsigned char* y;  // luma of frame 0, row 0, column 0
  const unsigned char* u;  // Cb sample (0, 0)
  const unsigned char* v;  // Cr sample (0, 0)
  unsigned char* dst;      // output (0, channel 0, 0, 0)
  i64 batch, height, width;
  i64 y_n, y_row, y_col;   // luma byte strides
  i64 c_n, c_row, c_col;   // chroma byte strides (shared by Cb and Cr)
  i64 d_n, d_c, d_y, d_x;  // output byte strides
  // R = y_gain·Y + r_v·Cr + r_0; G = y_gain·Y + g_u·Cb + g_v·Cr + g_0; B = y_gain·Y + b_u·Cb + b_0
  float y_gain, r_v, g_u, g_v, b_u, r_0, g_0, b_0;
  int blue_first;          // channel 0 is blue (BGR)
  Affine affine;           // per output channel, after clamping to [0, 255]
};

__device__ __forceinline__ float frame_sample(const unsigned char* p) { return to_float(load<TB_TIN>(p)); }

__device__ __forceinline__ float clamp255(float x) { return fminf(fmaxf(x, 0.0f), 255.0f); }

__device__ __forceinline__ TB_TOUT frame_out(float x, int channel, const Affine& a) {
  const int c = a.channels == 1 ? 0 : channel;
  return from_float<TB_TOUT>(fmaf(x, a.scale[c], a.offset[c]));
}

extern "C" __global__ void tb_frame_to_rgb(const FrameParams p) {
  const i64 chunks = (p.width + TB_FRAME_X - 1) / TB_FRAME_X;
  const i64 pairs = p.height / 2;
  const i64 total = p.batch * pairs * chunks;
  for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x) {
    const i64 chunk = i % chunks, pair = (i / chunks) % pairs, n = i / (chunks * pairs);
    const i64 x0 = chunk * TB_FRAME_X;
    const bool full = x0 + TB_FRAME_X <= p.width;
    // The chroma terms of the four sample columns this thread covers.
    float cr[TB_FRAME_X / 2], cg[TB_FRAME_X / 2], cb[TB_FRAME_X / 2];
    const i64 chroma = n * p.c_n + pair * p.c_row + (x0 / 2) * p.c_col;
#pragma unroll
    for (int k = 0; k < TB_FRAME_X / 2; ++k) {
      if (full || x0 + 2 * k < p.width) {
        const float u = frame_sample(p.u + chroma + k * p.c_col), v = frame_sample(p.v + chroma + k * p.c_col);
        cr[k] = fmaf(p.r_v, v, p.r_0);
        cg[k] = fmaf(p.g_v, v, fmaf(p.g_u, u, p.g_0));
        cb[k] = fmaf(p.b_u, u, p.b_0);
      } else {
        cr[k] = cg[k] = cb[k] = 0.0f;
      }
    }
#pragma unroll
    for (int row = 0; row < 2; ++row) {
      const i64 line = 2 * pair + row;
      const unsigned char* yp = p.y + n * p.y_n + line * p.y_row + x0 * p.y_col;
      float luma[TB_FRAME_X];
#if TB_FRAME_Y_VECTOR
      if (full) {
        Bytes<TB_FRAME_X * sizeof(TB_TIN)> bytes;
        load_bytes(bytes, yp);
#pragma unroll
        for (int j = 0; j < TB_FRAME_X; ++j) luma[j] = to_float(get<TB_TIN>(bytes.b + j * sizeof(TB_TIN)));
      } else
#endif
      {
#pragma unroll
        for (int j = 0; j < TB_FRAME_X; ++j) luma[j] = (full || x0 + j < p.width) ? frame_sample(yp + j * p.y_col) : 0.0f;
      }
      TB_TOUT out[3][TB_FRAME_X];
#pragma unroll
      for (int j = 0; j < TB_FRAME_X; ++j) {
        const float r = clamp255(fmaf(p.y_gain, luma[j], cr[j / 2]));
        const float g = clamp255(fmaf(p.y_gain, luma[j], cg[j / 2]));
        const float b = clamp255(fmaf(p.y_gain, luma[j], cb[j / 2]));
        out[0][j] = frame_out(p.blue_first ? b : r, 0, p.affine);
        out[1][j] = frame_out(g, 1, p.affine);
        out[2][j] = frame_out(p.blue_first ? r : b, 2, p.affine);
      }
      unsigned char* dp = p.dst + n * p.d_n + line * p.d_y + x0 * p.d_x;
      constexpr int E = sizeof(TB_TOUT);
#if TB_FRAME_STORE == 1
      if (full) {
#pragma unroll
        for (int c = 0; c < 3; ++c) {
          Bytes<TB_FRAME_X * E> bytes;
#pragma unroll
          for (int j = 0; j < TB_FRAME_X; ++j) put<TB_TOUT>(bytes.b + j * E, out[c][j]);
          store_bytes(dp + c * p.d_c, bytes);
        }
        continue;
      }
#elif TB_FRAME_STORE == 2
      if (full) {
        Bytes<3 * TB_FRAME_X * E> bytes;
#pragma unroll
        for (int j = 0; j < TB_FRAME_X; ++j) {
#pragma unroll
          for (int c = 0; c < 3; ++c) put<TB_TOUT>(bytes.b + (3 * j + c) * E, out[c][j]);
        }
        store_bytes(dp, bytes);
        continue;
      }
#endif
#pragma unroll
      for (int j = 0; j < TB_FRAME_X; ++j) {
        if (full || x0 + j < p.width) {
#pragma unroll
          for (int c = 0; c < 3; ++c) store<TB_TOUT>(dp + j * p.d_x + c * p.d_c, out[c][j]);
        }
      }
    }
  }
}
#endif
