// Dot-product kernels: a GEMM whose operands both run along k in memory, read in place,
// one signature for every ISA (contract: README.md):
//   C[i][j] = beta * C[i][j] + sum_{k < K} a[a_off[i] + k] * b[b_off[j] + kp(k)],  i < m, j < n
// with kp(k) = k, or with a table, kp(k) = k_pos[k / S] + k % S for S = kDotStep<T>: B's rows
// may come in runs of S that lie anywhere. K is a multiple of S and every row is readable that
// far. Each C element is one
// fixed-order sum: lanes along k, reduced in a fixed tree, so results do not depend on threads.
// The convolution's weight gradient is such a product: rows of dY against rows of the padded
// input (im2col.h), with no packing.
#pragma once
#include <cstdint>

namespace fastbp::kernels {

template <typename T>
constexpr int64_t kDotStep = 64 / sizeof(T);

template <typename T>
using dot_rows_fn = void (*)(int64_t K, const T* a, const int64_t* a_off, int64_t m, const T* b,
                             const int64_t* b_off, int64_t n, const int64_t* k_pos, T beta, T* c,
                             int64_t ldc);

// Matrix-vector dots: out[i] = sum_{k < K} a[i * lda + k] * x[k] for i < m, any K. Lanes run
// along k and are reduced in a fixed tree, then the last K % lanes terms are added in order.
template <typename T>
using dot_vec_fn = void (*)(int64_t K, const T* a, int64_t lda, int64_t m, const T* x, T* out);

#define FASTBP_DECLARE_DOT(isa)                                                              \
  namespace isa {                                                                             \
  void sdot_vec(int64_t K, const float* a, int64_t lda, int64_t m, const float* x, float* out); \
  void ddot_vec(int64_t K, const double* a, int64_t lda, int64_t m, const double* x,          \
                double* out);                                                                 \
  void sdot_rows(int64_t K, const float* a, const int64_t* a_off, int64_t m, const float* b,  \
                 const int64_t* b_off, int64_t n, const int64_t* k_pos, float beta, float* c, \
                 int64_t ldc);                                                                \
  void ddot_rows(int64_t K, const double* a, const int64_t* a_off, int64_t m, const double* b, \
                 const int64_t* b_off, int64_t n, const int64_t* k_pos, double beta,          \
                 double* c, int64_t ldc);                                                     \
  }
FASTBP_DECLARE_DOT(ref)
FASTBP_DECLARE_DOT(avx2)
FASTBP_DECLARE_DOT(avx512)
#undef FASTBP_DECLARE_DOT

}  // namespace fastbp::kernels
