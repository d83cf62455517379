// avx2 Winograd transforms: the portable bodies built with this ISA's flags (see CMakeLists.txt).
#include "winograd.h"
#include "winograd_transforms.h"

namespace {
#include "generic_winograd.h"
}  // namespace

namespace fastbp::kernels::avx2 {
const WinogradKernels<float> swinograd3 = generic_winograd_kernels<float, 3>();
const WinogradKernels<double> dwinograd3 = generic_winograd_kernels<double, 3>();
const WinogradKernels<float> swinograd5 = generic_winograd_kernels<float, 5>();
const WinogradKernels<double> dwinograd5 = generic_winograd_kernels<double, 5>();
}  // namespace fastbp::kernels::avx2
