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
void im2col_segment(const ConvGeometry& g, const T* x, int64_t row, int64_t pix, int64_t count,
                    T* out, int64_t out_stride) {
  const int64_t kj = row % g.kw, ki = (row / g.kw) % g.kh, c = row / (g.kw * g.kh);
  const int64_t off_w = kj * g.dw - g.pw;
  int64_t lo, hi;
  valid_range(g.Wo, g.W, g.sw, off_w, lo, hi);
  const T* plane = x + c * g.H * g.W;
  int64_t oh = pix / g.Wo, ow = pix % g.Wo;
  while (count > 0) {
    const int64_t n = std::min(count, g.Wo - ow);  // this output row: ow .. ow+n
    const int64_t ih = oh * g.sh - g.ph + ki * g.dh;
    if (ih < 0 || ih >= g.H) {
      for (int64_t i = 0; i < n; ++i) out[i * out_stride] = T(0);
    } else {
      const T* src = plane + ih * g.W;
      const int64_t a = std::clamp(lo, ow, ow + n), b = std::clamp(hi, a, ow + n);
      for (int64_t o = ow; o < a; ++o) out[(o - ow) * out_stride] = T(0);
      if (out_stride == 1 && g.sw == 1) {
        if (b > a) std::memcpy(out + (a - ow), src + a + off_w, sizeof(T) * (b - a));
      } else {
        for (int64_t o = a; o < b; ++o) out[(o - ow) * out_stride] = src[o * g.sw + off_w];
      }
      for (int64_t o = b; o < ow + n; ++o) out[(o - ow) * out_stride] = T(0);
    }
    out += n * out_stride;
    count -= n;
    ow = 0;
    ++oh;
  }
}

template <typename T>
void col2im_2d(const ConvGeometry& g, const T* col, int64_t ld_col, T* x) {
  for (int64_t c = 0; c < g.C; ++c) {
    for (int64_t ki = 0; ki < g.kh; ++ki) {
      for (int64_t kj = 0; kj < g.kw; ++kj) {
        const T* srcrow = col + ((c * g.kh + ki) * g.kw + kj) * ld_col;
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

template void im2col_segment<float>(const ConvGeometry&, const float*, int64_t, int64_t, int64_t,
                                    float*, int64_t);
template void im2col_segment<double>(const ConvGeometry&, const double*, int64_t, int64_t, int64_t,
                                     double*, int64_t);
template void col2im_2d<float>(const ConvGeometry&, const float*, int64_t, float*);
template void col2im_2d<double>(const ConvGeometry&, const double*, int64_t, double*);

}  // namespace fastbp
