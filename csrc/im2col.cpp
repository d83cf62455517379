#include "im2col.h"

#include <algorithm>
#include <cstring>
#include <vector>

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

int64_t make_pixel_runs(const ConvGeometry& g, int64_t pix, int64_t count, PixelRun* runs) {
  const int64_t P = g.Ho * g.Wo;
  int64_t n = 0, out = 0;
  int64_t image = pix / P, q = pix % P, oh = q / g.Wo, ow = q % g.Wo;
  while (out < count) {
    const int64_t len = std::min(count - out, g.Wo - ow);
    runs[n++] = PixelRun{out, len, image, oh, ow};
    out += len;
    ow = 0;
    if (++oh == g.Ho) {
      oh = 0;
      ++image;
    }
  }
  return n;
}

template <typename T>
void im2col_rows(const ConvGeometry& g, const T* x, int64_t x_image, const PixelRun* runs,
                 int64_t n_runs, int64_t row0, int64_t rows, T* dst, int64_t row_stride,
                 int64_t pix_stride) {
  // per kernel column kj: input column offset and the valid output columns [lo, hi)
  thread_local std::vector<int64_t> taps;
  taps.resize(3 * g.kw);
  for (int64_t kj = 0; kj < g.kw; ++kj) {
    taps[3 * kj] = kj * g.dw - g.pw;
    valid_range(g.Wo, g.W, g.sw, taps[3 * kj], taps[3 * kj + 1], taps[3 * kj + 2]);
  }
  int64_t kj = row0 % g.kw, ki = (row0 / g.kw) % g.kh, c = row0 / (g.kw * g.kh);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t off_w = taps[3 * kj], lo = taps[3 * kj + 1], hi = taps[3 * kj + 2];
    const int64_t off_h = ki * g.dh - g.ph;
    const T* plane = x + c * g.H * g.W;
    T* d = dst + r * row_stride;
    for (int64_t k = 0; k < n_runs; ++k) {
      const PixelRun& run = runs[k];
      T* o = d + run.out * pix_stride;
      const int64_t ih = run.oh * g.sh + off_h, end = run.ow + run.len;
      if (ih < 0 || ih >= g.H) {
        for (int64_t i = 0; i < run.len; ++i) o[i * pix_stride] = T(0);
        continue;
      }
      const T* src = plane + run.image * x_image + ih * g.W + off_w;  // src[ow*sw] is the tap
      const int64_t a = std::clamp(lo, run.ow, end), b = std::clamp(hi, a, end);
      for (int64_t ow = run.ow; ow < a; ++ow) o[(ow - run.ow) * pix_stride] = T(0);
      if (pix_stride == 1 && g.sw == 1) {
        T* __restrict oo = o - run.ow;
        const T* __restrict ss = src;
        for (int64_t ow = a; ow < b; ++ow) oo[ow] = ss[ow];
      } else {
        for (int64_t ow = a; ow < b; ++ow) o[(ow - run.ow) * pix_stride] = src[ow * g.sw];
      }
      for (int64_t ow = b; ow < end; ++ow) o[(ow - run.ow) * pix_stride] = T(0);
    }
    if (++kj == g.kw) {
      kj = 0;
      if (++ki == g.kh) {
        ki = 0;
        ++c;
      }
    }
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

template void im2col_rows<float>(const ConvGeometry&, const float*, int64_t, const PixelRun*,
                                 int64_t, int64_t, int64_t, float*, int64_t, int64_t);
template void im2col_rows<double>(const ConvGeometry&, const double*, int64_t, const PixelRun*,
                                  int64_t, int64_t, int64_t, double*, int64_t, int64_t);
template void col2im_2d<float>(const ConvGeometry&, const float*, int64_t, float*);
template void col2im_2d<double>(const ConvGeometry&, const double*, int64_t, double*);

}  // namespace fastbp
