// AVX-512 micro-kernels: sgemm 12x32 and dgemm 12x16 (contract: README.md).
// Each k step loads one NR-wide row of packed B into two zmm and broadcasts the MR values of A
// into FMAs: MR*2 = 24 zmm accumulators, 2 for B, 1 for the broadcast (32 zmm in all). 24
// independent FMA chains hide the 4-cycle latency of two FMA ports. Edges use __mmask16 masks.
// The wide tiles, 8x48 and 8x24, are the same loop with three vectors of B and 8 rows: for
// matrices of 8k rows (a conv's 16, 32 or 64 output channels), which 12-row tiles cover with
// up to a third of their rows wasted. The rows kernels read B, and A when given its row
// stride, where they lie instead of from packed slivers.
// Built with AVX-512 flags only (see CMakeLists.txt).
#include <immintrin.h>

#include "ukernel.h"

namespace {

template <typename T>
struct Zmm;

template <>
struct Zmm<float> {
  using V = __m512;
  static constexpr int L = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V load(const float* p) { return _mm512_load_ps(p); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  // negatives to zero; NaN and -0.0 kept (an ordered compare is false for them)
  static V relu(V v) {
    return _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, zero(), _CMP_LT_OQ), zero());
  }
  static V maskz_loadu(__mmask16 k, const float* p) { return _mm512_maskz_loadu_ps(k, p); }
  static V mask_loadu(V src, __mmask16 k, const float* p) { return _mm512_mask_loadu_ps(src, k, p); }
  static void mask_storeu(float* p, __mmask16 k, V v) { _mm512_mask_storeu_ps(p, k, v); }
};

template <>
struct Zmm<double> {
  using V = __m512d;
  static constexpr int L = 8;
  static V zero() { return _mm512_setzero_pd(); }
  static V set1(double x) { return _mm512_set1_pd(x); }
  static V load(const double* p) { return _mm512_load_pd(p); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static V relu(V v) {
    return _mm512_mask_mov_pd(v, _mm512_cmp_pd_mask(v, zero(), _CMP_LT_OQ), zero());
  }
  static V maskz_loadu(__mmask16 k, const double* p) {
    return _mm512_maskz_loadu_pd(static_cast<__mmask8>(k), p);
  }
  static V mask_loadu(V src, __mmask16 k, const double* p) {
    return _mm512_mask_loadu_pd(src, static_cast<__mmask8>(k), p);
  }
  static void mask_storeu(double* p, __mmask16 k, V v) {
    _mm512_mask_storeu_pd(p, static_cast<__mmask8>(k), v);
  }
};

// Lanes j < n of a vector of L lanes (n may be <= 0 or >= L).
template <int L>
inline __mmask16 lane_mask(int64_t n) {
  if (n <= 0) return 0;
  if (n >= L) return static_cast<__mmask16>((1u << L) - 1);
  return static_cast<__mmask16>((1u << n) - 1);
}

// Where the kernel reads row p of B (NR values): a packed sliver (aligned, zero-padded), or
// rows left in place at b + off[p] (unaligned; lanes past n are masked off, never read).
template <typename T, int NV>
struct PackedRows {
  const T* b;
  int nr;
  const T* row(int64_t p) const { return b + p * nr; }
  void prefetch(int64_t p, int64_t) const {  // past the end is harmless: prefetch never faults
    _mm_prefetch(reinterpret_cast<const char*>(b + (p + 8) * nr), _MM_HINT_T0);
  }
  typename Zmm<T>::V load(const T* r, int v) const { return Zmm<T>::load(r + v * Zmm<T>::L); }
};
// B rows in place: vector v of row p is S masked loads; load s fills the lanes in mask[v][s]
// from row(p) + voff[v][s] + lane (an empty mask reads nothing).
template <typename T, int NV, int S>
struct InPlaceSegments {
  const T* b;
  const int64_t* off;
  __mmask16 mask[NV][S];
  int64_t voff[NV][S];
  const T* row(int64_t p) const { return b + off[p]; }
  void prefetch(int64_t p, int64_t kc) const {  // off[] itself must not be read past kc
    if (p + 8 < kc)
      for (int v = 0; v < NV; ++v)
        _mm_prefetch(reinterpret_cast<const char*>(row(p + 8) + voff[v][0]), _MM_HINT_T0);
  }
  typename Zmm<T>::V load(const T* r, int v) const {
    typename Zmm<T>::V x = Zmm<T>::maskz_loadu(mask[v][0], r + voff[v][0]);
    for (int s = 1; s < S; ++s) x = Zmm<T>::mask_loadu(x, mask[v][s], r + voff[v][s]);
    return x;
  }
};
template <typename T, int NV>
using InPlace1 = InPlaceSegments<T, NV, 1>;
template <typename T, int NV>
using InPlace2 = InPlaceSegments<T, NV, 2>;
template <typename T, int NV>
using InPlace3 = InPlaceSegments<T, NV, 3>;
template <typename T, int NV>
using InPlace4 = InPlaceSegments<T, NV, 4>;

// Where the kernel reads A(i, p): a packed sliver (MR values per k step), or rows left in place
// lda apart (k contiguous along each row), or those rows at listed columns (k step p is column
// off[p]: a convolution's taps that are not padding).
template <typename T, int MR>
struct PackedA {
  const T* a;
  const T* step(int64_t p) const { return a + p * MR; }
  static int64_t row(int i) { return i; }
};
template <typename T>
struct InPlaceA {
  const T* a;
  int64_t lda;
  const T* step(int64_t p) const { return a + p; }
  int64_t row(int i) const { return i * lda; }
};
template <typename T>
struct ListedA {
  const T* a;
  int64_t lda;
  const int64_t* off;
  const T* step(int64_t p) const { return a + off[p]; }
  int64_t row(int i) const { return i * lda; }
};

// ROWS rows x NV vectors of C; packed A has MR values per k step (ROWS < MR: a short bottom-edge
// tile computes only the rows it stores); B rows come from `rows`, NR wide (NV < NR/L: a narrow
// right edge computes only the vectors it stores). Full unrolling keeps acc[][] in registers.
template <typename T, int MR, int NV, int ROWS, class Rows, class ARows>
inline void zmm_ukernel(int64_t kc, const ARows& a, const Rows& rows, T* __restrict c,
                        int64_t ldc, int64_t m, int64_t n, T alpha, T beta, const T* bias,
                        bool relu) {
  using Z = Zmm<T>;
  using V = typename Z::V;
  constexpr int L = Z::L;
  V acc[ROWS][NV];
#pragma GCC unroll 32
  for (int i = 0; i < ROWS; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = Z::zero();

  // the tile of C is touched only at the end; start bringing it in now
  for (int64_t i = 0; i < m; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + n - 1), _MM_HINT_T0);
  }

#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; ++p) {
    const T* ap = a.step(p);
    const T* bp = rows.row(p);
    rows.prefetch(p, kc);
    V bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = rows.load(bp, v);
#pragma GCC unroll 32
    for (int i = 0; i < ROWS; ++i) {
      const V ai = Z::set1(ap[a.row(i)]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = Z::fmadd(ai, bv[v], acc[i][v]);
    }
  }

  __mmask16 mask[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) mask[v] = lane_mask<L>(n - v * L);
  const V va = Z::set1(alpha), vb = Z::set1(beta);
#pragma GCC unroll 32
  for (int i = 0; i < ROWS; ++i) {
    if (i >= m) break;
    T* ci = c + i * ldc;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      V t = Z::mul(va, acc[i][v]);
      if (beta != T(0)) t = Z::fmadd(vb, Z::maskz_loadu(mask[v], ci + v * L), t);
      if (bias) t = Z::add(t, Z::set1(bias[i]));
      if (relu) t = Z::relu(t);
      Z::mask_storeu(ci + v * L, mask[v], t);
    }
  }
}

// Picks the narrowest tile that covers m x n (rows and vectors not stored are not computed).
// NR is two vectors (the 12-row tile) or three (the 8-row wide tile).
template <typename T, int MR, int NR, template <typename, int> class RowsOf, class Make,
          class ARows>
inline void dispatch_tile(int64_t kc, const ARows& a, const Make& make, T* c, int64_t ldc,
                          int64_t m, int64_t n, T alpha, T beta, const T* bias, bool relu) {
  constexpr int L = Zmm<T>::L;
  static_assert(NR == 2 * L || NR == 3 * L, "avx512 kernels are two or three vectors wide");
  if (n <= L) {
    zmm_ukernel<T, MR, 1, MR>(kc, a, make.template get<RowsOf<T, 1>>(n), c, ldc, m, n, alpha,
                              beta, bias, relu);
  } else if (NR == 3 * L && n > 2 * L) {
    zmm_ukernel<T, MR, 3, MR>(kc, a, make.template get<RowsOf<T, 3>>(n), c, ldc, m, n, alpha,
                              beta, bias, relu);
  } else if (m <= 4) {
    zmm_ukernel<T, MR, 2, 4>(kc, a, make.template get<RowsOf<T, 2>>(n), c, ldc, m, n, alpha,
                             beta, bias, relu);
  } else if (m <= 8) {
    zmm_ukernel<T, MR, 2, 8>(kc, a, make.template get<RowsOf<T, 2>>(n), c, ldc, m, n, alpha,
                             beta, bias, relu);
  } else {
    zmm_ukernel<T, MR, 2, MR>(kc, a, make.template get<RowsOf<T, 2>>(n), c, ldc, m, n, alpha,
                              beta, bias, relu);
  }
}

template <typename T, int NR>
struct MakePacked {
  const T* b;
  template <class R>
  R get(int64_t) const { return R{b, NR}; }
};
template <typename T, int S>
struct MakeInPlace {
  const T* b;
  const int64_t* off;
  const int64_t* voff;  // [v * S + s], as the masks
  const uint16_t* vmask;
  template <class R>
  R get(int64_t) const {
    R r{b, off, {}, {}};
    for (int v = 0; v < int(sizeof(r.mask) / sizeof(r.mask[0])); ++v)
      for (int s = 0; s < S; ++s) {
        r.mask[v][s] = static_cast<__mmask16>(vmask[v * S + s]);
        r.voff[v][s] = voff[v * S + s];
      }
    return r;
  }
};

template <typename T, int MR, int NR, class ARows>
void rows_by_segments(int64_t kc, const ARows& a, const T* b, const int64_t* b_off,
                      const int64_t* v_off, const uint16_t* v_mask, int64_t segs, T* c,
                      int64_t ldc, int64_t m, int64_t n, T alpha, T beta, const T* bias,
                      bool relu) {
  switch (segs) {
    case 1:
      return dispatch_tile<T, MR, NR, InPlace1>(kc, a, MakeInPlace<T, 1>{b, b_off, v_off, v_mask},
                                                c, ldc, m, n, alpha, beta, bias, relu);
    case 2:
      return dispatch_tile<T, MR, NR, InPlace2>(kc, a, MakeInPlace<T, 2>{b, b_off, v_off, v_mask},
                                                c, ldc, m, n, alpha, beta, bias, relu);
    case 3:
      return dispatch_tile<T, MR, NR, InPlace3>(kc, a, MakeInPlace<T, 3>{b, b_off, v_off, v_mask},
                                                c, ldc, m, n, alpha, beta, bias, relu);
    default:
      return dispatch_tile<T, MR, NR, InPlace4>(kc, a, MakeInPlace<T, 4>{b, b_off, v_off, v_mask},
                                                c, ldc, m, n, alpha, beta, bias, relu);
  }
}

}  // namespace

namespace fastbp::kernels::avx512 {

void sgemm_avx512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t m,
                  int64_t n, float alpha, float beta, const float* bias, bool relu) {
  dispatch_tile<float, SMR, SNR, PackedRows>(kc, PackedA<float, SMR>{a},
                                             MakePacked<float, SNR>{b}, c, ldc, m, n, alpha, beta,
                                             bias, relu);
}

void dgemm_avx512(int64_t kc, const double* a, const double* b, double* c, int64_t ldc,
                  int64_t m, int64_t n, double alpha, double beta, const double* bias,
                  bool relu) {
  dispatch_tile<double, DMR, DNR, PackedRows>(kc, PackedA<double, DMR>{a},
                                              MakePacked<double, DNR>{b}, c, ldc, m, n, alpha,
                                              beta, bias, relu);
}

void sgemm_avx512_wide(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                       int64_t m, int64_t n, float alpha, float beta, const float* bias,
                       bool relu) {
  dispatch_tile<float, WSMR, WSNR, PackedRows>(kc, PackedA<float, WSMR>{a},
                                               MakePacked<float, WSNR>{b}, c, ldc, m, n, alpha,
                                               beta, bias, relu);
}

void dgemm_avx512_wide(int64_t kc, const double* a, const double* b, double* c, int64_t ldc,
                       int64_t m, int64_t n, double alpha, double beta, const double* bias,
                       bool relu) {
  dispatch_tile<double, WDMR, WDNR, PackedRows>(kc, PackedA<double, WDMR>{a},
                                                MakePacked<double, WDNR>{b}, c, ldc, m, n, alpha,
                                                beta, bias, relu);
}

// The rows kernels: B in place; A packed (lda == 0) or in place too, rows lda apart, at listed
// columns when a_off is given.
#define FASTBP_ROWS_KERNEL(name, T, MR, NR)                                                   \
  void name(int64_t kc, const T* a, int64_t lda, const int64_t* a_off, const T* b,            \
            const int64_t* b_off, const int64_t* v_off, const uint16_t* v_mask, int64_t segs, \
            T* c, int64_t ldc, int64_t m, int64_t n, T alpha, T beta, const T* bias,          \
            bool relu) {                                                                      \
    if (lda == 0)                                                                             \
      return rows_by_segments<T, MR, NR>(kc, PackedA<T, MR>{a}, b, b_off, v_off, v_mask,      \
                                         segs, c, ldc, m, n, alpha, beta, bias, relu);        \
    if (a_off)                                                                                \
      return rows_by_segments<T, MR, NR>(kc, ListedA<T>{a, lda, a_off}, b, b_off, v_off,      \
                                         v_mask, segs, c, ldc, m, n, alpha, beta, bias, relu); \
    rows_by_segments<T, MR, NR>(kc, InPlaceA<T>{a, lda}, b, b_off, v_off, v_mask, segs, c,    \
                                ldc, m, n, alpha, beta, bias, relu);                          \
  }
FASTBP_ROWS_KERNEL(sgemm_avx512_rows, float, SMR, SNR)
FASTBP_ROWS_KERNEL(dgemm_avx512_rows, double, DMR, DNR)
FASTBP_ROWS_KERNEL(sgemm_avx512_wide_rows, float, WSMR, WSNR)
FASTBP_ROWS_KERNEL(dgemm_avx512_wide_rows, double, WDMR, WDNR)
#undef FASTBP_ROWS_KERNEL

}  // namespace fastbp::kernels::avx512
