// avx2 dot kernels: the portable body on 32-byte vectors, a 4x3 tile (16 ymm registers).
#include <algorithm>

#include "dot.h"

namespace {
#include "generic_dot.h"
}  // namespace

namespace fastbp::kernels::avx2 {
FASTBP_DEFINE_DOT_KERNELS(32, 4, 3)
}  // namespace fastbp::kernels::avx2
