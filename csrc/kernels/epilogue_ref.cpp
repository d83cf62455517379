// ref bias_rows: the portable body built with this ISA's flags (see CMakeLists.txt).
#include "epilogue.h"

namespace {
#include "generic_epilogue.h"
}  // namespace

namespace fastbp::kernels::ref {
FASTBP_DEFINE_EPILOGUE_KERNELS()
}  // namespace fastbp::kernels::ref
