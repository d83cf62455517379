// ref micro-kernels. Built with this ISA's compiler flags only (see CMakeLists.txt).
#include "ukernel.h"

namespace {
#include "generic_ukernel.h"
}  // namespace

namespace fastbp::kernels::ref {

void sgemm_ref(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t m,
               int64_t n, float alpha, float beta, const float* bias, bool relu) {
  generic_gemm_ukernel<float, SMR, SNR>(kc, a, b, c, ldc, m, n, alpha, beta, bias, relu);
}

void dgemm_ref(int64_t kc, const double* a, const double* b, double* c, int64_t ldc, int64_t m,
               int64_t n, double alpha, double beta, const double* bias, bool relu) {
  generic_gemm_ukernel<double, DMR, DNR>(kc, a, b, c, ldc, m, n, alpha, beta, bias, relu);
}

}  // namespace fastbp::kernels::ref
