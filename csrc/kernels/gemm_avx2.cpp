// AVX2+FMA micro-kernels: sgemm 6x16 and dgemm 6x8 (contract: README.md).
// Each k step loads one NR-wide row of packed B into two ymm and broadcasts the MR values of A
// into FMAs: MR*2 = 12 ymm accumulators, 2 for B, 1 for the broadcast (15 of 16 ymm). Edges use
// vmaskmov loads/stores, which never touch the masked-off lanes. Built with AVX2+FMA flags only.
#include <immintrin.h>

#include "ukernel.h"

namespace {

template <typename T>
struct Ymm;

template <>
struct Ymm<float> {
  using V = __m256;
  static constexpr int L = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V load(const float* p) { return _mm256_load_ps(p); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  // negatives to zero; NaN and -0.0 kept (an ordered compare is false for them)
  static V relu(V v) {
    return _mm256_blendv_ps(v, zero(), _mm256_cmp_ps(v, zero(), _CMP_LT_OQ));
  }
  // all-ones in lanes j < n (n may be <= 0 or >= L)
  static __m256i mask(int64_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n < 0 ? 0 : n > L ? L : n)),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static V maskload(const float* p, __m256i k) { return _mm256_maskload_ps(p, k); }
  static void maskstore(float* p, __m256i k, V v) { _mm256_maskstore_ps(p, k, v); }
};

template <>
struct Ymm<double> {
  using V = __m256d;
  static constexpr int L = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V set1(double x) { return _mm256_set1_pd(x); }
  static V load(const double* p) { return _mm256_load_pd(p); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  static V relu(V v) {
    return _mm256_blendv_pd(v, zero(), _mm256_cmp_pd(v, zero(), _CMP_LT_OQ));
  }
  static __m256i mask(int64_t n) {
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n < 0 ? 0 : n > L ? L : n),
                              _mm256_setr_epi64x(0, 1, 2, 3));
  }
  static V maskload(const double* p, __m256i k) { return _mm256_maskload_pd(p, k); }
  static void maskstore(double* p, __m256i k, V v) { _mm256_maskstore_pd(p, k, v); }
};

// MR rows x NV vectors of C; packed B has BV vectors per k step (NV < BV: a narrow right-edge
// tile computes only the vectors it stores). Full unrolling keeps acc[][] in registers.
template <typename T, int MR, int NV, int BV = NV>
inline void ymm_ukernel(int64_t kc, const T* __restrict a, const T* __restrict b,
                        T* __restrict c, int64_t ldc, int64_t m, int64_t n, T alpha, T beta,
                        const T* bias, bool relu) {
  using Y = Ymm<T>;
  using V = typename Y::V;
  constexpr int L = Y::L, NR = BV * L;
  V acc[MR][NV];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = Y::zero();

  // the tile of C is touched only at the end; start bringing it in now
  for (int64_t i = 0; i < m; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + n - 1), _MM_HINT_T0);
  }

#pragma GCC unroll 4
  for (int64_t p = 0; p < kc; ++p) {
    const T* ap = a + p * MR;
    const T* bp = b + p * NR;
    V bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) bv[v] = Y::load(bp + v * L);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const V ai = Y::set1(ap[i]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = Y::fmadd(ai, bv[v], acc[i][v]);
    }
  }

  const V va = Y::set1(alpha), vb = Y::set1(beta);
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    if (i >= m) break;
    T* ci = c + i * ldc;
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const __m256i k = Y::mask(n - v * L);
      V t = Y::mul(va, acc[i][v]);
      if (beta != T(0)) t = Y::fmadd(vb, Y::maskload(ci + v * L, k), t);
      if (bias) t = Y::add(t, Y::set1(bias[i]));
      if (relu) t = Y::relu(t);
      Y::maskstore(ci + v * L, k, t);
    }
  }
}

}  // namespace

namespace fastbp::kernels::avx2 {

static_assert(SNR == 16 && DNR == 8, "avx2 kernels are two vectors wide");

void sgemm_avx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t m,
                int64_t n, float alpha, float beta, const float* bias, bool relu) {
  if (n <= 8)
    ymm_ukernel<float, SMR, 1, SNR / 8>(kc, a, b, c, ldc, m, n, alpha, beta, bias, relu);
  else
    ymm_ukernel<float, SMR, SNR / 8>(kc, a, b, c, ldc, m, n, alpha, beta, bias, relu);
}

void dgemm_avx2(int64_t kc, const double* a, const double* b, double* c, int64_t ldc, int64_t m,
                int64_t n, double alpha, double beta, const double* bias, bool relu) {
  if (n <= 4)
    ymm_ukernel<double, DMR, 1, DNR / 4>(kc, a, b, c, ldc, m, n, alpha, beta, bias, relu);
  else
    ymm_ukernel<double, DMR, DNR / 4>(kc, a, b, c, ldc, m, n, alpha, beta, bias, relu);
}

}  // namespace fastbp::kernels::avx2
