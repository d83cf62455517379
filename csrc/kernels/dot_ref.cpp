// ref dot kernels: the portable body on 16-byte vectors, a 4x3 tile (16 SSE/NEON registers).
#include <algorithm>

#include "dot.h"

namespace {
#include "generic_dot.h"
}  // namespace

namespace fastbp::kernels::ref {
void sdot_rows(int64_t K, const float* a, const int64_t* a_off, int64_t m, const float* b,
               const int64_t* b_off, int64_t n, const int64_t* k_pos, float beta, float* c,
               int64_t ldc) {
  generic_dot_rows<float, 16, 4, 3>(K, a, a_off, m, b, b_off, n, k_pos, beta, c, ldc);
}
void ddot_rows(int64_t K, const double* a, const int64_t* a_off, int64_t m, const double* b,
               const int64_t* b_off, int64_t n, const int64_t* k_pos, double beta, double* c,
               int64_t ldc) {
  generic_dot_rows<double, 16, 4, 3>(K, a, a_off, m, b, b_off, n, k_pos, beta, c, ldc);
}
void sdot_vec(int64_t K, const float* a, int64_t lda, int64_t m, const float* x, float* out) {
  generic_dot_vec<float, 16>(K, a, lda, m, x, out);
}
void ddot_vec(int64_t K, const double* a, int64_t lda, int64_t m, const double* x,
              double* out) {
  generic_dot_vec<double, 16>(K, a, lda, m, x, out);
}
}  // namespace fastbp::kernels::ref
