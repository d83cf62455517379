// The ymm blocks of the transpose kernels (transpose.h), shared by the AVX2 and AVX-512 files:
// 8x8 floats (unpack, shuffle, then swap 128-bit halves) and 4x4 doubles. Include after
// generic_transpose.h, inside the same anonymous namespace, in a file built with AVX2 flags.
#pragma once

inline void block8x8(const float* s, int64_t ls, float* d, int64_t ld) {
  __m256 r[8], t[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(s + i * ls);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  // r[i] (i < 4) holds column i of rows 0-3 and column i + 4 of them; r[i + 4] those of rows 4-7
  for (int i = 0; i < 4; ++i) {
    _mm256_storeu_ps(d + i * ld, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
    _mm256_storeu_ps(d + (i + 4) * ld, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
  }
}

inline void block4x4d(const double* s, int64_t ls, double* d, int64_t ld) {
  const __m256d r0 = _mm256_loadu_pd(s), r1 = _mm256_loadu_pd(s + ls);
  const __m256d r2 = _mm256_loadu_pd(s + 2 * ls), r3 = _mm256_loadu_pd(s + 3 * ls);
  const __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
  const __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
  _mm256_storeu_pd(d, _mm256_permute2f128_pd(t0, t2, 0x20));
  _mm256_storeu_pd(d + ld, _mm256_permute2f128_pd(t1, t3, 0x20));
  _mm256_storeu_pd(d + 2 * ld, _mm256_permute2f128_pd(t0, t2, 0x31));
  _mm256_storeu_pd(d + 3 * ld, _mm256_permute2f128_pd(t1, t3, 0x31));
}

inline void transpose_ymm(const float* src, int64_t ls, int64_t rows, int64_t cols, float* dst,
                          int64_t ld) {
  const auto rest = [](const float* s, int64_t l, int64_t r, int64_t c, float* d, int64_t dl) {
    transpose_sse2(s, l, r, c, d, dl);
  };
  transpose_tiles<8, block8x8>(src, ls, rows, cols, dst, ld, rest);
}
inline void transpose_ymm(const double* src, int64_t ls, int64_t rows, int64_t cols,
                          double* dst, int64_t ld) {
  const auto rest = [](const double* s, int64_t l, int64_t r, int64_t c, double* d, int64_t dl) {
    transpose_sse2(s, l, r, c, d, dl);
  };
  transpose_tiles<4, block4x4d>(src, ls, rows, cols, dst, ld, rest);
}
