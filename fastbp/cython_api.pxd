# fastbp's C-level API for Cython extensions, in the manner of scipy.linalg.cython_blas:
#
#     cimport fastbp.cython_api as fb
#     with nogil:
#         code = fb.sgemm(False, False, M, N, K, 1.0, A, K, B, N, 0.0, C, N)
#
# Arrays are dense and row-major (C order) on raw pointers; every size is int64_t. The functions
# never take the GIL, never raise, and check their sizes before reading anything. They return
#   FASTBP_OK (0) on success;
#   -k when argument k (counted from 1, in the order declared here) is invalid, the first one
#      found; nothing was written;
#   FASTBP_ERR_NO_MEMORY when scratch memory could not be allocated;
#   FASTBP_ERR_TOO_LARGE when an array of the given sizes would exceed 2**59 elements;
#   FASTBP_ERR_INTERNAL for any other failure inside fastbp.
# A pointer may be NULL when nothing is read from or written to it (an empty array, a gradient
# not wanted, no bias). Outputs must not overlap inputs. The work runs on fastbp's threads
# (fastbp.set_num_threads) and CPU path (FASTBP_CPU_CAPABILITY), the same as fastbp's Python API,
# with the same results to the bit. Calls from several threads at once are safe.
from libc.stdint cimport int64_t

cdef enum:
    FASTBP_OK = 0
    FASTBP_ERR_NO_MEMORY = 1
    FASTBP_ERR_INTERNAL = 2
    FASTBP_ERR_TOO_LARGE = 3

# C = alpha * op(A) @ op(B) + beta * C, op(A) M x K, op(B) K x N, op(X) = X.T when trans_x.
# lda, ldb, ldc: row pitch of A, B, C as stored. As in BLAS, beta == 0 means C is not read.
cdef int sgemm(bint trans_a, bint trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
               float* C, int64_t ldc) noexcept nogil
cdef int dgemm(bint trans_a, bint trans_b, int64_t M, int64_t N, int64_t K, double alpha,
               const double* A, int64_t lda, const double* B, int64_t ldb, double beta,
               double* C, int64_t ldc) noexcept nogil

# torch.nn.functional.conv2d: x (N, C, H, W), weight (O, C // groups, kh, kw), bias (O,) or
# NULL, y (N, O, Ho, Wo) with Ho = conv_output_size(H, kh, stride_h, pad_h, dilation_h) and
# likewise Wo. Padding is symmetric. A 1-d convolution is the case H = kh = 1, pad_h = 0.
cdef int sconv2d_forward(const float* x, const float* weight, const float* bias, float* y,
                         int64_t N, int64_t C, int64_t H, int64_t W, int64_t O,
                         int64_t kh, int64_t kw, int64_t stride_h, int64_t stride_w,
                         int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w,
                         int64_t groups) noexcept nogil
cdef int dconv2d_forward(const double* x, const double* weight, const double* bias, double* y,
                         int64_t N, int64_t C, int64_t H, int64_t W, int64_t O,
                         int64_t kh, int64_t kw, int64_t stride_h, int64_t stride_w,
                         int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w,
                         int64_t groups) noexcept nogil

# Gradients of conv2d from grad_output (N, O, Ho, Wo): grad_input (N, C, H, W), grad_weight
# (O, C // groups, kh, kw), grad_bias (O,); pass NULL for any gradient not wanted.
cdef int sconv2d_backward(const float* grad_output, const float* x, const float* weight,
                          float* grad_input, float* grad_weight, float* grad_bias,
                          int64_t N, int64_t C, int64_t H, int64_t W, int64_t O,
                          int64_t kh, int64_t kw, int64_t stride_h, int64_t stride_w,
                          int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w,
                          int64_t groups) noexcept nogil
cdef int dconv2d_backward(const double* grad_output, const double* x, const double* weight,
                          double* grad_input, double* grad_weight, double* grad_bias,
                          int64_t N, int64_t C, int64_t H, int64_t W, int64_t O,
                          int64_t kh, int64_t kw, int64_t stride_h, int64_t stride_w,
                          int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w,
                          int64_t groups) noexcept nogil

# y (batch, out_features) = x (batch, in_features) @ weight.T + bias; weight (out, in), bias
# (out,) or NULL. The backward fills grad_input, grad_weight, grad_bias (each may be NULL).
cdef int slinear_forward(const float* x, const float* weight, const float* bias, float* y,
                         int64_t batch, int64_t in_features, int64_t out_features) noexcept nogil
cdef int dlinear_forward(const double* x, const double* weight, const double* bias, double* y,
                         int64_t batch, int64_t in_features, int64_t out_features) noexcept nogil
cdef int slinear_backward(const float* grad_output, const float* x, const float* weight,
                          float* grad_input, float* grad_weight, float* grad_bias,
                          int64_t batch, int64_t in_features, int64_t out_features) noexcept nogil
cdef int dlinear_backward(const double* grad_output, const double* x, const double* weight,
                          double* grad_input, double* grad_weight, double* grad_bias,
                          int64_t batch, int64_t in_features, int64_t out_features) noexcept nogil

# Output length of a convolution along one axis: (size + 2*padding - dilation*(kernel-1) - 1)
# // stride + 1, or -1 when an argument is invalid or the kernel does not fit the padded input.
cdef int64_t conv_output_size(int64_t size, int64_t kernel, int64_t stride, int64_t padding,
                              int64_t dilation) noexcept nogil
