// AVX-512 gather_rows (gather.h): each run is copied a vector at a time, its last (or only)
// vector with a masked load and store, so a run of any length costs ceil(len / L) moves and
// memory past the run is never touched. Built with AVX-512 flags only (see CMakeLists.txt).
#include <immintrin.h>

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

}  // namespace

namespace fastbp::kernels::avx512 {
void sgather_rows(const float* src, const int64_t* tap, int64_t rows, const GatherRun* runs,
                  int64_t n_runs, float* out, int64_t row_stride) {
  gather_rows(src, tap, rows, runs, n_runs, out, row_stride);
}
void dgather_rows(const double* src, const int64_t* tap, int64_t rows, const GatherRun* runs,
                  int64_t n_runs, double* out, int64_t row_stride) {
  gather_rows(src, tap, rows, runs, n_runs, out, row_stride);
}
}  // namespace fastbp::kernels::avx512
