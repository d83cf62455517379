// Packing: copies a sliver of an operand into the layout the micro-kernel reads
// (kc steps of `width` lanes, zero-padded). A "lane" is a row of A or a column of B.
#pragma once
#include <cstdint>
#include <cstring>

namespace fastbp {

// An operand in memory: element (lane, k) sits at p[lane*lane_stride + k*k_stride]. Any strides,
// negative included, so transposes and numpy views need no copy.
template <typename T>
struct StridedPacker {
  const T* p;
  int64_t lane_stride, k_stride;

  void pack(int64_t lane0, int64_t lanes, int64_t k0, int64_t kc, int width, T* dst) const {
    const T* src = p + lane0 * lane_stride + k0 * k_stride;
    if (lane_stride == 1) {
      for (int64_t q = 0; q < kc; ++q) {
        std::memcpy(dst + q * width, src + q * k_stride, sizeof(T) * lanes);
        for (int l = static_cast<int>(lanes); l < width; ++l) dst[q * width + l] = T(0);
      }
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

}  // namespace fastbp
