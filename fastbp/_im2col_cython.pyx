# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""im2col and col2im the way a course's Cython conv layer writes them, for the benchmark peer in
fastbp/_cython_peer.py: plain loops over a zero-padded input, one thread.

The column matrix has a row per (channel, kernel row, kernel column) and a column per output
pixel of every image: cols[(c*kh + i)*kw + j, (n*Ho + oh)*Wo + ow] = x_pad[n, c, oh*sh + i, ow*sw + j].
"""

ctypedef fused real:
    float
    double


def im2col(const real[:, :, :, ::1] x_pad, real[:, ::1] cols, Py_ssize_t kh, Py_ssize_t kw,
           Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t Ho, Py_ssize_t Wo):
    cdef Py_ssize_t N = x_pad.shape[0], C = x_pad.shape[1]
    cdef Py_ssize_t c, i, j, n, oh, ow, row, col
    with nogil:
        for c in range(C):
            for i in range(kh):
                for j in range(kw):
                    row = (c * kh + i) * kw + j
                    for n in range(N):
                        for oh in range(Ho):
                            col = (n * Ho + oh) * Wo
                            for ow in range(Wo):
                                cols[row, col + ow] = x_pad[n, c, oh * sh + i, ow * sw + j]


def col2im(const real[:, ::1] cols, real[:, :, :, ::1] x_pad, Py_ssize_t kh, Py_ssize_t kw,
           Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t Ho, Py_ssize_t Wo):
    """x_pad += the adjoint of im2col: each entry of cols added back onto the pixel it came from."""
    cdef Py_ssize_t N = x_pad.shape[0], C = x_pad.shape[1]
    cdef Py_ssize_t c, i, j, n, oh, ow, row, col
    with nogil:
        for c in range(C):
            for i in range(kh):
                for j in range(kw):
                    row = (c * kh + i) * kw + j
                    for n in range(N):
                        for oh in range(Ho):
                            col = (n * Ho + oh) * Wo
                            for ow in range(Wo):
                                x_pad[n, c, oh * sh + i, ow * sw + j] += cols[row, col + ow]
