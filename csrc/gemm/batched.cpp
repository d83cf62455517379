#include "batched.h"

#include "driver.h"
#include "gemm.h"

namespace fastbp {

// Each product is one gemm_strided call, whose bits do not depend on its thread count; so
// threads go over the batch when it is long enough (one product per thread at a time) and
// inside each product otherwise, and the result is the same for any count.
template <typename T>
void gemm_batched(int64_t batch, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                  int64_t bs_a, int64_t rs_a, int64_t cs_a, const T* B, int64_t bs_b,
                  int64_t rs_b, int64_t cs_b, T beta, T* C, int64_t bs_c, int64_t ldc,
                  int nthreads) {
  if (batch <= 0 || M <= 0 || N <= 0) return;
  const double flops = 2.0 * double(batch) * M * N * K;
  const int nt = flops < kGemmMinParallelFlops ? 1 : std::max(nthreads, 1);
  const bool over_batch = batch >= 2 * nt;
  parallel_for(batch, over_batch ? nt : 1, [&](int64_t b, int) {
    gemm_strided(M, N, K, alpha, A + b * bs_a, rs_a, cs_a, B + b * bs_b, rs_b, cs_b, beta,
                 C + b * bs_c, ldc, over_batch ? 1 : nt);
  });
}

#define FASTBP_INSTANTIATE(T)                                                                 \
  template void gemm_batched<T>(int64_t, int64_t, int64_t, int64_t, T, const T*, int64_t,    \
                                int64_t, int64_t, const T*, int64_t, int64_t, int64_t, T, T*, \
                                int64_t, int64_t, int);
FASTBP_INSTANTIATE(float)
FASTBP_INSTANTIATE(double)
#undef FASTBP_INSTANTIATE

}  // namespace fastbp
