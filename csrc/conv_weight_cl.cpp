// dW of a convolution as one GEMM per group over channels-last operands:
//   dW_g[o][(ki, kj, c)] = sum over pixels j of dYt[j][o] * Xt[pos(j) + tap(ki, kj)][c]
// with Xt the input of a run of images as (image, padded row, padded column, channel) and dYt
// the output gradient as (pixel, channel). A pixel's channels are contiguous in both, so the
// GEMM's packers copy short contiguous runs for every operand: no transposes, no col matrix,
// and the pixel numbering is compact (no dropped pixels, any stride or dilation). The copies are
// O(size of x and dY); the packing reads Xt once per tap. The result comes out with the taps
// outermost and is permuted into dW's (o, c, ki, kj) at the end.
#include "conv_weight_cl.h"

#include <algorithm>

#include "aligned_buffer.h"
#include "conv_pack.h"
#include "gemm/driver.h"
#include "gemm/pack.h"
#include "parallel.h"

namespace fastbp {
namespace {

struct ClGeometry {
  int64_t Cg, Og, taps, KK, P;
  int64_t Hp, Wp;  // padded plane of Xt: every tap of every output pixel lies inside
};

ClGeometry cl_geometry(const ConvParams& p) {
  ClGeometry g;
  g.Cg = p.C / p.groups;
  g.Og = p.O / p.groups;
  g.taps = p.kh * p.kw;
  g.KK = g.Cg * g.taps;
  g.P = p.Ho * p.Wo;
  g.Hp = (p.Ho - 1) * p.sh + (p.kh - 1) * p.dh + 1;
  g.Wp = (p.Wo - 1) * p.sw + (p.kw - 1) * p.dw + 1;
  return g;
}

// Rows (ki, kj, c) of the im2col matrix of channels-last Xt, lanes of the GEMM; k runs over the
// output pixels of a run of images in order. Used as A or as B: packing is the same.
template <typename T>
struct ChannelsLastColPacker {
  const ConvParams& p;
  const ClGeometry& g;
  const T* xt;   // first image, channel 0 of the group
  int64_t C;     // channels per pixel of Xt (all groups)
  const int64_t* pixel_off = nullptr;  // where each k step's pixel lies in Xt, when read in place

  // B read in place by the rows kernels (driver.h): row k (a pixel) at xt + pixel_off[k], lane
  // (ki, kj, c) at ki*dh*Wp*C + kj*dw*C + c, runs of Cg channels (of kw*Cg when the taps of a
  // row follow on).
  InPlaceB<T> in_place() const {
    if (!pixel_off) return {};
    return p.dw == 1 && g.Cg == C ? InPlaceB<T>{xt, pixel_off, p.kw * g.Cg, 0, 1, p.dh * g.Wp * C}
                                  : InPlaceB<T>{xt, pixel_off, g.Cg, p.dw * C, p.kw,
                                                p.dh * g.Wp * C};
  }

  void pack(int64_t lane0, int64_t lanes, int64_t k0, int64_t kc, int width, T* dst) const {
    // runs of lanes whose sources are contiguous: (dst lane, source offset, length)
    struct Run { int64_t lane, off, len; };
    Run runs[64];
    int n_runs = 0;
    for (int64_t l = 0; l < lanes;) {
      const int64_t q = lane0 + l, tap = q / g.Cg, c = q % g.Cg;
      const int64_t ki = tap / p.kw, kj = tap % p.kw;
      int64_t len = std::min(lanes - l, g.Cg - c);
      // with one group and dilation 1 along a row, the next tap's channels follow on
      if (p.dw == 1 && g.Cg == C && c + len == g.Cg)
        while (l + len < lanes && (q + len) / g.Cg / p.kw == ki)
          len = std::min(lanes - l, len + g.Cg);
      runs[n_runs++] = {l, (ki * p.dh * g.Wp + kj * p.dw) * C + c, len};
      l += len;
    }
    int64_t b = k0 / g.P, oh = (k0 % g.P) / p.Wo, ow = k0 % p.Wo;
    const int64_t plane = g.Hp * g.Wp;
    for (int64_t q = 0; q < kc; ++q) {
      const T* src = xt + ((b * plane) + oh * p.sh * g.Wp + ow * p.sw) * C;
      T* d = dst + q * width;
      for (int r = 0; r < n_runs; ++r) pack_detail::copy_row(src + runs[r].off, runs[r].len, d + runs[r].lane);
      for (int64_t l = lanes; l < width; ++l) d[l] = T(0);
      if (++ow == p.Wo) {
        ow = 0;
        if (++oh == p.Ho) { oh = 0; ++b; }
      }
    }
  }
};

// Xt of images [n0, n0 + count): each image's planes into the padded channels-last layout.
template <typename T>
void to_channels_last(const ConvParams& p, const ClGeometry& g, const T* x, int64_t count, T* xt,
                      int nt) {
  parallel_for(count, nt, [&](int64_t b, int) {
    channels_last(x + b * p.C * p.H * p.W, p.C, p.H, p.W, p.ph, p.pw, g.Hp, g.Wp,
                  xt + b * g.Hp * g.Wp * p.C);
  });
}

}  // namespace

// Every ungrouped convolution: measured against the packed and dot-product paths of conv.cpp,
// it is level on large images and up to 2x faster on small ones (8x8, 4x4) and strided ones.
// With groups, each group's GEMM reads only its slice of every pixel's channels, and the other
// paths are faster (1.3-4x).
bool weight_grad_channels_last_applies(const ConvParams& p) { return p.groups == 1; }

template <typename T>
void conv2d_backward_weight_channels_last(const ConvParams& p, const T* dy, const T* x, T* dw) {
  const ClGeometry g = cl_geometry(p);
  const int64_t plane = g.Hp * g.Wp;
  // Xt read in place as B (the rows kernels), not packed: the packing is a copy of the im2col
  // matrix per column block. Where a run of channels fills a vector (fewer: too many loads per
  // vector) and pixels lie at most 1 KiB apart (further, each k step's row falls in the same few
  // L1 sets as the last ones'). A/B, 1 thread: cifar, lenet-c2, r18-c2, stem, dilated, s2-5x5
  // -17% to -20%, long-1d -29%, r18-c4 -4%; c512 (2 KiB apart) +6%. Same products, same bits.
  const int64_t run = p.dw == 1 && g.Cg == p.C ? p.kw * g.Cg : g.Cg;
  const bool in_place = gemm_blocking<T>(active_capability()).rows_kernel &&
                        run >= 64 / int64_t(sizeof(T)) && p.C * int64_t(sizeof(T)) <= 1024;
  // images per chunk: Xt, and where each pixel lies when it is read in place, within what the
  // limit leaves after the accumulated dW
  AlignedBuffer<T> acc(p.O * g.KK);
  const int64_t image_bytes = p.C * plane * int64_t(sizeof(T)) + (in_place ? g.P * 8 : 0);
  const int64_t chunk = std::clamp<int64_t>(
      static_cast<int64_t>(workspace_budget()) / std::max<int64_t>(image_bytes, 1), 1,
      std::max<int64_t>(p.N, 1));
  const int64_t n_chunk = std::min(chunk, p.N);
  AlignedBuffer<T> xt(n_chunk * plane * p.C);
  AlignedBuffer<int64_t> pixel_off(in_place ? n_chunk * g.P : 0);
  const int nt_copy = p.N * p.C * plane >= 65536 ? max_threads() : 1;
  const int nt = 2.0 * p.N * p.O * g.P * g.KK < kGemmMinParallelFlops ? 1 : max_threads();
  const int outer = p.groups >= 2 * nt ? nt : 1, inner = outer == 1 ? nt : 1;
  if (p.N == 0) std::fill(acc.data(), acc.data() + p.O * g.KK, T(0));
  for (int64_t n0 = 0; n0 < p.N; n0 += chunk) {
    const int64_t count = std::min(chunk, p.N - n0);
    to_channels_last(p, g, x + n0 * p.C * p.H * p.W, count, xt.data(), nt_copy);
    // where each output pixel's taps start in Xt, for reading it in place
    if (in_place)
      for (int64_t b = 0, k = 0; b < count; ++b)
        for (int64_t oh = 0; oh < p.Ho; ++oh)
          for (int64_t ow = 0; ow < p.Wo; ++ow)
            pixel_off.data()[k++] = (b * plane + oh * p.sh * g.Wp + ow * p.sw) * p.C;
    parallel_for(p.groups, outer, [&](int64_t grp, int) {
      const DyPacker<T> dy_rows{dy + n0 * p.O * g.P + grp * g.Og * g.P, p.O * g.P, g.P, false};
      const ChannelsLastColPacker<T> cols{p, g, xt.data() + grp * g.Cg, p.C,
                                          in_place ? pixel_off.data() : nullptr};
      gemm_driver<T>(g.Og, g.KK, count * g.P, T(1), dy_rows, cols, n0 == 0 ? T(0) : T(1),
                     acc.data() + grp * g.Og * g.KK, g.KK, inner);
    });
  }
  // (o, tap, c) -> (o, c, tap): dW written in order, each o's block read from L1, a transpose
  // in SIMD blocks (c512's dW: 0.96 of the element-by-element loop's time)
  parallel_for(p.O, p.O * g.KK >= 65536 ? max_threads() : 1, [&](int64_t o, int) {
    const T* src = acc.data() + o * g.KK;
    T* dst = dw + o * g.KK;
    transpose_kernel<T>()(src, g.Cg, g.taps, g.Cg, dst, g.taps);
  });
}

template void conv2d_backward_weight_channels_last<float>(const ConvParams&, const float*,
                                                          const float*, float*);
template void conv2d_backward_weight_channels_last<double>(const ConvParams&, const double*,
                                                           const double*, double*);

}  // namespace fastbp
