// avx2 Winograd transforms: the portable bodies built with this ISA's flags (see CMakeLists.txt).
#include "winograd.h"

namespace {
#include "generic_winograd.h"
}  // namespace

namespace fastbp::kernels::avx2 {
const WinogradKernels<float> swinograd = generic_winograd_kernels<float>();
const WinogradKernels<double> dwinograd = generic_winograd_kernels<double>();
}  // namespace fastbp::kernels::avx2
