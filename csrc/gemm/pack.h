// Packing: copies a sliver of an operand into the layout the micro-kernel reads
// (kc steps of `width` lanes, zero-padded). A "lane" is a row of A or a column of B.
#pragma once
#include <algorithm>
#include <cstdint>

#include "blocking.h"

#if defined(__SSE2__) || defined(_M_X64)
#include <emmintrin.h>
#define FASTBP_PACK_SSE2 1
#endif

namespace fastbp {

// Zeroes lanes [lanes, width) of a packed sliver of kc steps: edge slivers are padded to full width.
template <typename T>
inline void zero_lanes(int64_t lanes, int64_t kc, int width, T* dst) {
  if (lanes >= width) return;
  for (int64_t q = 0; q < kc; ++q)
    for (int64_t l = lanes; l < width; ++l) dst[q * width + l] = T(0);
}
namespace pack_detail {

// dst[0..n) = src[0..n). An explicit loop: memcpy's call and dispatch cost more than the copy
// for rows of 16..32 values.
template <typename T>
inline void copy_row(const T* src, int64_t n, T* dst) {
  int64_t l = 0;
#ifdef FASTBP_PACK_SSE2
  constexpr int64_t V = 16 / sizeof(T);
  const char* s = reinterpret_cast<const char*>(src);
  char* d = reinterpret_cast<char*>(dst);
  for (; l + 2 * V <= n; l += 2 * V) {
    __m128i x0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + l * sizeof(T)));
    __m128i x1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + l * sizeof(T) + 16));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + l * sizeof(T)), x0);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + l * sizeof(T) + 16), x1);
  }
  for (; l + V <= n; l += V)  // short rows (im2col runs of small images) end here, not below
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + l * sizeof(T)),
                     _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + l * sizeof(T))));
#endif
  for (; l < n; ++l) dst[l] = src[l];
}

// even[k] = src[2k], odd[k] = src[2k + 1] for k < n: a row split into its two column phases in
// one pass (SSE2 shuffles of two vectors at a time, then element by element).
inline void deinterleave(const float* src, int64_t n, float* even, float* odd) {
  int64_t k = 0;
#ifdef FASTBP_PACK_SSE2
  for (; k + 4 <= n; k += 4) {
    const __m128 a = _mm_loadu_ps(src + 2 * k), b = _mm_loadu_ps(src + 2 * k + 4);
    _mm_storeu_ps(even + k, _mm_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)));
    _mm_storeu_ps(odd + k, _mm_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
  }
#endif
  for (; k < n; ++k) {
    even[k] = src[2 * k];
    odd[k] = src[2 * k + 1];
  }
}
inline void deinterleave(const double* src, int64_t n, double* even, double* odd) {
  int64_t k = 0;
#ifdef FASTBP_PACK_SSE2
  for (; k + 2 <= n; k += 2) {
    const __m128d a = _mm_loadu_pd(src + 2 * k), b = _mm_loadu_pd(src + 2 * k + 2);
    _mm_storeu_pd(even + k, _mm_unpacklo_pd(a, b));
    _mm_storeu_pd(odd + k, _mm_unpackhi_pd(a, b));
  }
#endif
  for (; k < n; ++k) {
    even[k] = src[2 * k];
    odd[k] = src[2 * k + 1];
  }
}

// even[j] = in(2j + off), odd[j] = in(2j + 1 + off) for j < n, with in(i) = row[i] for
// 0 <= i < W and zero elsewhere: a padded row split into its two column phases in one pass (the
// stride-2 padded input, Winograd's planes of stride-2 tiles).
template <typename T>
inline void split_phases(const T* row, int64_t W, int64_t off, int64_t n, T* even, T* odd) {
  // [ja, jb): the j whose two columns 2j + off and 2j + 1 + off both lie in [0, W)
  const int64_t ja = std::min(n, off >= 0 ? int64_t(0) : (1 - off) / 2);
  const int64_t jb = std::clamp<int64_t>(W - off <= 0 ? 0 : (W - off) / 2, ja, n);
  const auto at = [&](int64_t i) { return i >= 0 && i < W ? row[i] : T(0); };
  for (int64_t j = 0; j < ja; ++j) {
    even[j] = at(2 * j + off);
    odd[j] = at(2 * j + 1 + off);
  }
  deinterleave(row + 2 * ja + off, jb - ja, even + ja, odd + ja);
  for (int64_t j = jb; j < n; ++j) {
    even[j] = at(2 * j + off);
    odd[j] = at(2 * j + 1 + off);
  }
}

}  // namespace pack_detail

// Asks for the cache lines of p[0..n) into L1, where the ISA can (a hint: never faults).
template <typename T>
inline void prefetch_run(const T* p, int64_t n) {
#ifdef FASTBP_PACK_SSE2
  const char* c = reinterpret_cast<const char*>(p);
  for (int64_t b = 0; b < n * int64_t(sizeof(T)) + 63; b += 64)
    _mm_prefetch(c + b, _MM_HINT_T0);
#else
  (void)p;
  (void)n;
#endif
}

// An operand in memory: element (lane, k) sits at p[lane*lane_stride + k*k_stride]. Any strides,
// negative included, so transposes and numpy views need no copy.
template <typename T>
struct StridedPacker {
  const T* p;
  int64_t lane_stride, k_stride;

  // k steps to pack per pass over a block of slivers (driver.h); 0 = the whole depth
  int64_t pack_depth() const { return lane_stride == 1 ? 16 : 0; }

  // lanes as rows with k contiguous: a kernel can read them in place (driver.h)
  const T* rows_in_place(int64_t& ld) const {
    ld = lane_stride;
    return k_stride == 1 && lane_stride > 0 ? p : nullptr;
  }

  void pack(int64_t lane0, int64_t lanes, int64_t k0, int64_t kc, int width, T* dst) const {
    const T* src = p + lane0 * lane_stride + k0 * k_stride;
    if (lane_stride == 1) {  // each k step is a contiguous run of lanes
      for (int64_t q = 0; q < kc; ++q) {
        pack_detail::copy_row(src + q * k_stride, lanes, dst + q * width);
        for (int l = static_cast<int>(lanes); l < width; ++l) dst[q * width + l] = T(0);
      }
      return;
    }
    if (k_stride == 1) {  // each lane runs along k: a transpose (kernels/transpose.h)
      transpose_kernel<T>()(src, lane_stride, lanes, kc, dst, width);
      zero_lanes(lanes, kc, width, dst);
      return;
    }
    for (int64_t l = 0; l < lanes; ++l) {
      const T* s = src + l * lane_stride;
      for (int64_t q = 0; q < kc; ++q) dst[q * width + l] = s[q * k_stride];
    }
    for (int64_t q = 0; q < kc; ++q)
      for (int l = static_cast<int>(lanes); l < width; ++l) dst[q * width + l] = T(0);
  }
};

// The same operand, which the driver reads in place where it can (an A whose rows have k
// contiguous, on ISAs with a rows kernel) rather than packing it: for an A that is large next
// to B, such as a linear layer's weights against a small batch.
template <typename T>
struct InPlaceRowsPacker : StridedPacker<T> {
  bool prefer_in_place() const { return true; }
};

}  // namespace fastbp
