// ref depthwise kernels: the portable bodies built with this ISA's flags (see CMakeLists.txt).
#include "depthwise.h"

namespace {
#include "generic_depthwise.h"
}  // namespace

namespace fastbp::kernels::ref {
const DepthwiseKernels<float> sdepthwise = generic_depthwise_kernels<float>();
const DepthwiseKernels<double> ddepthwise = generic_depthwise_kernels<double>();
}  // namespace fastbp::kernels::ref
