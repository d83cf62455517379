# cython: language_level=3
"""fastbp's C-level API for Cython extensions: ``cimport fastbp.cython_api`` (see the .pxd).

Each function forwards to its entry in the table that fastbp._core exports as a capsule
(csrc/c_api.h, which also validates), so the kernels, the CPU path and the thread count are
_core's own: this module links none of the core.
"""
from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.stdint cimport int64_t

from fastbp import _core

cdef extern from "c_api.h":
    ctypedef struct fastbp_c_api:
        int version
        int (*sgemm)(int, int, int64_t, int64_t, int64_t, float, const float*, int64_t,
                     const float*, int64_t, float, float*, int64_t) noexcept nogil
        int (*dgemm)(int, int, int64_t, int64_t, int64_t, double, const double*, int64_t,
                     const double*, int64_t, double, double*, int64_t) noexcept nogil
        int (*sconv2d_forward)(const float*, const float*, const float*, float*,
                               int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                               int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                               int64_t) noexcept nogil
        int (*dconv2d_forward)(const double*, const double*, const double*, double*,
                               int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                               int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                               int64_t) noexcept nogil
        int (*sconv2d_backward)(const float*, const float*, const float*, float*, float*,
                                float*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                                int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                                int64_t) noexcept nogil
        int (*dconv2d_backward)(const double*, const double*, const double*, double*, double*,
                                double*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                                int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                                int64_t) noexcept nogil
        int (*slinear_forward)(const float*, const float*, const float*, float*,
                               int64_t, int64_t, int64_t) noexcept nogil
        int (*dlinear_forward)(const double*, const double*, const double*, double*,
                               int64_t, int64_t, int64_t) noexcept nogil
        int (*slinear_backward)(const float*, const float*, const float*, float*, float*,
                                float*, int64_t, int64_t, int64_t) noexcept nogil
        int (*dlinear_backward)(const double*, const double*, const double*, double*, double*,
                                double*, int64_t, int64_t, int64_t) noexcept nogil
        int64_t (*conv_output_size)(int64_t, int64_t, int64_t, int64_t, int64_t) noexcept nogil
    int C_API_VERSION "FASTBP_C_API_VERSION"
    int C_OK "FASTBP_OK"
    int C_ERR_NO_MEMORY "FASTBP_ERR_NO_MEMORY"
    int C_ERR_INTERNAL "FASTBP_ERR_INTERNAL"
    int C_ERR_TOO_LARGE "FASTBP_ERR_TOO_LARGE"

cdef const fastbp_c_api* api = <const fastbp_c_api*>PyCapsule_GetPointer(
    _core._C_API, "fastbp._core._C_API")
if api.version != C_API_VERSION:
    raise ImportError(f"fastbp.cython_api expects C API version {C_API_VERSION}, but "
                      f"fastbp._core provides {api.version}: reinstall fastbp")
if (FASTBP_OK, FASTBP_ERR_NO_MEMORY, FASTBP_ERR_INTERNAL, FASTBP_ERR_TOO_LARGE) != \
        (C_OK, C_ERR_NO_MEMORY, C_ERR_INTERNAL, C_ERR_TOO_LARGE):
    raise ImportError("fastbp.cython_api: the error codes of cython_api.pxd and c_api.h differ")


cdef int sgemm(bint trans_a, bint trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const float* A, int64_t lda, const float* B, int64_t ldb, float beta,
               float* C, int64_t ldc) noexcept nogil:
    return api.sgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)


cdef int dgemm(bint trans_a, bint trans_b, int64_t M, int64_t N, int64_t K, double alpha,
               const double* A, int64_t lda, const double* B, int64_t ldb, double beta,
               double* C, int64_t ldc) noexcept nogil:
    return api.dgemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)


cdef int sconv2d_forward(const float* x, const float* weight, const float* bias, float* y,
                         int64_t N, int64_t C, int64_t H, int64_t W, int64_t O,
                         int64_t kh, int64_t kw, int64_t stride_h, int64_t stride_w,
                         int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w,
                         int64_t groups) noexcept nogil:
    return api.sconv2d_forward(x, weight, bias, y, N, C, H, W, O, kh, kw, stride_h, stride_w,
                               pad_h, pad_w, dilation_h, dilation_w, groups)


cdef int dconv2d_forward(const double* x, const double* weight, const double* bias, double* y,
                         int64_t N, int64_t C, int64_t H, int64_t W, int64_t O,
                         int64_t kh, int64_t kw, int64_t stride_h, int64_t stride_w,
                         int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w,
                         int64_t groups) noexcept nogil:
    return api.dconv2d_forward(x, weight, bias, y, N, C, H, W, O, kh, kw, stride_h, stride_w,
                               pad_h, pad_w, dilation_h, dilation_w, groups)


cdef int sconv2d_backward(const float* grad_output, const float* x, const float* weight,
                          float* grad_input, float* grad_weight, float* grad_bias,
                          int64_t N, int64_t C, int64_t H, int64_t W, int64_t O,
                          int64_t kh, int64_t kw, int64_t stride_h, int64_t stride_w,
                          int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w,
                          int64_t groups) noexcept nogil:
    return api.sconv2d_backward(grad_output, x, weight, grad_input, grad_weight, grad_bias,
                                N, C, H, W, O, kh, kw, stride_h, stride_w, pad_h, pad_w,
                                dilation_h, dilation_w, groups)


cdef int dconv2d_backward(const double* grad_output, const double* x, const double* weight,
                          double* grad_input, double* grad_weight, double* grad_bias,
                          int64_t N, int64_t C, int64_t H, int64_t W, int64_t O,
                          int64_t kh, int64_t kw, int64_t stride_h, int64_t stride_w,
                          int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w,
                          int64_t groups) noexcept nogil:
    return api.dconv2d_backward(grad_output, x, weight, grad_input, grad_weight, grad_bias,
                                N, C, H, W, O, kh, kw, stride_h, stride_w, pad_h, pad_w,
                                dilation_h, dilation_w, groups)


cdef int slinear_forward(const float* x, const float* weight, const float* bias, float* y,
                         int64_t batch, int64_t in_features, int64_t out_features) noexcept nogil:
    return api.slinear_forward(x, weight, bias, y, batch, in_features, out_features)


cdef int dlinear_forward(const double* x, const double* weight, const double* bias, double* y,
                         int64_t batch, int64_t in_features, int64_t out_features) noexcept nogil:
    return api.dlinear_forward(x, weight, bias, y, batch, in_features, out_features)


cdef int slinear_backward(const float* grad_output, const float* x, const float* weight,
                          float* grad_input, float* grad_weight, float* grad_bias,
                          int64_t batch, int64_t in_features, int64_t out_features) noexcept nogil:
    return api.slinear_backward(grad_output, x, weight, grad_input, grad_weight, grad_bias,
                                batch, in_features, out_features)


cdef int dlinear_backward(const double* grad_output, const double* x, const double* weight,
                          double* grad_input, double* grad_weight, double* grad_bias,
                          int64_t batch, int64_t in_features, int64_t out_features) noexcept nogil:
    return api.dlinear_backward(grad_output, x, weight, grad_input, grad_weight, grad_bias,
                                batch, in_features, out_features)


cdef int64_t conv_output_size(int64_t size, int64_t kernel, int64_t stride, int64_t padding,
                              int64_t dilation) noexcept nogil:
    return api.conv_output_size(size, kernel, stride, padding, dilation)
