// AVX-512 transpose (transpose.h): 16x16 float blocks in zmm registers (4 rounds of 16
// shuffles, against 8 per 16 floats in SSE2's 4x4 blocks), then the ymm blocks; doubles in the
// ymm blocks. Built with AVX-512 flags only (see CMakeLists.txt).
#include <immintrin.h>

#include "transpose.h"

namespace {
#include "generic_transpose.h"
#include "transpose_ymm.h"

// GCC 12 warns that the _mm512_undefined_ps() inside these shuffles' intrinsics is used
// uninitialized; their unmasked forms never read it.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
inline void block16x16(const float* s, int64_t ls, float* d, int64_t ld) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(s + i * ls);
  // within each 128-bit lane, as the ymm block: 4x4 blocks of 4 rows each
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xEE);
    r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  // r[4b + j], lane L: column 4L + j of rows 4b..4b+3. Two rounds of 128-bit lane shuffles
  // gather each column's four row groups.
  for (int i = 0; i < 8; ++i) {
    const int a = (i / 4) * 8 + i % 4;  // row groups 0 and 1, then 2 and 3
    t[i] = _mm512_shuffle_f32x4(r[a], r[a + 4], 0x88);
    t[i + 8] = _mm512_shuffle_f32x4(r[a], r[a + 4], 0xDD);
  }
  for (int j = 0; j < 4; ++j) {
    _mm512_storeu_ps(d + j * ld, _mm512_shuffle_f32x4(t[j], t[j + 4], 0x88));
    _mm512_storeu_ps(d + (j + 8) * ld, _mm512_shuffle_f32x4(t[j], t[j + 4], 0xDD));
    _mm512_storeu_ps(d + (j + 4) * ld, _mm512_shuffle_f32x4(t[j + 8], t[j + 12], 0x88));
    _mm512_storeu_ps(d + (j + 12) * ld, _mm512_shuffle_f32x4(t[j + 8], t[j + 12], 0xDD));
  }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

// 16x16 blocks, then the ymm blocks for the strips left
inline void transpose_zmm(const float* src, int64_t ls, int64_t rows, int64_t cols, float* dst,
                          int64_t ld) {
  const auto rest = [](const float* s, int64_t l, int64_t r, int64_t c, float* d, int64_t dl) {
    transpose_ymm(s, l, r, c, d, dl);
  };
  transpose_tiles<16, block16x16>(src, ls, rows, cols, dst, ld, rest);
}
}  // namespace

namespace fastbp::kernels::avx512 {
FASTBP_DEFINE_TRANSPOSE_KERNELS(transpose_zmm, transpose_ymm)
}  // namespace fastbp::kernels::avx512
