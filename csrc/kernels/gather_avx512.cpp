// AVX-512 gather_rows and split_row (gather.h). gather_rows copies each run a vector at a
// time, its last (or only) vector with a masked load and store, so a run of any length costs
// ceil(len / L) moves and memory past the run is never touched. Built with AVX-512 flags only (see CMakeLists.txt).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "gather.h"

namespace {

inline void copy_run(const float* s, float* d, int64_t len) {
  int64_t i = 0;
  for (; i + 16 <= len; i += 16) _mm512_storeu_ps(d + i, _mm512_loadu_ps(s + i));
  if (i < len) {
    const __mmask16 m = static_cast<__mmask16>((1u << (len - i)) - 1);
    _mm512_mask_storeu_ps(d + i, m, _mm512_maskz_loadu_ps(m, s + i));
  }
}

inline void copy_run(const double* s, double* d, int64_t len) {
  int64_t i = 0;
  for (; i + 8 <= len; i += 8) _mm512_storeu_pd(d + i, _mm512_loadu_pd(s + i));
  if (i < len) {
    const __mmask8 m = static_cast<__mmask8>((1u << (len - i)) - 1);
    _mm512_mask_storeu_pd(d + i, m, _mm512_maskz_loadu_pd(m, s + i));
  }
}

template <typename T>
void gather_rows(const T* src, const int64_t* tap, int64_t rows,
                 const fastbp::kernels::GatherRun* runs, int64_t n_runs, T* out,
                 int64_t row_stride) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* base = src + tap[r];
    T* o = out + r * row_stride;
    for (int64_t k = 0; k < n_runs; ++k) copy_run(base + runs[k].pos, o + runs[k].out, runs[k].len);
  }
}

// split_row (gather.h): 2L inputs per step, two loads and a two-source permute per output
// vector; the last step masked. One body over a small float/double traits struct.
struct SplitF32 {
  using T = float;
  using V = __m512;
  static constexpr int L = 16;
  static V load(const T* p, uint32_t m) { return _mm512_maskz_loadu_ps(__mmask16(m), p); }
  static void store(T* p, uint32_t m, V v) { _mm512_mask_storeu_ps(p, __mmask16(m), v); }
  static V pick(V a, __m512i idx, V b) { return _mm512_permutex2var_ps(a, idx, b); }
  static __m512i evens() {
    return _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  }
};
struct SplitF64 {
  using T = double;
  using V = __m512d;
  static constexpr int L = 8;
  static V load(const T* p, uint32_t m) { return _mm512_maskz_loadu_pd(__mmask8(m), p); }
  static void store(T* p, uint32_t m, V v) { _mm512_mask_storeu_pd(p, __mmask8(m), v); }
  static V pick(V a, __m512i idx, V b) { return _mm512_permutex2var_pd(a, idx, b); }
  static __m512i evens() { return _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14); }
};

template <typename S>
void split_row(const typename S::T* src, int64_t n, typename S::T* even, typename S::T* odd) {
  constexpr int L = S::L;
  constexpr uint32_t all = (1u << L) - 1;
  const __m512i ie = S::evens();
  const __m512i io = L == 16 ? _mm512_add_epi32(ie, _mm512_set1_epi32(1))
                             : _mm512_add_epi64(ie, _mm512_set1_epi64(1));
  int64_t i = 0;
  for (; 2 * i + 2 * L <= n; i += L) {
    const typename S::V a = S::load(src + 2 * i, all), b = S::load(src + 2 * i + L, all);
    S::store(even + i, all, S::pick(a, ie, b));
    S::store(odd + i, all, S::pick(a, io, b));
  }
  const int rem = static_cast<int>(n - 2 * i);  // 0 .. 2L - 1 inputs left
  if (rem == 0) return;
  const int lo = std::min(rem, L), hi = rem - lo;
  const typename S::V a = S::load(src + 2 * i, (1u << lo) - 1);
  const typename S::V b = S::load(src + 2 * i + L, (1u << hi) - 1);
  S::store(even + i, (1u << ((rem + 1) / 2)) - 1, S::pick(a, ie, b));
  S::store(odd + i, (1u << (rem / 2)) - 1, S::pick(a, io, b));
}

}  // namespace

namespace fastbp::kernels::avx512 {
void ssplit_row(const float* src, int64_t n, float* even, float* odd) {
  split_row<SplitF32>(src, n, even, odd);
}
void dsplit_row(const double* src, int64_t n, double* even, double* odd) {
  split_row<SplitF64>(src, n, even, odd);
}
void sgather_rows(const float* src, const int64_t* tap, int64_t rows, const GatherRun* runs,
                  int64_t n_runs, float* out, int64_t row_stride) {
  gather_rows(src, tap, rows, runs, n_runs, out, row_stride);
}
void dgather_rows(const double* src, const int64_t* tap, int64_t rows, const GatherRun* runs,
                  int64_t n_runs, double* out, int64_t row_stride) {
  gather_rows(src, tap, rows, runs, n_runs, out, row_stride);
}
}  // namespace fastbp::kernels::avx512
