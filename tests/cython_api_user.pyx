# cython: language_level=3, boundscheck=False, wraparound=False
"""A user's own extension that cimports fastbp (compiled by tests/test_cython_api.py).

Each function takes flat C-contiguous arrays (None for a NULL pointer) and calls fastbp's C-level
API `repeats` times from a loop without the GIL, returning the last error code.
"""
from libc.stdint cimport int64_t

cimport fastbp.cython_api as fb

ctypedef fused real:
    float
    double

CODES = {"OK": fb.FASTBP_OK, "NO_MEMORY": fb.FASTBP_ERR_NO_MEMORY,
         "INTERNAL": fb.FASTBP_ERR_INTERNAL, "TOO_LARGE": fb.FASTBP_ERR_TOO_LARGE}


cdef real* ptr(real[::1] a) noexcept:
    return NULL if a is None or a.shape[0] == 0 else &a[0]


def gemm(bint trans_a, bint trans_b, int64_t M, int64_t N, int64_t K, double alpha, real[::1] A,
         int64_t lda, real[::1] B, int64_t ldb, double beta, real[::1] C, int64_t ldc,
         int repeats=1):
    cdef real *a = ptr(A)
    cdef real *b = ptr(B)
    cdef real *c = ptr(C)
    cdef int code = 0, i
    with nogil:
        for i in range(repeats):
            if real is float:
                code = fb.sgemm(trans_a, trans_b, M, N, K, <float>alpha, a, lda, b, ldb,
                                <float>beta, c, ldc)
            else:
                code = fb.dgemm(trans_a, trans_b, M, N, K, alpha, a, lda, b, ldb, beta, c, ldc)
            if code != fb.FASTBP_OK:
                break
    return code


def conv2d_forward(real[::1] x, real[::1] weight, real[::1] bias, real[::1] y, sizes,
                   int repeats=1):
    """sizes: (N, C, H, W, O, kh, kw, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups)"""
    cdef int64_t s[14]
    s[:] = sizes
    cdef real *px = ptr(x)
    cdef real *pw = ptr(weight)
    cdef real *pb = ptr(bias)
    cdef real *py = ptr(y)
    cdef int code = 0, i
    with nogil:
        for i in range(repeats):
            if real is float:
                code = fb.sconv2d_forward(px, pw, pb, py, s[0], s[1], s[2], s[3], s[4], s[5],
                                          s[6], s[7], s[8], s[9], s[10], s[11], s[12], s[13])
            else:
                code = fb.dconv2d_forward(px, pw, pb, py, s[0], s[1], s[2], s[3], s[4], s[5],
                                          s[6], s[7], s[8], s[9], s[10], s[11], s[12], s[13])
            if code != fb.FASTBP_OK:
                break
    return code


def conv2d_backward(real[::1] grad_output, real[::1] x, real[::1] weight, real[::1] grad_input,
                    real[::1] grad_weight, real[::1] grad_bias, sizes):
    cdef int64_t s[14]
    s[:] = sizes
    cdef real *pdy = ptr(grad_output)
    cdef real *px = ptr(x)
    cdef real *pw = ptr(weight)
    cdef real *gx = ptr(grad_input)
    cdef real *gw = ptr(grad_weight)
    cdef real *gb = ptr(grad_bias)
    cdef int code
    with nogil:
        if real is float:
            code = fb.sconv2d_backward(pdy, px, pw, gx, gw, gb, s[0], s[1], s[2], s[3], s[4],
                                       s[5], s[6], s[7], s[8], s[9], s[10], s[11], s[12], s[13])
        else:
            code = fb.dconv2d_backward(pdy, px, pw, gx, gw, gb, s[0], s[1], s[2], s[3], s[4],
                                       s[5], s[6], s[7], s[8], s[9], s[10], s[11], s[12], s[13])
    return code


def linear_forward(real[::1] x, real[::1] weight, real[::1] bias, real[::1] y, int64_t batch,
                   int64_t in_features, int64_t out_features):
    cdef real *px = ptr(x)
    cdef real *pw = ptr(weight)
    cdef real *pb = ptr(bias)
    cdef real *py = ptr(y)
    cdef int code
    with nogil:
        if real is float:
            code = fb.slinear_forward(px, pw, pb, py, batch, in_features, out_features)
        else:
            code = fb.dlinear_forward(px, pw, pb, py, batch, in_features, out_features)
    return code


def linear_backward(real[::1] grad_output, real[::1] x, real[::1] weight, real[::1] grad_input,
                    real[::1] grad_weight, real[::1] grad_bias, int64_t batch,
                    int64_t in_features, int64_t out_features):
    cdef real *pdy = ptr(grad_output)
    cdef real *px = ptr(x)
    cdef real *pw = ptr(weight)
    cdef real *gx = ptr(grad_input)
    cdef real *gw = ptr(grad_weight)
    cdef real *gb = ptr(grad_bias)
    cdef int code
    with nogil:
        if real is float:
            code = fb.slinear_backward(pdy, px, pw, gx, gw, gb, batch, in_features, out_features)
        else:
            code = fb.dlinear_backward(pdy, px, pw, gx, gw, gb, batch, in_features, out_features)
    return code


def conv_output_size(int64_t size, int64_t kernel, int64_t stride, int64_t padding,
                     int64_t dilation):
    cdef int64_t result
    with nogil:
        result = fb.conv_output_size(size, kernel, stride, padding, dilation)
    return result
