// avx512 dot kernels: the portable body on 64-byte vectors, a 6x4 tile (32 zmm registers).
#include <algorithm>

#include "dot.h"

namespace {
#include "generic_dot.h"
}  // namespace

namespace fastbp::kernels::avx512 {
FASTBP_DEFINE_DOT_KERNELS(64, 6, 4)
}  // namespace fastbp::kernels::avx512
