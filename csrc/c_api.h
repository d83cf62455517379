/* fastbp's C entry points, for fastbp.cython_api: a table of function pointers that _core hands
 * out in the capsule "fastbp._core._C_API", so the Cython module calls the one copy of the
 * kernels (and the one dispatch state and thread count) inside _core and links none of it.
 *
 * Contract of every entry: dense row-major arrays of float (s...) or double (d...); sizes are
 * checked before anything is read; nothing throws, nothing touches Python. The result is
 *   FASTBP_OK (0)            done;
 *   -k (k >= 1)              argument k (1-based, in declaration order) is invalid, the first
 *                            one found; nothing was written;
 *   FASTBP_ERR_NO_MEMORY     scratch memory could not be allocated;
 *   FASTBP_ERR_INTERNAL      any other failure inside the core;
 *   FASTBP_ERR_TOO_LARGE     an array of these sizes would exceed 2^59 elements.
 * A pointer may be NULL when the call does not read or write it (empty arrays, gradients not
 * wanted, no bias). Outputs must not overlap inputs.
 */
#ifndef FASTBP_C_API_H
#define FASTBP_C_API_H

#include <stdint.h>

#define FASTBP_C_API_VERSION 1
#define FASTBP_OK 0
#define FASTBP_ERR_NO_MEMORY 1
#define FASTBP_ERR_INTERNAL 2
#define FASTBP_ERR_TOO_LARGE 3

#ifdef __cplusplus
extern "C" {
#endif

/* C = alpha op(A) op(B) + beta C, op(A) M x K, op(B) K x N, row-major with leading dimensions
 * lda, ldb, ldc; op(X) = X^T when trans_x != 0. As in BLAS, beta == 0 means C is not read. */
typedef int (*fastbp_sgemm_fn)(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
                               float alpha, const float* A, int64_t lda, const float* B,
                               int64_t ldb, float beta, float* C, int64_t ldc);
typedef int (*fastbp_dgemm_fn)(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K,
                               double alpha, const double* A, int64_t lda, const double* B,
                               int64_t ldb, double beta, double* C, int64_t ldc);

/* y (N, O, Ho, Wo) = conv2d(x (N, C, H, W), weight (O, C/groups, kh, kw), bias (O) or NULL),
 * padding symmetric as in PyTorch; Ho, Wo from fastbp_conv_output_size. */
#define FASTBP_CONV_FORWARD_ARGS(T)                                                       \
  const T *x, const T *weight, const T *bias, T *y, int64_t N, int64_t C, int64_t H,      \
      int64_t W, int64_t O, int64_t kh, int64_t kw, int64_t stride_h, int64_t stride_w,   \
      int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w, int64_t groups
/* grad_input (N, C, H, W), grad_weight, grad_bias (O): each NULL when not wanted. */
#define FASTBP_CONV_BACKWARD_ARGS(T)                                                        \
  const T *grad_output, const T *x, const T *weight, T *grad_input, T *grad_weight,        \
      T *grad_bias, int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh,     \
      int64_t kw, int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w,        \
      int64_t dilation_h, int64_t dilation_w, int64_t groups
/* y (batch, out) = x (batch, in) weight^T (weight: out, in) + bias (out) or NULL */
#define FASTBP_LINEAR_FORWARD_ARGS(T) \
  const T *x, const T *weight, const T *bias, T *y, int64_t batch, int64_t in_features, \
      int64_t out_features
#define FASTBP_LINEAR_BACKWARD_ARGS(T)                                                    \
  const T *grad_output, const T *x, const T *weight, T *grad_input, T *grad_weight,      \
      T *grad_bias, int64_t batch, int64_t in_features, int64_t out_features

typedef struct fastbp_c_api {
  int version; /* FASTBP_C_API_VERSION; later versions only append entries */
  fastbp_sgemm_fn sgemm;
  fastbp_dgemm_fn dgemm;
  int (*sconv2d_forward)(FASTBP_CONV_FORWARD_ARGS(float));
  int (*dconv2d_forward)(FASTBP_CONV_FORWARD_ARGS(double));
  int (*sconv2d_backward)(FASTBP_CONV_BACKWARD_ARGS(float));
  int (*dconv2d_backward)(FASTBP_CONV_BACKWARD_ARGS(double));
  int (*slinear_forward)(FASTBP_LINEAR_FORWARD_ARGS(float));
  int (*dlinear_forward)(FASTBP_LINEAR_FORWARD_ARGS(double));
  int (*slinear_backward)(FASTBP_LINEAR_BACKWARD_ARGS(float));
  int (*dlinear_backward)(FASTBP_LINEAR_BACKWARD_ARGS(double));
  /* Output length of a convolution along one axis, or -1 when the arguments are invalid or
   * the kernel does not fit the padded input. */
  int64_t (*conv_output_size)(int64_t size, int64_t kernel, int64_t stride, int64_t padding,
                              int64_t dilation);
} fastbp_c_api;

#ifdef __cplusplus
}
namespace fastbp {
const fastbp_c_api& c_api_table();  // the one table, filled at compile time
}
#endif

#endif
