// ref transpose (transpose.h): SSE2 blocks on x86, elements elsewhere.
#include "transpose.h"

#include <cstdint>
#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#endif

namespace {
#include "generic_transpose.h"
}  // namespace

namespace fastbp::kernels::ref {
void stranspose(const float* src, int64_t ld_src, int64_t rows, int64_t cols, float* dst,
                int64_t ld_dst) {
  transpose_sse2(src, ld_src, rows, cols, dst, ld_dst);
}
void dtranspose(const double* src, int64_t ld_src, int64_t rows, int64_t cols, double* dst,
                int64_t ld_dst) {
  transpose_sse2(src, ld_src, rows, cols, dst, ld_dst);
}
}  // namespace fastbp::kernels::ref
