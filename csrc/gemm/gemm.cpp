#include "gemm.h"

#include "driver.h"
#include "gemv.h"
#include "pack.h"

namespace fastbp {

namespace {
template <typename T>
void gemm_epilogue(int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t rs_a,
                   int64_t cs_a, const T* B, int64_t rs_b, int64_t cs_b, T beta, T* C,
                   int64_t ldc, int nthreads, Epilogue ep) {
  if ((M == 1 || N == 1) && K > 0 && alpha != T(0) &&
      gemv(M, N, K, alpha, A, rs_a, cs_a, B, rs_b, cs_b, beta, C, ldc, nthreads)) {
    apply_epilogue(ep, static_cast<const T*>(nullptr), M, N, C, ldc);
    return;
  }
  // lanes of A are its rows, lanes of B its columns
  gemm_driver(M, N, K, alpha, StridedPacker<T>{A, rs_a, cs_a}, StridedPacker<T>{B, cs_b, rs_b},
              beta, C, ldc, nthreads, ep);
}
}  // namespace

template <typename T>
void gemm_strided(int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t rs_a,
                  int64_t cs_a, const T* B, int64_t rs_b, int64_t cs_b, T beta, T* C,
                  int64_t ldc, int nthreads) {
  gemm_epilogue(M, N, K, alpha, A, rs_a, cs_a, B, rs_b, cs_b, beta, C, ldc, nthreads,
                Epilogue::none);
}

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc, Epilogue ep) {
  gemm_epilogue(M, N, K, alpha, A, trans_a ? 1 : lda, trans_a ? lda : 1, B, trans_b ? 1 : ldb,
                trans_b ? ldb : 1, beta, C, ldc, max_threads(), ep);
}

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc, int nthreads) {
  gemm_strided(M, N, K, alpha, A, trans_a ? 1 : lda, trans_a ? lda : 1, B, trans_b ? 1 : ldb,
               trans_b ? ldb : 1, beta, C, ldc, nthreads);
}

#define FASTBP_INSTANTIATE(T)                                                                \
  template void gemm<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t,         \
                        const T*, int64_t, T, T*, int64_t, int);                             \
  template void gemm<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t,         \
                        const T*, int64_t, T, T*, int64_t, Epilogue);                        \
  template void gemm_strided<T>(int64_t, int64_t, int64_t, T, const T*, int64_t, int64_t,    \
                                const T*, int64_t, int64_t, T, T*, int64_t, int);
FASTBP_INSTANTIATE(float)
FASTBP_INSTANTIATE(double)
#undef FASTBP_INSTANTIATE

}  // namespace fastbp
