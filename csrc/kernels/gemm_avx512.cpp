// AVX-512 micro-kernels: sgemm 12x32 and dgemm 12x16 (contract: README.md).
// Each k step loads one NR-wide row of packed B into two zmm and broadcasts the MR values of A
// into FMAs: MR*2 = 24 zmm accumulators, 2 for B, 1 for the broadcast (32 zmm in all). 24
// independent FMA chains hide the 4-cycle latency of two FMA ports. Edges use __mmask16 masks.
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
  static V maskz_loadu(__mmask16 k, const float* p) { return _mm512_maskz_loadu_ps(k, p); }
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
  static V maskz_loadu(__mmask16 k, const double* p) {
    return _mm512_maskz_loadu_pd(static_cast<__mmask8>(k), p);
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

// ROWS rows x NV vectors of C; packed A has MR values per k step (ROWS < MR: a short bottom-edge
// tile computes only the rows it stores), packed B has BV vectors (NV < BV: likewise for a narrow
// right edge). Full unrolling keeps acc[][] in registers.
template <typename T, int MR, int NV, int BV = NV, int ROWS = MR>
inline void zmm_ukernel(int64_t kc, const T* __restrict a, const T* __restrict b,
                        T* __restrict c, int64_t ldc, int64_t m, int64_t n, T alpha, T beta) {
  using Z = Zmm<T>;
  using V = typename Z::V;
  constexpr int L = Z::L, NR = BV * L;
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
    const T* ap = a + p * MR;
    const T* bp = b + p * NR;
    _mm_prefetch(reinterpret_cast<const char*>(bp + 8 * NR), _MM_HINT_T0);
    V bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = Z::load(bp + v * L);
#pragma GCC unroll 32
    for (int i = 0; i < ROWS; ++i) {
      const V ai = Z::set1(ap[i]);
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
      const V t = Z::mul(va, acc[i][v]);
      if (beta == T(0))
        Z::mask_storeu(ci + v * L, mask[v], t);
      else
        Z::mask_storeu(ci + v * L, mask[v],
                       Z::fmadd(vb, Z::maskz_loadu(mask[v], ci + v * L), t));
    }
  }
}

}  // namespace

namespace fastbp::kernels::avx512 {

static_assert(SNR == 32 && DNR == 16, "avx512 kernels are two vectors wide");

void sgemm_avx512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t m,
                  int64_t n, float alpha, float beta) {
  if (n <= 16)
    zmm_ukernel<float, SMR, 1, SNR / 16>(kc, a, b, c, ldc, m, n, alpha, beta);
  else if (m <= 4)
    zmm_ukernel<float, SMR, 2, 2, 4>(kc, a, b, c, ldc, m, n, alpha, beta);
  else if (m <= 8)
    zmm_ukernel<float, SMR, 2, 2, 8>(kc, a, b, c, ldc, m, n, alpha, beta);
  else
    zmm_ukernel<float, SMR, SNR / 16>(kc, a, b, c, ldc, m, n, alpha, beta);
}

void dgemm_avx512(int64_t kc, const double* a, const double* b, double* c, int64_t ldc,
                  int64_t m, int64_t n, double alpha, double beta) {
  if (n <= 8)
    zmm_ukernel<double, DMR, 1, DNR / 8>(kc, a, b, c, ldc, m, n, alpha, beta);
  else if (m <= 4)
    zmm_ukernel<double, DMR, 2, 2, 4>(kc, a, b, c, ldc, m, n, alpha, beta);
  else if (m <= 8)
    zmm_ukernel<double, DMR, 2, 2, 8>(kc, a, b, c, ldc, m, n, alpha, beta);
  else
    zmm_ukernel<double, DMR, DNR / 8>(kc, a, b, c, ldc, m, n, alpha, beta);
}

}  // namespace fastbp::kernels::avx512
