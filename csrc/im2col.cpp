#include "im2col.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "dispatch.h"
#include "gemm/driver.h"
#include "gemm/pack.h"

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


// rows (columns) reached by the last output row's (column's) last tap, and at least the input
int64_t PaddedInput::padded_rows(const ConvGeometry& g) {
  return std::max((g.Ho - 1) * g.sh + (g.kh - 1) * g.dh + 1, g.ph + g.H);
}
int64_t PaddedInput::padded_cols(const ConvGeometry& g) {
  return std::max((g.Wo - 1) * g.sw + (g.kw - 1) * g.dw + 1, g.pw + g.W);
}
int64_t PaddedInput::phase_image(const ConvGeometry& g) {
  return ceil_div(padded_rows(g), g.sh) * ceil_div(padded_cols(g), g.sw);
}

bool padded_pixels_pay(const ConvGeometry& g) {
  if (g.kh * g.kw == 1) return false;
  return (PaddedInput::phase_image(g) - g.Ho * g.Wo) * 4 <= g.Ho * g.Wo;
}

PixelOrder in_place_order(const ConvGeometry& g, int64_t lanes, int64_t& run, bool exact_runs) {
  // a run per output row: whole vectors, or a half or a quarter of one for narrow images
  run = g.Wo <= lanes / 4 ? lanes / 4 : g.Wo <= lanes / 2 ? lanes / 2 : round_up(g.Wo, lanes);
  if (g.kh * g.kw == 1) return PixelOrder::compact;
  const int64_t real = g.Ho * g.Wo;
  const int64_t padded = PaddedInput::phase_image(g) - real, rows = g.Ho * run - real;
  // runs of exactly Wo drop nothing; they cost a vector an extra segment where a row ends,
  // which pays once the other orders would drop more than a tenth of the pixels
  if (exact_runs && g.Wo >= lanes / 2 && std::min(padded, rows) * 10 > real) {
    run = g.Wo;
    return PixelOrder::row_runs;
  }
  if (std::min(padded, rows) * 4 > real) return PixelOrder::compact;
  return padded <= rows ? PixelOrder::padded : PixelOrder::row_runs;
}

int64_t pixels_per_image(const ConvGeometry& g, PixelOrder order, int64_t run) {
  switch (order) {
    case PixelOrder::padded: return PaddedInput::phase_image(g);
    case PixelOrder::row_runs: return g.Ho * run;
    default: return g.Ho * g.Wo;
  }
}

PaddedInput::PaddedInput(const ConvGeometry& g, int64_t images_, PixelOrder order_, int64_t run_)
    : order(order_), run(run_) {
  Hq = ceil_div(padded_rows(g), g.sh);
  Wq = ceil_div(padded_cols(g), g.sw);
  image = Hq * Wq;
  phases = g.sh * g.sw;
  images = images_;
  channels = g.C;
  // dropped pixels of the last image reach past its phase by at most one row of taps
  slack = order == PixelOrder::compact ? 0 : Wq + run + (g.kw - 1) * g.dw / g.sw + 1;
  tap.resize(g.C * g.kh * g.kw);
  for (int64_t c = 0, q = 0; c < g.C; ++c)
    for (int64_t ki = 0; ki < g.kh; ++ki)
      for (int64_t kj = 0; kj < g.kw; ++kj) {
        const int64_t r = ki * g.dh, col = kj * g.dw;
        const int64_t phase = (r % g.sh) * g.sw + col % g.sw;
        tap[q++] = c * channel_size() + phase * images * image + (r / g.sh) * Wq + col / g.sw;
      }
}

std::vector<RowBand> row_bands(const ConvGeometry& g) {
  std::vector<RowBand> bands;
  for (int64_t oh = 0; oh < g.Ho; ++oh) {
    // kernel rows ki with input row oh*sh - ph + ki*dh in [0, H)
    const int64_t top = oh * g.sh - g.ph;
    const int64_t k0 = std::min(top < 0 ? ceil_div(-top, g.dh) : 0, g.kh);
    const int64_t k1 = std::clamp<int64_t>(g.H - top > 0 ? ceil_div(g.H - top, g.dh) : 0, k0, g.kh);
    if (!bands.empty() && bands.back().k0 == k0 && bands.back().k1 == k1)
      bands.back().r1 = oh + 1;
    else
      bands.push_back(RowBand{oh, oh + 1, k0, k1});
  }
  return bands;
}

// pad_input's copy for column stride 2: each input row read once into both column phases, padded
// column 2j + cp of the row going to element j of phase cp.
template <typename T>
void pad_input_two_phases(const ConvGeometry& g, const PaddedInput& L, const T* x, int64_t x_image,
                          int64_t count, T* x_pad, int64_t c0, int64_t c1) {
  for (int64_t c = c0; c < c1; ++c)
    for (int64_t rp = 0; rp < g.sh; ++rp)
      for (int64_t b = 0; b < count; ++b) {
        T* even = x_pad + c * L.channel_size() + (rp * 2 * L.images + b) * L.image;
        T* odd = even + L.images * L.image;
        const T* src = x + b * x_image + c * g.H * g.W;
        for (int64_t rq = 0; rq < L.Hq; ++rq, even += L.Wq, odd += L.Wq) {
          const int64_t ih = rq * g.sh + rp - g.ph;
          if (ih < 0 || ih >= g.H) {
            std::fill(even, even + L.Wq, T(0));
            std::fill(odd, odd + L.Wq, T(0));
          } else {
            pack_detail::split_phases(src + ih * g.W, g.W, -g.pw, L.Wq, even, odd);
          }
        }
      }
}

template <typename T>
void pad_input(const ConvGeometry& g, const PaddedInput& L, const T* x, int64_t x_image,
               int64_t count, T* x_pad, int64_t c0, int64_t c1) {
  if (c1 < 0) c1 = g.C;
  if (c1 == g.C) std::fill(x_pad + L.size() - L.slack, x_pad + L.size(), T(0));
  if (g.sw == 2) return pad_input_two_phases(g, L, x, x_image, count, x_pad, c0, c1);
  for (int64_t c = c0; c < c1; ++c)
    for (int64_t rp = 0; rp < g.sh; ++rp)
      for (int64_t cp = 0; cp < g.sw; ++cp) {
        // columns j of this phase whose padded column j*sw + cp is input column iw in [0, W)
        const int64_t j0 = std::min(ceil_div(std::max<int64_t>(g.pw - cp, 0), g.sw), L.Wq);
        const int64_t j1 = std::clamp<int64_t>(ceil_div(g.pw + g.W - cp, g.sw), j0, L.Wq);
        for (int64_t b = 0; b < count; ++b) {
          T* block = x_pad + c * L.channel_size() + ((rp * g.sw + cp) * L.images + b) * L.image;
          const T* src = x + b * x_image + c * g.H * g.W;
          for (int64_t rq = 0; rq < L.Hq; ++rq) {
            T* d = block + rq * L.Wq;
            const int64_t ih = rq * g.sh + rp - g.ph;
            if (ih < 0 || ih >= g.H) {
              std::fill(d, d + L.Wq, T(0));
              continue;
            }
            const T* row = src + ih * g.W + (j0 * g.sw + cp - g.pw);
            std::fill(d, d + j0, T(0));
            if (g.sw == 1)
              std::copy(row, row + (j1 - j0), d + j0);
            else  // stride 2 is pad_input_two_phases'
              for (int64_t j = j0; j < j1; ++j) d[j] = row[(j - j0) * g.sw];
            std::fill(d + j1, d + L.Wq, T(0));
          }
        }
      }
}

int64_t make_pixel_runs(const ConvGeometry& g, const PaddedInput& L, int64_t pix, int64_t count,
                        PixelRun* runs) {
  if (L.order == PixelOrder::padded) {
    runs[0] = PixelRun{0, count, pix};
    return 1;
  }
  if (L.order == PixelOrder::row_runs) {
    int64_t n = 0;
    for (int64_t out = 0; out < count; ++n) {
      const int64_t j = pix + out, u = j / L.run, lane = j % L.run;
      const int64_t len = std::min(count - out, L.run - lane);
      runs[n] = PixelRun{out, len, (u / g.Ho) * L.image + (u % g.Ho) * L.Wq + lane};
      out += len;
    }
    return n;
  }
  const int64_t P = g.Ho * g.Wo;
  int64_t n = 0, out = 0;
  int64_t image = pix / P, q = pix % P, oh = q / g.Wo, ow = q % g.Wo;
  while (out < count) {
    const int64_t len = std::min(count - out, g.Wo - ow);
    runs[n++] = PixelRun{out, len, image * L.image + oh * L.Wq + ow};
    out += len;
    ow = 0;
    if (++oh == g.Ho) {
      oh = 0;
      ++image;
    }
  }
  return n;
}

template <>
kernels::gather_rows_fn<float> gather_rows_kernel<float>() {
  namespace k = kernels;
  return for_active_path(&k::ref::sgather_rows, FASTBP_X86(k::avx2::sgather_rows),
                         FASTBP_X86(k::avx512::sgather_rows));
}
template <>
kernels::gather_rows_fn<double> gather_rows_kernel<double>() {
  namespace k = kernels;
  return for_active_path(&k::ref::dgather_rows, FASTBP_X86(k::avx2::dgather_rows),
                         FASTBP_X86(k::avx512::dgather_rows));
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

template void pad_input<float>(const ConvGeometry&, const PaddedInput&, const float*, int64_t,
                               int64_t, float*, int64_t, int64_t);
template void pad_input<double>(const ConvGeometry&, const PaddedInput&, const double*, int64_t,
                                int64_t, double*, int64_t, int64_t);
template void col2im_2d<float>(const ConvGeometry&, const float*, int64_t, float*);
template void col2im_2d<double>(const ConvGeometry&, const double*, int64_t, double*);

}  // namespace fastbp
