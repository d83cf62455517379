// Portable pieces of the transpose kernels (transpose.h): the tiling of a matrix into E x E
// blocks, the element loop for what no block covers, and the SSE2 4x4 / 2x2 blocks on x86.
// Include only inside an anonymous namespace, as generic_ukernel.h, after <cstdint> and, on
// x86, <emmintrin.h> (which must not be included inside a namespace).
#pragma once

#if defined(__SSE2__) || defined(_M_X64)
#define FASTBP_TRANSPOSE_SSE2 1
#endif

template <typename T>
void transpose_elements(const T* src, int64_t ls, int64_t rows, int64_t cols, T* dst,
                        int64_t ld) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[c * ld + r] = src[r * ls + c];
}

// The E x E blocks that fit, `Block(src, ls, dst, ld)` each (a direct call, inlined), columns
// outer: a pass over a block column writes E whole rows of dst, and reads E rows of src a few
// lines at a time. The strips left over (rows past the last whole block, then columns) go to
// `rest`.
template <int E, auto Block, typename T, class Rest>
void transpose_tiles(const T* src, int64_t ls, int64_t rows, int64_t cols, T* dst, int64_t ld,
                     Rest rest) {
  const int64_t R = rows / E * E, C = cols / E * E;
  for (int64_t c = 0; c < C; c += E)
    for (int64_t r = 0; r < R; r += E) Block(src + r * ls + c, ls, dst + c * ld + r, ld);
  if (R < rows) rest(src + R * ls, ls, rows - R, cols, dst + R, ld);
  if (C < cols && R > 0) rest(src + C, ls, R, cols - C, dst + C * ld, ld);
}

#ifdef FASTBP_TRANSPOSE_SSE2
inline void block4x4(const float* s, int64_t ls, float* d, int64_t ld) {
  __m128 r0 = _mm_loadu_ps(s), r1 = _mm_loadu_ps(s + ls);
  __m128 r2 = _mm_loadu_ps(s + 2 * ls), r3 = _mm_loadu_ps(s + 3 * ls);
  _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
  _mm_storeu_ps(d, r0);
  _mm_storeu_ps(d + ld, r1);
  _mm_storeu_ps(d + 2 * ld, r2);
  _mm_storeu_ps(d + 3 * ld, r3);
}
inline void block2x2(const double* s, int64_t ls, double* d, int64_t ld) {
  const __m128d r0 = _mm_loadu_pd(s), r1 = _mm_loadu_pd(s + ls);
  _mm_storeu_pd(d, _mm_unpacklo_pd(r0, r1));
  _mm_storeu_pd(d + ld, _mm_unpackhi_pd(r0, r1));
}
#endif

// SSE2's blocks, or the element loop where there is no SSE2.
inline void transpose_sse2(const float* src, int64_t ls, int64_t rows, int64_t cols, float* dst,
                           int64_t ld) {
#ifdef FASTBP_TRANSPOSE_SSE2
  transpose_tiles<4, block4x4>(src, ls, rows, cols, dst, ld, transpose_elements<float>);
#else
  transpose_elements(src, ls, rows, cols, dst, ld);
#endif
}
inline void transpose_sse2(const double* src, int64_t ls, int64_t rows, int64_t cols,
                           double* dst, int64_t ld) {
#ifdef FASTBP_TRANSPOSE_SSE2
  transpose_tiles<2, block2x2>(src, ls, rows, cols, dst, ld, transpose_elements<double>);
#else
  transpose_elements(src, ls, rows, cols, dst, ld);
#endif
}

// The two entry points of transpose.h for one ISA file, from its float and double bodies (any
// of the transpose_* functions above or of its own); expand inside that ISA's namespace.
#define FASTBP_DEFINE_TRANSPOSE_KERNELS(float_body, double_body)                              \
  void stranspose(const float* src, int64_t ld_src, int64_t rows, int64_t cols, float* dst,    \
                  int64_t ld_dst) {                                                            \
    float_body(src, ld_src, rows, cols, dst, ld_dst);                                          \
  }                                                                                            \
  void dtranspose(const double* src, int64_t ld_src, int64_t rows, int64_t cols, double* dst,  \
                  int64_t ld_dst) {                                                            \
    double_body(src, ld_src, rows, cols, dst, ld_dst);                                         \
  }
