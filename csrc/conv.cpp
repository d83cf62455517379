#include "conv.h"

#include <algorithm>
#include <vector>

#include "aligned_buffer.h"
#include "gemm/driver.h"
#include "gemm/pack.h"
#include "im2col.h"
#include "parallel.h"

// Per group g, with P = Ho*Wo output pixels and col the im2col matrix (Cg*kh*kw rows, P columns):
//   forward  Y_g  = W_g col                 (Og x P)
//   weight   dW_g = sum over images dY_g colᵀ  (Og x KK), one GEMM whose k runs over all pixels
//   input    dX_g = col2im(W_gᵀ dY_g)
// Several images share one GEMM (their pixels side by side) when the output plane is small.
// The im2col matrix is never stored: the GEMM's packers gather it panel by panel from x.

namespace fastbp {
namespace {

struct GroupShape {
  int64_t Cg, Og, KK, P;  // channels in/out per group, rows of col (Cg*kh*kw), output pixels
  int64_t x_image, y_image;  // elements per image of x and y
  ConvGeometry geom;
};

GroupShape group_shape(const ConvParams& p) {
  GroupShape s;
  s.Cg = p.C / p.groups;
  s.Og = p.O / p.groups;
  s.KK = s.Cg * p.kh * p.kw;
  s.P = p.Ho * p.Wo;
  s.x_image = p.C * p.H * p.W;
  s.y_image = p.O * s.P;
  s.geom = ConvGeometry{s.Cg, p.H, p.W, p.kh, p.kw, p.sh, p.sw, p.ph, p.pw, p.dh, p.dw, p.Ho, p.Wo};
  return s;
}

// Images per GEMM: enough pixels for full-width panels. Depends on the shape only, never on the
// thread count, so results do not either.
int64_t images_per_gemm(const ConvParams& p, const GroupShape& s) {
  return std::clamp<int64_t>(ceil_div(1024, std::max<int64_t>(s.P, 1)), 1, std::max<int64_t>(p.N, 1));
}

// Threads over `items` independent GEMMs: one item per thread when there are enough items,
// otherwise items in turn with all threads inside each GEMM.
struct Split {
  int outer, inner;
};
Split split_threads(int64_t items) {
  const int nt = max_threads();
  return items >= 2 * nt ? Split{nt, 1} : Split{1, nt};
}

// The im2col matrix of a run of images, KK x (images*P): column j is pixel j % P of image j / P.
// Forward reads it with pixels as lanes (B of W col), dW with kernel rows as lanes (B = colᵀ).
template <typename T>
struct ColPacker {
  const ConvGeometry& g;
  const T* x;  // first image, first channel of the group
  int64_t x_image;
  bool pixels_are_lanes;

  void pack(int64_t lane0, int64_t lanes, int64_t k0, int64_t kc, int width, T* dst) const {
    thread_local std::vector<PixelRun> runs;
    if (pixels_are_lanes) {
      runs.resize(lanes);
      const int64_t n = make_pixel_runs(g, lane0, lanes, runs.data());
      im2col_rows(g, x, x_image, runs.data(), n, k0, kc, dst, width, 1);
    } else {
      // kernel rows as lanes: gather a few dozen pixels of each row contiguously (fast copies),
      // then transpose that small block into the packed layout
      constexpr int64_t kChunk = 64;
      thread_local std::vector<T> rows;
      rows.resize(lanes * kChunk);
      runs.resize(kChunk);
      for (int64_t p0 = 0; p0 < kc; p0 += kChunk) {
        const int64_t pc = std::min(kChunk, kc - p0);
        const int64_t n = make_pixel_runs(g, k0 + p0, pc, runs.data());
        im2col_rows(g, x, x_image, runs.data(), n, lane0, lanes, rows.data(), pc, 1);
        StridedPacker<T>{rows.data(), pc, 1}.pack(0, lanes, 0, pc, width, dst + p0 * width);
      }
    }
    zero_lanes(lanes, kc, width, dst);
  }
};

// dY of one group over a run of images as an Og x (images*P) matrix.
template <typename T>
struct DyPacker {
  const T* dy;  // first image, first channel of the group
  int64_t y_image, P;
  bool pixels_are_lanes;

  void copy(int64_t o, int64_t pix, int64_t count, T* out, int64_t stride) const {
    while (count > 0) {
      const int64_t b = pix / P, q = pix % P, n = std::min(count, P - q);
      const T* src = dy + b * y_image + o * P + q;
      if (stride == 1) {
        std::copy(src, src + n, out);
      } else {
        for (int64_t i = 0; i < n; ++i) out[i * stride] = src[i];
      }
      out += n * stride;
      pix += n;
      count -= n;
    }
  }

  void pack(int64_t lane0, int64_t lanes, int64_t k0, int64_t kc, int width, T* dst) const {
    if (pixels_are_lanes) {
      for (int64_t q = 0; q < kc; ++q) copy(k0 + q, lane0, lanes, dst + q * width, 1);
    } else {
      for (int64_t l = 0; l < lanes; ++l) copy(lane0 + l, k0, kc, dst + l, width);
    }
    zero_lanes(lanes, kc, width, dst);
  }
};

// Stride-1 convolutions can read the im2col matrix straight out of zero-padded copies of the
// images, laid out channel by channel ([c][image][Hp][Wp]). With the padded plane as the pitch of
// output pixels (pixel j = image*Hp*Wp + oh*Wp + ow), col[q][j] = x_pad[off[q] + j] for every
// kernel row q, so packing is a plain copy. The pixels with oh >= Ho or ow >= Wo are computed and
// dropped; this path is taken when they are few.
struct PaddedLayout {
  int64_t Hp, Wp, plane;     // padded size of one channel of one image
  int64_t images;            // images per GEMM
  std::vector<int64_t> off;  // per kernel row (c, ki, kj): offset of its tap in x_pad

  int64_t Ho;
  // pixels computed for `count` images; their taps reach (kw-1)*dw past the last plane
  int64_t pixels(int64_t count) const { return (count - 1) * plane + Ho * Wp; }
  int64_t slack;
};

PaddedLayout padded_layout(const ConvParams& p, const GroupShape& s) {
  PaddedLayout L;
  L.Hp = p.Ho + (p.kh - 1) * p.dh;
  L.Wp = p.Wo + (p.kw - 1) * p.dw;
  L.plane = L.Hp * L.Wp;
  L.Ho = p.Ho;
  L.slack = (p.kw - 1) * p.dw;
  L.images = std::clamp<int64_t>(ceil_div(1024, L.plane), 1, std::max<int64_t>(p.N, 1));
  L.off.resize(s.KK);
  for (int64_t c = 0, q = 0; c < s.Cg; ++c)
    for (int64_t ki = 0; ki < p.kh; ++ki)
      for (int64_t kj = 0; kj < p.kw; ++kj)
        L.off[q++] = c * L.images * L.plane + ki * p.dh * L.Wp + kj * p.dw;
  return L;
}

// Worth it for stride 1 when at most 1/8 of the computed pixels are dropped (and the kernel is
// more than 1x1: a 1x1 kernel's column matrix is the image itself).
bool padded_path_pays(const ConvParams& p) {
  const int64_t Hp = p.Ho + (p.kh - 1) * p.dh, Wp = p.Wo + (p.kw - 1) * p.dw;
  return p.sh == 1 && p.sw == 1 && p.kh * p.kw > 1 && (Hp * Wp - p.Ho * p.Wo) * 8 <= p.Ho * p.Wo;
}

// x_pad gets `count` images (x_image apart in x) of the Cg channels at x, with ph rows and pw
// columns of zeros before each plane and the rest of Hp x Wp after.
template <typename T>
void pad_images(const ConvParams& p, const PaddedLayout& L, int64_t Cg, int64_t count,
                const T* x, int64_t x_image, T* x_pad) {
  const int64_t before = std::min(p.pw, L.Wp), ncopy = std::clamp<int64_t>(L.Wp - p.pw, 0, p.W);
  for (int64_t c = 0; c < Cg; ++c)
    for (int64_t b = 0; b < count; ++b)
      for (int64_t hp = 0; hp < L.Hp; ++hp) {
        T* d = x_pad + (c * L.images + b) * L.plane + hp * L.Wp;
        const int64_t ih = hp - p.ph;
        if (ih < 0 || ih >= p.H) {
          std::fill(d, d + L.Wp, T(0));
          continue;
        }
        const T* src = x + b * x_image + (c * p.H + ih) * p.W;
        std::fill(d, d + before, T(0));
        std::copy(src, src + ncopy, d + before);
        std::fill(d + before + ncopy, d + L.Wp, T(0));
      }
}

// Element (q, j) at base[off[q] + j]: q runs over k, the lanes j over pixels.
template <typename T>
struct OffsetPacker {
  const T* base;
  const int64_t* off;

  void pack(int64_t lane0, int64_t lanes, int64_t k0, int64_t kc, int width, T* dst) const {
    for (int64_t q = 0; q < kc; ++q)
      pack_detail::copy_row(base + off[k0 + q] + lane0, lanes, dst + q * width);
    zero_lanes(lanes, kc, width, dst);
  }
};

// Scatters an Og x (nb*P) GEMM result into nb images of y, adding the bias.
template <typename T>
void store_images(const T* tmp, int64_t nb, int64_t Og, int64_t P, int64_t y_image, const T* bias,
                  T* y) {
  for (int64_t b = 0; b < nb; ++b)
    for (int64_t o = 0; o < Og; ++o) {
      const T* src = tmp + o * nb * P + b * P;
      T* dst = y + b * y_image + o * P;
      const T add = bias ? bias[o] : T(0);
      for (int64_t i = 0; i < P; ++i) dst[i] = src[i] + add;
    }
}

}  // namespace

template <typename T>
static void conv2d_forward_padded(const ConvParams& p, const GroupShape& s, const T* x,
                                  const T* w, const T* bias, T* y) {
  const PaddedLayout L = padded_layout(p, s);
  const int64_t n_chunks = ceil_div(p.N, L.images), items = n_chunks * p.groups;
  const Split th = split_threads(items);
  const int64_t pad_size = round_up(s.Cg * L.images * L.plane + L.slack, 16);
  const int64_t tmp_size = s.Og * L.pixels(L.images);
  AlignedBuffer<T> work(th.outer * (pad_size + tmp_size));
  parallel_for(items, th.outer, [&](int64_t item, int tid) {
    const int64_t n0 = (item / p.groups) * L.images, g = item % p.groups;
    const int64_t count = std::min(L.images, p.N - n0), N = L.pixels(count);
    T* x_pad = work.data() + tid * (pad_size + tmp_size);
    T* c = x_pad + pad_size;
    pad_images(p, L, s.Cg, count, x + n0 * s.x_image + g * s.Cg * p.H * p.W, s.x_image, x_pad);
    std::fill(x_pad + s.Cg * L.images * L.plane, x_pad + pad_size, T(0));
    gemm_driver<T>(s.Og, N, s.KK, T(1), StridedPacker<T>{w + g * s.Og * s.KK, s.KK, 1},
                   OffsetPacker<T>{x_pad, L.off.data()}, T(0), c, N, th.inner);
    for (int64_t b = 0; b < count; ++b) {
      T* yg = y + (n0 + b) * s.y_image + g * s.Og * s.P;
      for (int64_t o = 0; o < s.Og; ++o) {
        const T add = bias ? bias[g * s.Og + o] : T(0);
        for (int64_t oh = 0; oh < p.Ho; ++oh) {
          const T* src = c + o * N + b * L.plane + oh * L.Wp;
          T* dst = yg + o * s.P + oh * p.Wo;
          for (int64_t ow = 0; ow < p.Wo; ++ow) dst[ow] = src[ow] + add;
        }
      }
    }
  });
}

template <typename T>
void conv2d_forward(const ConvParams& p, const T* x, const T* w, const T* bias, T* y) {
  const GroupShape s = group_shape(p);
  if (padded_path_pays(p)) {
    conv2d_forward_padded(p, s, x, w, bias, y);
    return;
  }
  const int64_t nb = images_per_gemm(p, s), n_chunks = ceil_div(p.N, nb);
  const Split th = split_threads(n_chunks * p.groups);
  AlignedBuffer<T> tmp(th.outer * s.Og * nb * s.P);
  parallel_for(n_chunks * p.groups, th.outer, [&](int64_t item, int tid) {
    const int64_t n0 = (item / p.groups) * nb, g = item % p.groups;
    const int64_t count = std::min(nb, p.N - n0);
    const T* xg = x + n0 * s.x_image + g * s.Cg * p.H * p.W;
    T* c = tmp.data() + tid * s.Og * nb * s.P;
    gemm_driver<T>(s.Og, count * s.P, s.KK, T(1), StridedPacker<T>{w + g * s.Og * s.KK, s.KK, 1},
                   ColPacker<T>{s.geom, xg, s.x_image, true}, T(0), c, count * s.P, th.inner);
    store_images(c, count, s.Og, s.P, s.y_image, bias ? bias + g * s.Og : nullptr,
                 y + n0 * s.y_image + g * s.Og * s.P);
  });
}

// For stride 1, dX is itself a stride-1 convolution: of dY, with each group's weights swapped
// in/out and flipped in space, and padding (k-1)*d - p on each side. When those paddings are
// not negative this runs on the forward path and needs no col2im.
static bool transposed_conv(const ConvParams& p, ConvParams& t) {
  if (p.sh != 1 || p.sw != 1) return false;
  const int64_t ph1 = p.Ho - 1 + (p.kh - 1) * p.dh + 1 - p.H - p.ph;  // padding after
  const int64_t pw1 = p.Wo - 1 + (p.kw - 1) * p.dw + 1 - p.W - p.pw;
  t = p;
  t.C = p.O; t.H = p.Ho; t.W = p.Wo; t.O = p.C; t.Ho = p.H; t.Wo = p.W;
  t.ph = (p.kh - 1) * p.dh - p.ph;
  t.pw = (p.kw - 1) * p.dw - p.pw;
  // the GEMM's rows are now the input channels: too few and the packing is not amortised
  return t.ph >= 0 && t.pw >= 0 && (p.kh - 1) * p.dh - ph1 >= 0 &&
         (p.kw - 1) * p.dw - pw1 >= 0 && p.C / p.groups >= 48 && padded_path_pays(t);
}

template <typename T>
static void conv2d_backward_input(const ConvParams& p, const GroupShape& s, const T* dy,
                                  const T* w, T* dx) {
  ConvParams t;
  if (transposed_conv(p, t)) {
    // w_t[g][c][o][kh-1-ki][kw-1-kj] = w[g][o][c][ki][kj]
    const int64_t taps = p.kh * p.kw;
    AlignedBuffer<T> w_t(p.O * s.KK);
    for (int64_t g = 0; g < p.groups; ++g)
      for (int64_t o = 0; o < s.Og; ++o)
        for (int64_t c = 0; c < s.Cg; ++c)
          for (int64_t k = 0; k < taps; ++k)
            w_t.data()[((g * s.Cg + c) * s.Og + o) * taps + (taps - 1 - k)] =
                w[((g * s.Og + o) * s.Cg + c) * taps + k];
    conv2d_forward_padded(t, group_shape(t), dy, w_t.data(), static_cast<const T*>(nullptr), dx);
    return;
  }
  const int64_t nb = images_per_gemm(p, s), n_chunks = ceil_div(p.N, nb);
  const Split th = split_threads(n_chunks * p.groups);
  AlignedBuffer<T> cols(th.outer * s.KK * nb * s.P);
  parallel_for(n_chunks * p.groups, th.outer, [&](int64_t item, int tid) {
    const int64_t n0 = (item / p.groups) * nb, g = item % p.groups;
    const int64_t count = std::min(nb, p.N - n0), ld = count * s.P;
    T* col = cols.data() + tid * s.KK * nb * s.P;
    // colgrad = W_gᵀ dY: lanes of A are kernel rows (stride 1), k runs over output channels
    gemm_driver<T>(s.KK, ld, s.Og, T(1), StridedPacker<T>{w + g * s.Og * s.KK, 1, s.KK},
                   DyPacker<T>{dy + n0 * s.y_image + g * s.Og * s.P, s.y_image, s.P, true}, T(0),
                   col, ld, th.inner);
    for (int64_t b = 0; b < count; ++b) {
      T* dxg = dx + (n0 + b) * s.x_image + g * s.Cg * p.H * p.W;
      std::fill(dxg, dxg + s.Cg * p.H * p.W, T(0));
      col2im_2d(s.geom, col + b * s.P, ld, dxg);
    }
  });
}

template <typename T>
static void conv2d_backward_weight(const ConvParams& p, const GroupShape& s, const T* dy,
                                   const T* x, T* dw) {
  const Split th = split_threads(p.groups);
  parallel_for(p.groups, th.outer, [&](int64_t g, int) {
    gemm_driver<T>(s.Og, s.KK, p.N * s.P, T(1),
                   DyPacker<T>{dy + g * s.Og * s.P, s.y_image, s.P, false},
                   ColPacker<T>{s.geom, x + g * s.Cg * p.H * p.W, s.x_image, false}, T(0),
                   dw + g * s.Og * s.KK, s.KK, th.inner);
  });
}

// db[o] = sum over images and pixels of dY, accumulated in double in a fixed order.
template <typename T>
static void conv2d_backward_bias(const ConvParams& p, const T* dy, T* db) {
  const int64_t P = p.Ho * p.Wo;
  parallel_for(p.O, P * p.N >= 32768 ? max_threads() : 1, [&](int64_t o, int) {
    double acc = 0.0;
    for (int64_t n = 0; n < p.N; ++n) {
      const T* row = dy + (n * p.O + o) * P;
      double part = 0.0;
      for (int64_t i = 0; i < P; ++i) part += row[i];
      acc += part;
    }
    db[o] = static_cast<T>(acc);
  });
}

template <typename T>
void conv2d_backward(const ConvParams& p, const T* dy, const T* x, const T* w, T* dx, T* dw,
                     T* db) {
  const GroupShape s = group_shape(p);
  if (dx) conv2d_backward_input(p, s, dy, w, dx);
  if (dw) conv2d_backward_weight(p, s, dy, x, dw);
  if (db) conv2d_backward_bias(p, dy, db);
}

template void conv2d_forward<float>(const ConvParams&, const float*, const float*, const float*,
                                    float*);
template void conv2d_forward<double>(const ConvParams&, const double*, const double*,
                                     const double*, double*);
template void conv2d_backward<float>(const ConvParams&, const float*, const float*, const float*,
                                     float*, float*, float*);
template void conv2d_backward<double>(const ConvParams&, const double*, const double*,
                                      const double*, double*, double*, double*);

}  // namespace fastbp
