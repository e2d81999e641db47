// ---- YUV 4:2:0 frames (NV12, I420, P016/P010) -> RGB or BGR, one pass ----------------------
//
// Appended to layout.cu (its element types, affine_out and vector access). Defines:
//   TB_FRAME            build this kernel
//   TB_TIN              tb_u8 (NV12, I420) or tb_u16 (P016, P010)
//   TB_TOUT             output element type
//   TB_FRAME_X          pixels of a row per thread (4, 8 or 16)
//   TB_FRAME_ROWS       rows per thread: 2 (a row pair sharing its chroma samples) or 1
//   TB_FRAME_Y_VECTOR   1: each thread's luma samples of a row are one aligned load
//   TB_FRAME_C_VECTOR   1: NV12/P016 chroma: each thread's (Cb, Cr) pairs are one aligned load
//   TB_FRAME_STORE      1: planar rows (x stride = one element), 2: interleaved pixels (x stride
//                       = three elements, channel stride = one), 0: any strides; 1 and 2 store
//                       a thread's pixels of a row with the widest aligned accesses
//   TB_FRAME_STREAMING  1: 16-byte stores are streaming (st.global.cs: written once, not re-read)
//
// Each thread converts TB_FRAME_X pixels of TB_FRAME_ROWS rows: the kernel reads every input
// byte once and writes every output byte once (with one row a thread, a chroma sample is read
// by the threads of both its rows, from cache). src/ops/frame.rs is the CPU twin and does
// the same float32 operations in the same order, so both give the same bytes.

#ifdef TB_FRAME
#ifndef TB_FRAME_X
#define TB_FRAME_X 8
#endif
#ifndef TB_FRAME_ROWS
#define TB_FRAME_ROWS 2
#endif

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

// Stores N bytes at p (aligned for the widest access N allows): streaming 16-byte stores when
// TB_FRAME_STREAMING is set, else store_bytes.
template <int N> __device__ __forceinline__ void frame_store(unsigned char* p, const Bytes<N>& in) {
#if TB_FRAME_STREAMING
  if (N % 16 == 0) {
#pragma unroll
    for (int i = 0; i < N; i += 16) __stcs((uint4*)(p + i), *(const uint4*)(in.b + i));
    return;
  }
#endif
  store_bytes(p, in);
}

extern "C" __global__ void tb_frame_to_rgb(const FrameParams p) {
  const i64 chunks = (p.width + TB_FRAME_X - 1) / TB_FRAME_X;
  const i64 groups = p.height / TB_FRAME_ROWS;  // row groups of a frame
  const i64 total = p.batch * groups * chunks;
  for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < total; i += (i64)gridDim.x * blockDim.x) {
    i64 chunk, group, n;
    if (total <= 0xffffffffll) {  // 32-bit division: several times cheaper than 64-bit
      const unsigned int u = (unsigned int)i, per_frame = (unsigned int)(chunks * groups);
      chunk = u % (unsigned int)chunks;
      group = (u / (unsigned int)chunks) % (unsigned int)groups;
      n = u / per_frame;
    } else {
      chunk = i % chunks, group = (i / chunks) % groups, n = i / (chunks * groups);
    }
    const i64 x0 = chunk * TB_FRAME_X;
    const bool full = x0 + TB_FRAME_X <= p.width;
    // The chroma terms of the sample columns this thread covers.
    float cr[TB_FRAME_X / 2], cg[TB_FRAME_X / 2], cb[TB_FRAME_X / 2];
    float cu[TB_FRAME_X / 2], cv[TB_FRAME_X / 2];
    const i64 chroma = n * p.c_n + (group * TB_FRAME_ROWS / 2) * p.c_row + (x0 / 2) * p.c_col;
#if TB_FRAME_C_VECTOR
    if (full) {  // NV12: the thread's (Cb, Cr) pairs are one aligned load
      Bytes<TB_FRAME_X * sizeof(TB_TIN)> bytes;
      load_bytes(bytes, p.u + chroma);
#pragma unroll
      for (int k = 0; k < TB_FRAME_X / 2; ++k) {
        cu[k] = to_float(get<TB_TIN>(bytes.b + (2 * k) * sizeof(TB_TIN)));
        cv[k] = to_float(get<TB_TIN>(bytes.b + (2 * k + 1) * sizeof(TB_TIN)));
      }
    } else
#endif
    {
#pragma unroll
      for (int k = 0; k < TB_FRAME_X / 2; ++k) {
        const bool inside = full || x0 + 2 * k < p.width;
        cu[k] = inside ? frame_sample(p.u + chroma + k * p.c_col) : 0.0f;
        cv[k] = inside ? frame_sample(p.v + chroma + k * p.c_col) : 0.0f;
      }
    }
#pragma unroll
    for (int k = 0; k < TB_FRAME_X / 2; ++k) {
      cr[k] = fmaf(p.r_v, cv[k], p.r_0);
      cg[k] = fmaf(p.g_v, cv[k], fmaf(p.g_u, cu[k], p.g_0));
      cb[k] = fmaf(p.b_u, cu[k], p.b_0);
    }
#pragma unroll
    for (int row = 0; row < TB_FRAME_ROWS; ++row) {
      const i64 line = group * TB_FRAME_ROWS + row;
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
        out[0][j] = affine_out(p.blue_first ? b : r, 0, p.affine);
        out[1][j] = affine_out(g, 1, p.affine);
        out[2][j] = affine_out(p.blue_first ? r : b, 2, p.affine);
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
          frame_store(dp + c * p.d_c, bytes);
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
        frame_store(dp, bytes);
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
