// avx512 bias_rows: the portable body built with this ISA's flags (see CMakeLists.txt).
#include "epilogue.h"

namespace {
#include "generic_epilogue.h"
}  // namespace

namespace fastbp::kernels::avx512 {
FASTBP_DEFINE_EPILOGUE_KERNELS()
}  // namespace fastbp::kernels::avx512
