// tensorbridge layout kernels, compiled at run time by NVRTC (no headers needed).
//
// Every kernel moves elements from a strided source to a strided destination and converts each
// one with `convert(x, channel)`: a raw copy for reformat/copy (TIN and TOUT are the same
// storage type), or dtype change + per-channel affine y = fma(x, scale[c], offset[c]) for
// tb_convert. Compile-time parameters (-D):
//   TB_TIN, TB_TOUT     element storage types (tb_u8 … tb_f32, tb_f8e4m3fn, tb_f8e5m2, tb_raw8 …)
//   TB_AFFINE           1 when the per-channel affine is applied
//   TB_DEINTERLEAVE, TB_INTERLEAVE   which register kernel to build (one per program, so a cold
//                       first call compiles only what it runs)
//   TB_SMALL            channel count of the interleave/deinterleave kernels (1..8)
//   TB_VEC              elements per thread along the long dimension in those kernels, chosen on
//                       the host so that each thread's stores are single 16-byte accesses
//   TB_STAGE, TB_THREADS  move the register kernels' wide side (64-128 bytes a thread) through
//                       the warp (warp_load / warp_store below); TB_THREADS is the block size
//   TB_RANK             rank of the general kernel
//   TB_ELEMENTWISE      build the same-order element-wise kernel (one dense run, e.g. a
//                       same-layout tb_convert); TB_VEC, TB_ILP as above, TB_ALIGN_IN and
//                       TB_ALIGN_OUT the alignment in bytes (1..16) of every chunk on each side,
//                       TB_TABLE=<rows> to convert 1-byte inputs through a per-block lookup
//                       table of `rows` channels × 256 results, TB_TABLE_COPIES its copies

typedef unsigned char tb_u8;
typedef signed char tb_i8;
typedef unsigned short tb_u16;
typedef short tb_i16;
typedef float tb_f32;
typedef unsigned char tb_raw1;
typedef unsigned short tb_raw2;
typedef unsigned int tb_raw4;
// 8- and 16-byte raw elements need only 4-byte alignment: complex64 is 4-byte aligned.
struct tb_raw8 { unsigned int w[2]; };
struct tb_raw16 { unsigned int w[4]; };
struct tb_f16 { unsigned short bits; };
struct tb_bf16 { unsigned short bits; };
struct tb_f8e4m3fn { unsigned char bits; };
struct tb_f8e5m2 { unsigned char bits; };

typedef long long i64;

#define TB_MAX_RANK 15
#define TB_MAX_CHANNELS 64

struct Affine {
  float scale[TB_MAX_CHANNELS];
  float offset[TB_MAX_CHANNELS];
  int channels;  // 1 = broadcast one value
  // With TB_REORDER=1 (tb_convert_channels): output channel k reads source channel order[k];
  // inverse[r] is the output channel of source channel r when the order is a permutation.
  unsigned char order[TB_MAX_CHANNELS];
  unsigned char inverse[TB_MAX_CHANNELS];
};
#ifndef TB_REORDER
#define TB_REORDER 0
#endif

// Programmatic dependent launch (sm_90 and later): the host lets a layout kernel's grid start
// while the stream's previous kernel finishes, so its blocks are placed early; each block waits
// here, before its first memory access, until that kernel has completed and its writes are
// visible. Without the launch attribute (or before sm_90) this returns at once.
__device__ __forceinline__ void wait_for_prior_grids() {
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// ---- element conversion -------------------------------------------------------------------

__device__ __forceinline__ float to_float(tb_u8 x) { return (float)x; }
__device__ __forceinline__ float to_float(tb_i8 x) { return (float)x; }
__device__ __forceinline__ float to_float(tb_u16 x) { return (float)x; }
__device__ __forceinline__ float to_float(tb_i16 x) { return (float)x; }
__device__ __forceinline__ float to_float(tb_f32 x) { return x; }
__device__ __forceinline__ float to_float(tb_f16 x) {
  float y;
  asm("cvt.f32.f16 %0, %1;" : "=f"(y) : "h"(x.bits));
  return y;
}
__device__ __forceinline__ float to_float(tb_bf16 x) {
  return __uint_as_float(((unsigned int)x.bits) << 16);
}

// float8 as PyTorch's .to(torch.float8_*) and ml_dtypes convert (src/float8.rs is the CPU twin):
// round to nearest even; e4m3fn (bias 7, no infinity) turns overflow, infinities and NaN into
// NaN (0x7f | sign); e5m2 (bias 15, IEEE-like) turns overflow into infinity. Every step is exact
// float32 arithmetic on powers of two, so both sides give the same bytes.
template <int MANTISSA_BITS, int EXPONENT_BIAS, bool HAS_INFINITY> struct Float8Format {
  static constexpr int M = MANTISSA_BITS;
  static constexpr int BIAS = EXPONENT_BIAS;
  static constexpr int EMIN = 1 - EXPONENT_BIAS;  // smallest normal exponent
  static constexpr bool IEEE = HAS_INFINITY;      // all-ones exponent: infinity and NaN
};
typedef Float8Format<3, 7, false> E4M3FN;
typedef Float8Format<2, 15, true> E5M2;

__device__ __forceinline__ float pow2f(int exponent) {  // 2^exponent, -126 <= exponent <= 127
  return __uint_as_float((unsigned int)(exponent + 127) << 23);
}

template <typename F> __device__ __forceinline__ unsigned char float8_encode(float x) {
  constexpr int M = F::M, BIAS = F::BIAS;
  constexpr bool IEEE = F::IEEE;
  const float max_finite = IEEE ? 57344.0f : 448.0f;
  const unsigned char overflow = IEEE ? 0x7c : 0x7f;
  const unsigned char sign = (__float_as_uint(x) >> 24) & 0x80;
  const float m = fabsf(x);
#if __CUDA_ARCH__ >= 890
  // The hardware conversion (sm_89 and later) rounds to nearest even as the steps below do, but
  // saturates where these overflow: it serves the magnitudes that round to a finite value (up
  // to the midpoint above the largest finite value, which rounds down to even for e4m3fn and up
  // for e5m2). NaN fails the comparison and takes the steps below.
  if (IEEE ? m < 61440.0f : m <= 464.0f) {
    unsigned short pair;
    if (IEEE) asm("cvt.rn.satfinite.e5m2x2.f32 %0, %1, %2;" : "=h"(pair) : "f"(0.0f), "f"(x));
    else asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(pair) : "f"(0.0f), "f"(x));
    return (unsigned char)(pair & 0xff);
  }
#endif
  if (m != m) return sign | 0x7f;
  if (m == 0.0f) return sign;
  if (m > max_finite * 2.0f) return sign | overflow;  // infinity too; keeps the exponent in range
  int e = (int)((__float_as_uint(m) >> 23) & 0xff) - 127;
  if (e < F::EMIN) e = F::EMIN;
  const float q = rintf(m * pow2f(M - e));  // units of the spacing around m: exact scaling
  const float r = q * pow2f(e - M);
  if (r > max_finite) return sign | overflow;
  const int er = (int)((__float_as_uint(r) >> 23) & 0xff) - 127;
  if (r == 0.0f || er < F::EMIN) return sign | (unsigned char)q;  // zero or subnormal: q is the mantissa
  const unsigned int mantissa = (__float_as_uint(r) >> (23 - M)) & ((1u << M) - 1);
  return sign | (unsigned char)(((unsigned int)(er + BIAS) << M) | mantissa);
}

template <typename F> __device__ __forceinline__ float float8_decode(unsigned char b) {
  constexpr int M = F::M, BIAS = F::BIAS;
  constexpr bool IEEE = F::IEEE;
#if __CUDA_ARCH__ >= 890
  // The hardware conversion (sm_89 and later) to float16, exact for every float8 value (float16
  // has their exponent range and more mantissa bits), then to float32 (exact); a NaN becomes the
  // steps' quiet NaN with the byte's sign, so both give the same bits.
  unsigned int pair;
  const unsigned short in = b;
  if (IEEE) asm("cvt.rn.f16x2.e5m2x2 %0, %1;" : "=r"(pair) : "h"(in));
  else asm("cvt.rn.f16x2.e4m3x2 %0, %1;" : "=r"(pair) : "h"(in));
  float y;
  asm("cvt.f32.f16 %0, %1;" : "=f"(y) : "h"((unsigned short)(pair & 0xffffu)));
  return y == y ? y : __uint_as_float(0x7fc00000u | ((unsigned int)(b & 0x80) << 24));
#else
  const unsigned int field = b & 0x7f;
  const unsigned int exponent = field >> M, mantissa = field & ((1u << M) - 1);
  float magnitude;
  if (IEEE && exponent == (1u << (7 - M)) - 1) {
    magnitude = mantissa == 0 ? __uint_as_float(0x7f800000u) : __uint_as_float(0x7fc00000u);
  } else if (!IEEE && field == 0x7f) {
    magnitude = __uint_as_float(0x7fc00000u);
  } else if (exponent == 0) {
    magnitude = (float)mantissa * pow2f(F::EMIN - M);
  } else {
    magnitude = __uint_as_float(((exponent - BIAS + 127) << 23) | (mantissa << (23 - M)));
  }
  return (b & 0x80) ? -magnitude : magnitude;
#endif
}

__device__ __forceinline__ float to_float(tb_f8e4m3fn x) { return float8_decode<E4M3FN>(x.bits); }
__device__ __forceinline__ float to_float(tb_f8e5m2 x) { return float8_decode<E5M2>(x.bits); }

template <typename T> __device__ __forceinline__ T from_float(float y);
template <> __device__ __forceinline__ tb_f8e4m3fn from_float<tb_f8e4m3fn>(float y) {
  return tb_f8e4m3fn{float8_encode<E4M3FN>(y)};
}
template <> __device__ __forceinline__ tb_f8e5m2 from_float<tb_f8e5m2>(float y) {
  return tb_f8e5m2{float8_encode<E5M2>(y)};
}
template <> __device__ __forceinline__ tb_f32 from_float<tb_f32>(float y) { return y; }
template <> __device__ __forceinline__ tb_f16 from_float<tb_f16>(float y) {
  tb_f16 h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h.bits) : "f"(y));
  return h;
}
template <> __device__ __forceinline__ tb_bf16 from_float<tb_bf16>(float y) {
  tb_bf16 h;
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h.bits) : "f"(y));
  return h;
}
template <> __device__ __forceinline__ tb_u8 from_float<tb_u8>(float y) {
  // Round half to even, saturate to [0, 255]; NaN becomes 0.
  float r = rintf(y);
  r = fminf(fmaxf(r, 0.0f), 255.0f);
  return (tb_u8)(r == r ? r : 0.0f);
}

#if TB_AFFINE
// y = fma(x, scale[c], offset[c]) written as TB_TOUT (one coefficient pair broadcasts).
__device__ __forceinline__ TB_TOUT affine_out(float x, int channel, const Affine& a) {
  int c = a.channels == 1 ? 0 : channel;
  return from_float<TB_TOUT>(fmaf(x, a.scale[c], a.offset[c]));
}
__device__ __forceinline__ TB_TOUT convert(TB_TIN x, int channel, const Affine& a) {
  return affine_out(to_float(x), channel, a);
}
#else
__device__ __forceinline__ TB_TOUT convert(TB_TIN x, int, const Affine&) { return x; }
#endif

// ---- vector memory access -------------------------------------------------------------------

// Loads / stores N bytes (a multiple of UNIT, the largest power of two ≤ 16 dividing N, which
// the caller guarantees as the alignment) through the widest accesses that alignment allows.
template <int N> struct __align__(16) Bytes { unsigned char b[N]; };

template <int N> __device__ __forceinline__ constexpr int unit_of() {
  return (N % 16 == 0) ? 16 : (N % 8 == 0) ? 8 : (N % 4 == 0) ? 4 : (N % 2 == 0) ? 2 : 1;
}

// A, when given, caps the access width at the alignment the caller can guarantee.
template <int N, int A = 16> __device__ __forceinline__ void load_bytes(Bytes<N>& out, const unsigned char* p) {
  constexpr int U = unit_of<N>() < A ? unit_of<N>() : A;
#pragma unroll
  for (int i = 0; i < N; i += U) {
    if (U == 16) *(uint4*)(out.b + i) = __ldg((const uint4*)(p + i));
    else if (U == 8) *(uint2*)(out.b + i) = __ldg((const uint2*)(p + i));
    else if (U == 4) *(unsigned int*)(out.b + i) = __ldg((const unsigned int*)(p + i));
    else if (U == 2) *(unsigned short*)(out.b + i) = *(const unsigned short*)(p + i);
    else out.b[i] = p[i];
  }
}

template <int N, int A = 16> __device__ __forceinline__ void store_bytes(unsigned char* p, const Bytes<N>& in) {
  constexpr int U = unit_of<N>() < A ? unit_of<N>() : A;
#pragma unroll
  for (int i = 0; i < N; i += U) {
    if (U == 16) *(uint4*)(p + i) = *(const uint4*)(in.b + i);
    else if (U == 8) *(uint2*)(p + i) = *(const uint2*)(in.b + i);
    else if (U == 4) *(unsigned int*)(p + i) = *(const unsigned int*)(in.b + i);
    else if (U == 2) *(unsigned short*)(p + i) = *(const unsigned short*)(in.b + i);
    else p[i] = in.b[i];
  }
}

// Element access inside a register buffer (constant offsets: resolved to register moves).
template <typename T> __device__ __forceinline__ T get(const unsigned char* bytes) {
  T v;
  unsigned char* out = (unsigned char*)&v;
#pragma unroll
  for (int i = 0; i < (int)sizeof(T); ++i) out[i] = bytes[i];
  return v;
}
template <typename T> __device__ __forceinline__ void put(unsigned char* bytes, T v) {
  const unsigned char* in = (const unsigned char*)&v;
#pragma unroll
  for (int i = 0; i < (int)sizeof(T); ++i) bytes[i] = in[i];
}

// ---- warp-staged runs ------------------------------------------------------------------------
// A thread's run of N bytes (N a multiple of 16, 16-byte aligned) moved by its whole warp when N
// is large: accessed directly, instruction k of every lane touches piece k of its own run, N
// bytes away from its neighbour's, so each instruction reaches 32 distinct sectors and fills part
// of each (stores of 64 bytes or more a thread ran at 0.55-0.88 of copy on the H100). Staged, the
// warp's instruction k moves pieces 32k .. 32k+31 of the warp's runs in order: consecutive lanes
// touch consecutive 16-byte pieces (one contiguous span when the lanes' runs are). Each lane's
// address reaches the others by shuffle, so the runs may lie anywhere; a lane whose run is not
// whole (`whole` false) has none of its pieces moved. Every lane of the warp must call these
// together. TB_STAGE (host-set: 1) turns them on; TB_THREADS is the block size.
#ifdef TB_STAGE
// A grid-stride loop over `first` that every lane of a warp runs as long as any lane has work.
#define TB_WARP_FIRST(first) ((first) - (i64)(threadIdx.x & 31))
// Declares `area`, the calling warp's part of a block-wide staging area for runs of N bytes.
#define TB_STAGING_AREA(N)                                   \
  __shared__ uint4 staging[TB_THREADS * ((N) / 16)];         \
  uint4* area = Staged<(N)>::area(staging)
template <int N> struct Staged {
  static constexpr int P = N / 16;  // 16-byte pieces per run
  static_assert(N % 16 == 0, "staged runs are whole 16-byte pieces");
  // Shared-memory slot of piece q of lane c's run: the pieces XOR-permuted within each run so
  // that the eight lanes of one 128-byte phase land on distinct slots modulo 8 (banks) both when
  // a lane walks its own run and when the warp walks the runs in order.
  static __device__ __forceinline__ int slot(int c, int q) {
    const int spread = (P & (P - 1)) == 0 ? ((c * P) >> 3) % P : 0;
    return c * P + (q ^ spread);
  }
  // This warp's part of the block's staging area (TB_THREADS / 32 warps × 32 runs × P pieces).
  static __device__ __forceinline__ uint4* area(uint4* block_area) {
    return block_area + (threadIdx.x >> 5) * 32 * P;
  }
};

template <int N>
__device__ __forceinline__ void warp_load(Bytes<N>& mine, const unsigned char* src, bool whole, uint4* area) {
  constexpr int P = Staged<N>::P;
  const int lane = threadIdx.x & 31;
  const unsigned int wholes = __ballot_sync(0xffffffffu, whole);
  const unsigned long long address = (unsigned long long)src;
  uint4 piece[P];
#pragma unroll
  for (int k = 0; k < P; ++k) {  // every load first: P 16-byte loads in flight per lane
    const int c = (k * 32 + lane) / P, q = (k * 32 + lane) % P;
    const unsigned long long base = __shfl_sync(0xffffffffu, address, c);
    if ((wholes >> c) & 1) piece[k] = __ldg((const uint4*)(base + q * 16));
  }
#pragma unroll
  for (int k = 0; k < P; ++k) {
    const int c = (k * 32 + lane) / P, q = (k * 32 + lane) % P;
    if ((wholes >> c) & 1) area[Staged<N>::slot(c, q)] = piece[k];
  }
  __syncwarp();
  if (whole) {
#pragma unroll
    for (int q = 0; q < P; ++q) *(uint4*)(mine.b + 16 * q) = area[Staged<N>::slot(lane, q)];
  }
  __syncwarp();
}

template <int N>
__device__ __forceinline__ void warp_store(unsigned char* dst, const Bytes<N>& mine, bool whole, uint4* area) {
  constexpr int P = Staged<N>::P;
  const int lane = threadIdx.x & 31;
  const unsigned int wholes = __ballot_sync(0xffffffffu, whole);
  const unsigned long long address = (unsigned long long)dst;
  if (whole) {
#pragma unroll
    for (int q = 0; q < P; ++q) area[Staged<N>::slot(lane, q)] = *(const uint4*)(mine.b + 16 * q);
  }
  __syncwarp();
#pragma unroll
  for (int k = 0; k < P; ++k) {
    const int c = (k * 32 + lane) / P, q = (k * 32 + lane) % P;
    const unsigned long long base = __shfl_sync(0xffffffffu, address, c);
    if ((wholes >> c) & 1) *(uint4*)(base + q * 16) = area[Staged<N>::slot(c, q)];
  }
  __syncwarp();
}
#else
#define TB_WARP_FIRST(first) (first)
#endif

// Element access in global or shared memory (addresses aligned for T: checked at wrap time).
template <typename T> __device__ __forceinline__ T load(const unsigned char* p) { return *(const T*)p; }
template <typename T> __device__ __forceinline__ void store(unsigned char* p, T v) { *(T*)p = v; }

// ---- batched transpose: source [B][S][R] (R innermost) -> destination [B][R][S] -------------
// The batch is up to two dimensions with their own strides on each side: b = outer * inner_batch
// + inner. A second one carries what does not merge into one batch stride, such as rows padded
// to a pitch (NHWC with a padded H stride -> NCHW: batch (N, H), R = C, S = W).

struct TransposeParams {
  const unsigned char* src;
  unsigned char* dst;
  i64 batch, r_extent, s_extent;  // batch: the number of (outer, inner) batch pairs
  i64 src_b, src_s;  // source byte strides of the outer batch dimension and s (r's is sizeof(TIN))
  i64 dst_b, dst_r;  // destination byte strides of the outer batch dimension and r (s's is sizeof(TOUT))
  i64 inner_batch, src_ib, dst_ib;  // the inner batch dimension: extent (1: none), byte strides
  int channel_is_r;  // which transposed dimension is the affine channel: 1 = r, 0 = s, -1 none
  Affine affine;
};

struct Offsets {
  i64 src, dst;
};

// a / n for 0 <= a and 0 < n; in 32 bits when `narrow` (both below 2^32, the same for every
// thread of a launch): a 64-bit division is a long software sequence, and the register kernels
// divide for every chunk of 16 bytes or less.
__device__ __forceinline__ i64 quotient(i64 a, i64 n, bool narrow) {
  return narrow ? (i64)((unsigned int)a / (unsigned int)n) : a / n;
}

// Byte offsets of batch index b on both sides.
__device__ __forceinline__ Offsets batch_offsets(const TransposeParams& p, i64 b, bool narrow) {
  if (p.inner_batch == 1) return Offsets{b * p.src_b, b * p.dst_b};
  const i64 outer = quotient(b, p.inner_batch, narrow), inner = b - outer * p.inner_batch;
  return Offsets{outer * p.src_b + inner * p.src_ib, outer * p.dst_b + inner * p.dst_ib};
}

// Both register kernels give each thread TB_ILP (host-chosen) chunks spaced by the grid's thread count (so
// every access stays warp-coalesced) and load all of them before converting and storing any:
// more bytes in flight per thread. A chunk cut short by the end of its row goes element by
// element.
#ifndef TB_ILP
#define TB_ILP 1
#endif

#if defined(TB_SMALL) && defined(TB_DEINTERLEAVE)
// Deinterleave, R = TB_SMALL small (e.g. NHWC -> NCHW with C = 3): a chunk is V consecutive s
// (V * R contiguous source elements, loaded with the widest aligned accesses), written as R runs
// of V elements, one per destination row.
extern "C" __global__ void tb_deinterleave(const TransposeParams p) {
  wait_for_prior_grids();
  constexpr int R = TB_SMALL;
  constexpr int V = TB_VEC;
  const i64 chunks = (p.s_extent + V - 1) / V;
  const i64 total = chunks * p.batch;
  const bool narrow = total <= 0xffffffffll;  // every chunk index fits 32 bits
  const i64 threads = (i64)gridDim.x * blockDim.x;
  constexpr int IN = V * R * sizeof(TB_TIN);
#ifdef TB_STAGE
  TB_STAGING_AREA(IN);
#endif
  for (i64 first = blockIdx.x * (i64)blockDim.x + threadIdx.x; TB_WARP_FIRST(first) < total; first += threads * TB_ILP) {
    Bytes<IN> in[TB_ILP];
    bool whole[TB_ILP];
#pragma unroll
    for (int u = 0; u < TB_ILP; ++u) {
      const i64 i = first + u * threads;
      const i64 b = quotient(i, chunks, narrow), s0 = (i - b * chunks) * V;
      whole[u] = i < total && s0 + V <= p.s_extent;
#ifdef TB_STAGE
      warp_load<IN>(in[u], p.src + (whole[u] ? batch_offsets(p, b, narrow).src + s0 * p.src_s : 0), whole[u], area);
#else
      if (whole[u]) load_bytes(in[u], p.src + batch_offsets(p, b, narrow).src + s0 * p.src_s);
#endif
    }
#pragma unroll
    for (int u = 0; u < TB_ILP; ++u) {
      const i64 i = first + u * threads;
      if (i >= total) break;
      const i64 b = quotient(i, chunks, narrow), s0 = (i - b * chunks) * V;
      const Offsets at = batch_offsets(p, b, narrow);
      unsigned char* dst = p.dst + at.dst + s0 * (i64)sizeof(TB_TOUT);
      if (whole[u]) {
#pragma unroll
        for (int r = 0; r < R; ++r) {
          const int row = TB_REORDER ? p.affine.inverse[r] : r;  // the output row of source r
          Bytes<V * sizeof(TB_TOUT)> out;
#pragma unroll
          for (int v = 0; v < V; ++v) {
            TB_TIN x = get<TB_TIN>(in[u].b + (v * R + r) * sizeof(TB_TIN));
            put<TB_TOUT>(out.b + v * sizeof(TB_TOUT), convert(x, p.channel_is_r == 1 ? row : (int)(s0 + v), p.affine));
          }
          store_bytes(dst + row * p.dst_r, out);
        }
      } else {
        for (i64 s = s0; s < p.s_extent; ++s) {
          for (int r = 0; r < R; ++r) {
            const int row = TB_REORDER ? p.affine.inverse[r] : r;
            TB_TIN x = load<TB_TIN>(p.src + at.src + s * p.src_s + r * (i64)sizeof(TB_TIN));
            store<TB_TOUT>(p.dst + at.dst + row * p.dst_r + s * (i64)sizeof(TB_TOUT),
                           convert(x, p.channel_is_r == 1 ? row : (int)s, p.affine));
          }
        }
      }
    }
  }
}
#endif

#if defined(TB_SMALL) && defined(TB_INTERLEAVE)
// One whole interleave chunk: V elements from each of the S source rows, interleaved.
template <int S, int V>
__device__ __forceinline__ void interleave_chunk(Bytes<V * S * sizeof(TB_TOUT)>& out, const Bytes<V * sizeof(TB_TIN)> (&in)[S],
                                                 i64 r0, const TransposeParams& p) {
#pragma unroll
  for (int s = 0; s < S; ++s) {
#pragma unroll
    for (int v = 0; v < V; ++v) {
      TB_TIN x = get<TB_TIN>(in[s].b + v * sizeof(TB_TIN));
      put<TB_TOUT>(out.b + (v * S + s) * sizeof(TB_TOUT), convert(x, p.channel_is_r == 1 ? (int)(r0 + v) : s, p.affine));
    }
  }
}

// Interleave, S = TB_SMALL small (e.g. NCHW -> NHWC with C = 3): a chunk is V consecutive r,
// loaded as V elements from each of the S source rows and written as V * S contiguous
// destination elements.
extern "C" __global__ void tb_interleave(const TransposeParams p) {
  wait_for_prior_grids();
  constexpr int S = TB_SMALL;
  constexpr int V = TB_VEC;
  const i64 chunks = (p.r_extent + V - 1) / V;
  const i64 total = chunks * p.batch;
  const bool narrow = total <= 0xffffffffll;  // every chunk index fits 32 bits
  const i64 threads = (i64)gridDim.x * blockDim.x;
  constexpr int OUT = V * S * sizeof(TB_TOUT);
#ifdef TB_STAGE
  TB_STAGING_AREA(OUT);
#endif
  for (i64 first = blockIdx.x * (i64)blockDim.x + threadIdx.x; TB_WARP_FIRST(first) < total; first += threads * TB_ILP) {
    Bytes<V * sizeof(TB_TIN)> in[TB_ILP][S];
    bool whole[TB_ILP];
#pragma unroll
    for (int u = 0; u < TB_ILP; ++u) {
      const i64 i = first + u * threads;
      const i64 b = quotient(i, chunks, narrow), r0 = (i - b * chunks) * V;
      whole[u] = i < total && r0 + V <= p.r_extent;
      if (whole[u]) {
        const unsigned char* src = p.src + batch_offsets(p, b, narrow).src + r0 * (i64)sizeof(TB_TIN);
#pragma unroll
        for (int s = 0; s < S; ++s) load_bytes(in[u][s], src + (TB_REORDER ? p.affine.order[s] : s) * p.src_s);
      }
    }
#pragma unroll
    for (int u = 0; u < TB_ILP; ++u) {
      const i64 i = first + u * threads;
#ifndef TB_STAGE
      if (i >= total) break;
#endif
      const i64 b = quotient(i, chunks, narrow), r0 = (i - b * chunks) * V;
      const Offsets at = batch_offsets(p, b, narrow);
#ifdef TB_STAGE
      Bytes<OUT> out;
      if (whole[u]) interleave_chunk<S, V>(out, in[u], r0, p);
      warp_store<OUT>(p.dst + (whole[u] ? at.dst + r0 * p.dst_r : 0), out, whole[u], area);
      if (i < total && !whole[u]) {
#else
      if (whole[u]) {
        Bytes<OUT> out;
        interleave_chunk<S, V>(out, in[u], r0, p);
        store_bytes(p.dst + at.dst + r0 * p.dst_r, out);
      } else {
#endif
        for (i64 r = r0; r < p.r_extent; ++r) {
          for (int s = 0; s < S; ++s) {
            const int row = TB_REORDER ? p.affine.order[s] : s;  // output channel s's source row
            TB_TIN x = load<TB_TIN>(p.src + at.src + row * p.src_s + r * (i64)sizeof(TB_TIN));
            store<TB_TOUT>(p.dst + at.dst + r * p.dst_r + s * (i64)sizeof(TB_TOUT),
                           convert(x, p.channel_is_r == 1 ? (int)r : s, p.affine));
          }
        }
      }
    }
  }
}
#endif

#ifdef TB_TILE_R
// Tiled transpose for large R and S (e.g. C = 64), raw copies only (TIN == TOUT). A tile of
// TB_TILE_S source rows (s) by TB_TILE_R elements (r), up to 16 KiB (the host chooses the sides; one
// block a tile), goes through shared memory: its source rows arrive as 16-byte copies — on sm_80
// and later asynchronous ones (cp.async) straight into shared memory, holding no registers, so
// four blocks fit an SM; through a register before — and its destination rows leave as 16-byte
// vectors. Shared memory holds each tile row as 16-byte chunks whose order is XOR-swizzled by
// the row (see Tile), so both the copies in and the gathers out spread over the banks. Partial
// tiles at the edges go element by element through the same addressing.
//
// Measured on the H100 (2026-11-26, bench/RESULTS.md): C = 64 transposes of every item size at
// 0.96-0.99 of copy (0.95-0.97 at about 40 MB before dependent launches); the same kernel walking several tiles per block
// over a grid of resident blocks, with the next tile's copies in flight (two or three stages),
// ran at 0.83-0.92; 8 KiB and 32 KiB tiles lost to 16 KiB, and so did 8 KiB tiles in 128-thread
// blocks, eight an SM; five blocks an SM (48 registers) lost for 1- and 4-byte items (spills);
// loads through registers instead of cp.async ran as fast.
constexpr int TILE_THREADS = 256;
// Blocks per SM the register budget must allow (64 registers a thread).
constexpr int TILE_MIN_BLOCKS = 4;

// Byte permute: result byte i is byte selector[4i..4i+3] of the 8 bytes {b, a} (a = bytes 0-3).
__device__ __forceinline__ unsigned int prmt(unsigned int a, unsigned int b, unsigned int selector) {
  unsigned int d;
  asm("prmt.b32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(selector));
  return d;
}

// 16 bytes from global to shared memory: asynchronous on sm_80 and later (completed by
// copies_wait), through a register before.
__device__ __forceinline__ void copy_async16(void* shared, const void* global) {
#if __CUDA_ARCH__ >= 800
  unsigned int address;
  asm("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }" : "=r"(address) : "l"(shared));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(address), "l"(global) : "memory");
#else
  *(uint4*)shared = __ldg((const uint4*)global);
#endif
}
// Closes the group of copies issued since the last call.
__device__ __forceinline__ void copies_commit() {
#if __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}
// Waits until at most N of this thread's groups are incomplete.
template <int N> __device__ __forceinline__ void copies_wait() {
#if __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
#endif
}

template <int E, int TR, int TS>
struct Tile {
  static constexpr int VEC = 16 / E;                    // elements per 16-byte vector
  static constexpr int WORDS = TR * E / 4;              // words per tile row
  static constexpr int CHUNKS = WORDS / 4;              // 16-byte chunks per tile row (a power of two)
  static constexpr int OUT_VECTORS = TS / VEC;          // 16-byte vectors per destination row
  static constexpr int BYTES = TS * TR * E;
  // What the copies and gathers assume: whole 16-byte vectors along both sides.
  static_assert(TR * E % 16 == 0 && TS % VEC == 0, "tile sides hold whole 16-byte vectors");
  // Chunk c of row j sits at chunk c ^ swizzle(j): rows VEC apart (the rows one destination
  // vector gathers from) get different chunk orders, so the 8 rows a quarter-warp reads at once
  // fall on distinct banks.
  static __device__ __forceinline__ int swizzle(int j) { return (j / VEC) & (CHUNKS - 1); }
  // Byte address of element e of tile row j.
  static __device__ __forceinline__ int element(int j, int e) {
    return j * WORDS * 4 + ((((e * E) / 16) ^ swizzle(j)) * 16) + (e * E) % 16;
  }
  // Word index of word w of tile row j.
  static __device__ __forceinline__ int word(int j, int w) {
    return j * WORDS + (((w / 4) ^ swizzle(j)) * 4) + w % 4;
  }
};

// Where one tile starts on both sides, and how many of its rows and columns lie inside the extents.
struct TileAt {
  const unsigned char* src;
  unsigned char* dst;
  int rows, columns;  // s and r extents inside the tile
};

template <int TR, int TS>
__device__ __forceinline__ TileAt tile_at(const TransposeParams& p, i64 t, i64 tiles_r, i64 tiles_s, bool narrow) {
  constexpr int E = sizeof(TB_TIN);
  const i64 b = quotient(t, tiles_r * tiles_s, narrow);
  const i64 rest = t - b * tiles_r * tiles_s;
  const i64 s_tile = quotient(rest, tiles_r, narrow);
  const i64 r0 = (rest - s_tile * tiles_r) * TR;
  const i64 s0 = s_tile * TS;
  const Offsets at = batch_offsets(p, b, narrow);
  const i64 rows = p.s_extent - s0, columns = p.r_extent - r0;
  return TileAt{p.src + at.src + s0 * p.src_s + r0 * E, p.dst + at.dst + r0 * p.dst_r + s0 * E,
                (int)(rows < TS ? rows : TS), (int)(columns < TR ? columns : TR)};
}

// Starts loading tile `at` into `tile`: whole tiles as 16-byte copies (complete after
// copies_wait), partial ones element by element (complete on return).
template <int E, int TR, int TS>
__device__ __forceinline__ void tile_fetch(const TransposeParams& p, const TileAt& at, unsigned int* tile) {
  typedef Tile<E, TR, TS> L;
  unsigned char* bytes = (unsigned char*)tile;
  if (at.rows == TS && at.columns == TR) {
    constexpr int COPIES = TS * L::CHUNKS;
#pragma unroll
    for (int i = 0; i < (COPIES + TILE_THREADS - 1) / TILE_THREADS; ++i) {
      const int k = threadIdx.x + i * TILE_THREADS;
      const int j = k / L::CHUNKS, c = k % L::CHUNKS;
      if (COPIES % TILE_THREADS == 0 || k < COPIES) {
        copy_async16(tile + L::word(j, 4 * c), at.src + j * p.src_s + c * 16);
      }
    }
  } else {
    for (int k = threadIdx.x; k < TS * TR; k += TILE_THREADS) {
      const int j = k / TR, e = k % TR;
      if (j < at.rows && e < at.columns) {
        store<TB_TIN>(bytes + L::element(j, e), load<TB_TIN>(at.src + j * p.src_s + e * E));
      }
    }
  }
}

// Writes tile `at` from `tile` to its destination rows.
template <int E, int TR, int TS>
__device__ __forceinline__ void tile_write(const TransposeParams& p, const TileAt& at, const unsigned int* tile) {
  typedef Tile<E, TR, TS> L;
  const unsigned char* bytes = (const unsigned char*)tile;
  unsigned char* dst = at.dst;
  if (at.rows < TS || at.columns < TR) {
    for (int k = threadIdx.x; k < TS * TR; k += TILE_THREADS) {
      const int e = k / TS, j = k % TS;
      if (j < at.rows && e < at.columns) {
        store<TB_TIN>(dst + e * p.dst_r + j * E, load<TB_TIN>(bytes + L::element(j, e)));
      }
    }
  } else if constexpr (E == 1) {
    // 16 rows x 4 columns (one word) per thread: read 16 words, transpose 4x4 byte blocks with
    // prmt, and store four 16-byte vectors, one to each of 4 consecutive destination rows. The 4
    // lowest lanes take the 4 words of one chunk, so a warp's words spread over the banks.
    constexpr int V = TS / 16;  // 16-row groups
#pragma unroll 1
    for (int k = threadIdx.x; k < V * (TR / 4); k += TILE_THREADS) {
      const int v = (k / 4) % V, g = k % 4 + 4 * (k / (4 * V));
      unsigned int o[4][4];
#pragma unroll
      for (int m = 0; m < 4; ++m) {
        const int j = v * 16 + 4 * m;
        const unsigned int a = tile[L::word(j, g)], b = tile[L::word(j + 1, g)];
        const unsigned int c = tile[L::word(j + 2, g)], d = tile[L::word(j + 3, g)];
        const unsigned int lo = prmt(a, b, 0x5140), hi = prmt(c, d, 0x5140);
        const unsigned int lo2 = prmt(a, b, 0x7362), hi2 = prmt(c, d, 0x7362);
        o[0][m] = prmt(lo, hi, 0x5410);
        o[1][m] = prmt(lo, hi, 0x7632);
        o[2][m] = prmt(lo2, hi2, 0x5410);
        o[3][m] = prmt(lo2, hi2, 0x7632);
      }
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        *(uint4*)(dst + (4 * g + r) * p.dst_r + v * 16) = make_uint4(o[r][0], o[r][1], o[r][2], o[r][3]);
      }
    }
  } else if constexpr (E == 2) {
    // 8 rows x 2 columns (one word) per thread: read 8 words, pair their halves with prmt, and
    // store two 16-byte vectors, one to each destination row; lanes as for 1-byte items.
    constexpr int V = TS / 8;  // 8-row groups
#pragma unroll 1
    for (int k = threadIdx.x; k < V * (TR / 2); k += TILE_THREADS) {
      const int v = (k / 4) % V, g = k % 4 + 4 * (k / (4 * V));
      unsigned int w[8];
#pragma unroll
      for (int m = 0; m < 8; ++m) w[m] = tile[L::word(v * 8 + m, g)];
      uint4 lo, hi;
      lo.x = prmt(w[0], w[1], 0x5410); hi.x = prmt(w[0], w[1], 0x7632);
      lo.y = prmt(w[2], w[3], 0x5410); hi.y = prmt(w[2], w[3], 0x7632);
      lo.z = prmt(w[4], w[5], 0x5410); hi.z = prmt(w[4], w[5], 0x7632);
      lo.w = prmt(w[6], w[7], 0x5410); hi.w = prmt(w[6], w[7], 0x7632);
      *(uint4*)(dst + (2 * g) * p.dst_r + v * 16) = lo;
      *(uint4*)(dst + (2 * g + 1) * p.dst_r + v * 16) = hi;
    }
  } else {
    // 4-16-byte items: one chunk (VEC columns) of VEC consecutive rows per thread, read as
    // 16-byte vectors; the VEC x VEC block of items is transposed by register moves and stored
    // as VEC vectors, one to each of VEC consecutive destination rows.
    constexpr int VEC = L::VEC, WE = E / 4;  // words per item
#pragma unroll 1
    for (int k = threadIdx.x; k < L::OUT_VECTORS * L::CHUNKS; k += TILE_THREADS) {
      const int v = k % L::OUT_VECTORS, c = k / L::OUT_VECTORS;
      uint4 in[VEC];
#pragma unroll
      for (int q = 0; q < VEC; ++q) in[q] = *(const uint4*)(tile + L::word(v * VEC + q, 4 * c));
#pragma unroll
      for (int q = 0; q < VEC; ++q) {
        unsigned int out[4];
#pragma unroll
        for (int x = 0; x < 4; ++x) out[x] = ((const unsigned int*)&in[x / WE])[q * WE + x % WE];
        *(uint4*)(dst + (c * VEC + q) * p.dst_r + v * 16) = make_uint4(out[0], out[1], out[2], out[3]);
      }
    }
  }
}

extern "C" __global__ void __launch_bounds__(TILE_THREADS, TILE_MIN_BLOCKS) tb_transpose_tiled(const TransposeParams p) {
  wait_for_prior_grids();
  constexpr int TR = TB_TILE_R;
  constexpr int TS = TB_TILE_S;
  constexpr int E = sizeof(TB_TIN);
  __shared__ __align__(16) unsigned int tile[Tile<E, TR, TS>::BYTES / 4];
  const i64 tiles_r = (p.r_extent + TR - 1) / TR;
  const i64 tiles_s = (p.s_extent + TS - 1) / TS;
  const i64 tiles = tiles_r * tiles_s * p.batch;
  const bool narrow = tiles <= 0xffffffffll;
  for (i64 t = blockIdx.x; t < tiles; t += gridDim.x) {
    const TileAt at = tile_at<TR, TS>(p, t, tiles_r, tiles_s, narrow);
    tile_fetch<E, TR, TS>(p, at, tile);
    copies_commit();
    copies_wait<0>();
    __syncthreads();
    tile_write<E, TR, TS>(p, at, tile);
    __syncthreads();
  }
}
#endif

#ifdef TB_ELEMENTWISE
// Same-order element-wise kernel: one dense run of `count` elements on both sides (a same-layout
// tb_convert), converted element for element with convert() as every other kernel does. The
// run is cut into `head` leading elements, chunks of TB_VEC elements and a tail shorter than a
// chunk; the host chooses `head` so that every chunk starts TB_ALIGN_IN-aligned in the source
// and TB_ALIGN_OUT-aligned in the destination, so each chunk moves with the widest accesses that
// alignment allows (16-byte vectors when both are 16) and never reaches past the run. Head and
// tail go element by element. Each thread loads TB_ILP chunks spaced by the grid's thread count
// before converting and storing any (grid-stride). The channel of element i is
// (i / inner) % channels, computed once per chunk and then counted along, never divided per
// element.
struct ElementwiseParams {
  const unsigned char* src;
  unsigned char* dst;
  i64 count;     // elements
  i64 head;      // elements before the first chunk, converted one by one (<= count)
  i64 inner;     // elements per step of the channel index (the extents inside the channel)
  i64 channels;  // extent of the channel dimension; 1 when one coefficient pair serves all
  Affine affine;
};

#ifndef TB_ALIGN_IN
#define TB_ALIGN_IN 16
#endif
#ifndef TB_ALIGN_OUT
#define TB_ALIGN_OUT 16
#endif
#ifndef TB_TABLE
#define TB_TABLE 0
#endif

#if TB_TABLE
// 1-byte inputs have 256 values: each block converts every (channel, value) pair once, with
// convert() itself (so the bytes are convert()'s), and then looks elements up. A lookup costs a
// few instructions and one shared-memory load where a float8 decode or encode costs dozens.
// The table is kept in TB_TABLE_COPIES copies interleaved word by word: word w of copy k is at
// w * COPIES + k, and lane l reads copy l % COPIES, so with 32 copies every lane of a warp reads
// its own bank whatever the values (one copy: up to 3-4 lanes of random bytes share a bank).
static_assert(sizeof(TB_TIN) == 1, "the table is indexed by a 1-byte input");
#ifndef TB_TABLE_COPIES
#define TB_TABLE_COPIES 1
#endif
constexpr int TABLE_ROWS = TB_TABLE;
constexpr int TABLE_COPIES = TB_TABLE_COPIES;
constexpr int TABLE_WORDS = TABLE_ROWS * 256 * (int)sizeof(TB_TOUT) / 4;  // one copy's words
static_assert(TABLE_COPIES == 1 || TABLE_COPIES == 2 || TABLE_COPIES % 4 == 0, "copies: 1, 2 or 4k");

// Entry `index` (channel * 256 + input byte) of the table, from the calling lane's copy.
__device__ __forceinline__ TB_TOUT lookup(const unsigned char* table, int index) {
  const int byte = index * (int)sizeof(TB_TOUT);
  const int lane = (int)(threadIdx.x & (TABLE_COPIES - 1));
  return load<TB_TOUT>(table + ((byte >> 2) * TABLE_COPIES + lane) * 4 + (byte & 3));
}
__device__ __forceinline__ TB_TOUT convert_one(const unsigned char* x, int channel, const Affine&, const unsigned char* table) {
  return lookup(table, (channel << 8) | x[0]);
}
#else
__device__ __forceinline__ TB_TOUT convert_one(const unsigned char* x, int channel, const Affine& a, const unsigned char*) {
  return convert(get<TB_TIN>(x), channel, a);
}
#endif

// The channel of element i (0 without per-channel coefficients).
__device__ __forceinline__ int channel_of(const ElementwiseParams& p, i64 i) {
  return p.channels == 1 ? 0 : (int)((i / p.inner) % p.channels);
}

constexpr int ELEMENTWISE_OUT = TB_VEC * sizeof(TB_TOUT);  // bytes a chunk writes

// Converts chunk k (its V input elements loaded in `in`) into `out`.
template <bool PER_CHANNEL>
__device__ __forceinline__ void elementwise_chunk(Bytes<ELEMENTWISE_OUT>& out, const Bytes<TB_VEC * sizeof(TB_TIN)>& in, i64 k,
                                                  const ElementwiseParams& p, const unsigned char* table) {
  constexpr int V = TB_VEC;
  int c = 0;
  i64 position = 0;
  if (PER_CHANNEL) {
    const i64 i = p.head + k * V, step = i / p.inner;
    position = i - step * p.inner;
    c = (int)(step % p.channels);
  }
#pragma unroll
  for (int v = 0; v < V; ++v) {
    put<TB_TOUT>(out.b + v * sizeof(TB_TOUT), convert_one(in.b + v * sizeof(TB_TIN), c, p.affine, table));
    if (PER_CHANNEL && ++position == p.inner) {
      position = 0;
      c = c + 1 == (int)p.channels ? 0 : c + 1;
    }
  }
}

// `area`: this warp's staging area when TB_STAGE (chunks wider on the destination side, stored
// through the warp), else unused.
template <bool PER_CHANNEL>
__device__ __forceinline__ void elementwise_chunks(const ElementwiseParams& p, const unsigned char* table, uint4* area) {
  constexpr int V = TB_VEC;
  constexpr int IN = V * sizeof(TB_TIN), OUT = ELEMENTWISE_OUT;
  const i64 chunks = (p.count - p.head) / V;
  const i64 threads = (i64)gridDim.x * blockDim.x;
  const unsigned char* src = p.src + p.head * (i64)sizeof(TB_TIN);
  unsigned char* dst = p.dst + p.head * (i64)sizeof(TB_TOUT);
  for (i64 first = blockIdx.x * (i64)blockDim.x + threadIdx.x; TB_WARP_FIRST(first) < chunks; first += threads * TB_ILP) {
    Bytes<IN> in[TB_ILP];
#pragma unroll
    for (int u = 0; u < TB_ILP; ++u) {
      const i64 k = first + u * threads;
      if (k < chunks) load_bytes<IN, TB_ALIGN_IN>(in[u], src + k * IN);
    }
#pragma unroll
    for (int u = 0; u < TB_ILP; ++u) {
      const i64 k = first + u * threads;
#ifdef TB_STAGE
      Bytes<OUT> out;
      if (k < chunks) elementwise_chunk<PER_CHANNEL>(out, in[u], k, p, table);
      warp_store<OUT>(dst + (k < chunks ? k * OUT : 0), out, k < chunks, area);
#else
      if (k >= chunks) break;
      Bytes<OUT> out;
      elementwise_chunk<PER_CHANNEL>(out, in[u], k, p, table);
      store_bytes<OUT, TB_ALIGN_OUT>(dst + k * OUT, out);
#endif
    }
  }
}

extern "C" __global__ void tb_elementwise(const ElementwiseParams p) {
  wait_for_prior_grids();
#if TB_TABLE
  // p.channels == TABLE_ROWS (the host sizes the table by it).
  __shared__ __align__(16) unsigned int table_words[TABLE_WORDS * TABLE_COPIES];
  const unsigned char* table = (const unsigned char*)table_words;
#if TB_TABLE_COPIES == 1
  for (int k = threadIdx.x; k < TABLE_ROWS * 256; k += blockDim.x) {
    const unsigned char x = (unsigned char)(k & 255);
    store<TB_TOUT>((unsigned char*)table_words + k * (int)sizeof(TB_TOUT), convert(get<TB_TIN>(&x), k >> 8, p.affine));
  }
  __syncthreads();
#else
  // One copy first, then every word repeated COPIES times with 8- or 16-byte stores (consecutive
  // threads write consecutive addresses: no bank conflicts).
  __shared__ __align__(16) unsigned int plain[TABLE_WORDS];
  for (int k = threadIdx.x; k < TABLE_ROWS * 256; k += blockDim.x) {
    const unsigned char x = (unsigned char)(k & 255);
    store<TB_TOUT>((unsigned char*)plain + k * (int)sizeof(TB_TOUT), convert(get<TB_TIN>(&x), k >> 8, p.affine));
  }
  __syncthreads();
  if (TABLE_COPIES == 2) {
    for (int q = threadIdx.x; q < TABLE_WORDS; q += blockDim.x) {
      const unsigned int w = plain[q];
      *(uint2*)(table_words + 2 * q) = make_uint2(w, w);
    }
  } else {
    for (int q = threadIdx.x; q < TABLE_WORDS * TABLE_COPIES / 4; q += blockDim.x) {
      const unsigned int w = plain[q / (TABLE_COPIES / 4)];
      *(uint4*)(table_words + 4 * q) = make_uint4(w, w, w, w);
    }
  }
  __syncthreads();
#endif
#else
  const unsigned char* table = nullptr;
#endif
  // Head and tail, one element per thread.
  const i64 body_end = p.head + (p.count - p.head) / TB_VEC * TB_VEC;
  const i64 loose = p.head + (p.count - body_end);
  const i64 threads = (i64)gridDim.x * blockDim.x;
  for (i64 k = blockIdx.x * (i64)blockDim.x + threadIdx.x; k < loose; k += threads) {
    const i64 i = k < p.head ? k : body_end + (k - p.head);
    const TB_TIN x = load<TB_TIN>(p.src + i * (i64)sizeof(TB_TIN));
    store<TB_TOUT>(p.dst + i * (i64)sizeof(TB_TOUT),
                   convert_one((const unsigned char*)&x, channel_of(p, i), p.affine, table));
  }
#ifdef TB_STAGE
  TB_STAGING_AREA(ELEMENTWISE_OUT);
#else
  uint4* area = nullptr;
#endif
  if (p.channels == 1) {
    elementwise_chunks<false>(p, table, area);
  } else {
    elementwise_chunks<true>(p, table, area);
  }
}
#endif

#ifdef TB_RANK
// General kernel: any rank, any (also negative) strides, 64-bit indexing. Each thread walks
// destination elements in order; the index is decomposed over the plan's dimensions.
struct GeneralParams {
  const unsigned char* src;
  unsigned char* dst;
  i64 count;
  i64 extent[TB_MAX_RANK];
  i64 src_stride[TB_MAX_RANK];
  i64 dst_stride[TB_MAX_RANK];
  int channel_dim;  // -1: none
  Affine affine;
};

extern "C" __global__ void tb_general(const GeneralParams p) {
  wait_for_prior_grids();
  for (i64 i = blockIdx.x * (i64)blockDim.x + threadIdx.x; i < p.count; i += (i64)gridDim.x * blockDim.x) {
    i64 rest = i, src_off = 0, dst_off = 0;
    int channel = 0;
#pragma unroll
    for (int d = TB_RANK - 1; d >= 0; --d) {
      const i64 index = rest % p.extent[d];
      rest /= p.extent[d];
      src_off += (TB_REORDER && d == p.channel_dim ? (i64)p.affine.order[index] : index) * p.src_stride[d];
      dst_off += index * p.dst_stride[d];
      if (d == p.channel_dim) channel = (int)index;
    }
    store<TB_TOUT>(p.dst + dst_off, convert(load<TB_TIN>(p.src + src_off), channel, p.affine));
  }
}
#endif
