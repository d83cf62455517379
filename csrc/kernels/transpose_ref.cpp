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
FASTBP_DEFINE_TRANSPOSE_KERNELS(transpose_sse2, transpose_sse2)
}  // namespace fastbp::kernels::ref
