// ref dot kernels: the portable body on 16-byte vectors, a 4x3 tile (16 SSE/NEON registers).
#include <algorithm>

#include "dot.h"

namespace {
#include "generic_dot.h"
}  // namespace

namespace fastbp::kernels::ref {
FASTBP_DEFINE_DOT_KERNELS(16, 4, 3)
}  // namespace fastbp::kernels::ref
