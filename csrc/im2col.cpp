#include "im2col.h"

#include <algorithm>
#include <cstring>

namespace fastbp {
namespace {

// Output columns ow whose input column ow*s - p + off lies in [0, W): [lo, hi).
inline void valid_range(int64_t Wo, int64_t W, int64_t s, int64_t off, int64_t& lo,
                        int64_t& hi) {
  // ow*s + off >= 0  and  ow*s + off <= W - 1
  lo = off >= 0 ? 0 : (-off + s - 1) / s;
  hi = (W - 1 - off) < 0 ? 0 : (W - 1 - off) / s + 1;
  lo = std::min(lo, Wo);
  hi = std::max(std::min(hi, Wo), lo);
}

}  // namespace

template <typename T>
void im2col_2d(const ConvGeometry& g, const T* x, T* col) {
  const int64_t P = g.Ho * g.Wo;
  for (int64_t c = 0; c < g.C; ++c) {
    for (int64_t ki = 0; ki < g.kh; ++ki) {
      for (int64_t kj = 0; kj < g.kw; ++kj) {
        T* dst = col + ((c * g.kh + ki) * g.kw + kj) * P;
        const int64_t off_w = kj * g.dw - g.pw;
        int64_t lo, hi;
        valid_range(g.Wo, g.W, g.sw, off_w, lo, hi);
        for (int64_t oh = 0; oh < g.Ho; ++oh) {
          T* d = dst + oh * g.Wo;
          const int64_t ih = oh * g.sh - g.ph + ki * g.dh;
          if (ih < 0 || ih >= g.H) {
            std::fill(d, d + g.Wo, T(0));
            continue;
          }
          const T* row = x + (c * g.H + ih) * g.W;
          std::fill(d, d + lo, T(0));
          if (g.sw == 1) {
            if (hi > lo) std::memcpy(d + lo, row + lo + off_w, sizeof(T) * (hi - lo));
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) d[ow] = row[ow * g.sw + off_w];
          }
          std::fill(d + hi, d + g.Wo, T(0));
        }
      }
    }
  }
}

template <typename T>
void col2im_2d(const ConvGeometry& g, const T* col, T* x) {
  const int64_t P = g.Ho * g.Wo;
  for (int64_t c = 0; c < g.C; ++c) {
    for (int64_t ki = 0; ki < g.kh; ++ki) {
      for (int64_t kj = 0; kj < g.kw; ++kj) {
        const T* srcrow = col + ((c * g.kh + ki) * g.kw + kj) * P;
        const int64_t off_w = kj * g.dw - g.pw;
        int64_t lo, hi;
        valid_range(g.Wo, g.W, g.sw, off_w, lo, hi);
        for (int64_t oh = 0; oh < g.Ho; ++oh) {
          const int64_t ih = oh * g.sh - g.ph + ki * g.dh;
          if (ih < 0 || ih >= g.H) continue;
          const T* s = srcrow + oh * g.Wo;
          T* row = x + (c * g.H + ih) * g.W;
          for (int64_t ow = lo; ow < hi; ++ow) row[ow * g.sw + off_w] += s[ow];
        }
      }
    }
  }
}

template void im2col_2d<float>(const ConvGeometry&, const float*, float*);
template void im2col_2d<double>(const ConvGeometry&, const double*, double*);
template void col2im_2d<float>(const ConvGeometry&, const float*, float*);
template void col2im_2d<double>(const ConvGeometry&, const double*, double*);

}  // namespace fastbp
