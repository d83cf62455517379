// BLAS-shaped GEMM entry, row-major: C = alpha * op(A) op(B) + beta * C, where op(A) is M x K,
// op(B) is K x N. A(i,p) = trans_a ? A[p*lda + i] : A[i*lda + p]; likewise B with ldb.
#pragma once
#include <cstdint>

#include "../parallel.h"

namespace fastbp {

// What is applied to each finished tile of C while it is still in cache: with Epilogue::relu,
// C = relu(alpha * op(A) op(B) + beta * C).
enum class Epilogue { none, relu };

template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc,
          int nthreads = max_threads());
template <typename T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc, Epilogue ep);

// The same with arbitrary element strides for A (rs_a, cs_a) and B (rs_b, cs_b): numpy views.
template <typename T>
void gemm_strided(int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t rs_a,
                  int64_t cs_a, const T* B, int64_t rs_b, int64_t cs_b, T beta, T* C,
                  int64_t ldc, int nthreads = max_threads());

}  // namespace fastbp
