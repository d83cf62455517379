// AVX2 transpose (transpose.h): 8x8 float / 4x4 double blocks in ymm registers, then SSE2's.
// Built with AVX2 flags only (see CMakeLists.txt).
#include <immintrin.h>

#include "transpose.h"

namespace {
#include "generic_transpose.h"
#include "transpose_ymm.h"
}  // namespace

namespace fastbp::kernels::avx2 {
void stranspose(const float* src, int64_t ld_src, int64_t rows, int64_t cols, float* dst,
                int64_t ld_dst) {
  transpose_ymm(src, ld_src, rows, cols, dst, ld_dst);
}
void dtranspose(const double* src, int64_t ld_src, int64_t rows, int64_t cols, double* dst,
                int64_t ld_dst) {
  transpose_ymm(src, ld_src, rows, cols, dst, ld_dst);
}
}  // namespace fastbp::kernels::avx2
