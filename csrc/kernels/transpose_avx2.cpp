// AVX2 transpose (transpose.h): 8x8 float / 4x4 double blocks in ymm registers, then SSE2's.
// Built with AVX2 flags only (see CMakeLists.txt).
#include <immintrin.h>

#include "transpose.h"

namespace {
#include "generic_transpose.h"
#include "transpose_ymm.h"
}  // namespace

namespace fastbp::kernels::avx2 {
FASTBP_DEFINE_TRANSPOSE_KERNELS(transpose_ymm, transpose_ymm)
}  // namespace fastbp::kernels::avx2
