// Pieces the convolution's input- and weight-gradient paths share (conv.cpp,
// conv_input_phases.cpp, conv_weight_cl.cpp, conv_winograd_weight.cpp).
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "conv.h"
#include "gemm/blocking.h"
#include "gemm/pack.h"
#include "parallel.h"

namespace fastbp {

// Planes [C][H][W] into channels-last [Hd][Wd][C]: input row ih at row ih + top and column iw at
// column iw + left, zeros elsewhere; each row by the path's transpose kernel.
template <typename T>
void channels_last(const T* src, int64_t C, int64_t H, int64_t W, int64_t top, int64_t left,
                   int64_t Hd, int64_t Wd, T* dst) {
  std::fill(dst, dst + Hd * Wd * C, T(0));
  const int64_t w0 = std::max<int64_t>(0, -left), w1 = std::min(W, Wd - left);
  if (w1 <= w0) return;
  for (int64_t ih = std::max<int64_t>(0, -top); ih < std::min(H, Hd - top); ++ih)
    transpose_kernel<T>()(src + ih * W + w0, H * W, C, w1 - w0,
                          dst + ((ih + top) * Wd + w0 + left) * C, C);
}

// dY of one group over a run of images as an Og x (images*P) matrix, packed one image's piece
// at a time (within an image it is a plain strided matrix).
template <typename T>
struct DyPacker {
  const T* dy;  // first image, first channel of the group
  int64_t y_image, P;
  bool pixels_are_lanes;

  void pack(int64_t lane0, int64_t lanes, int64_t k0, int64_t kc, int width, T* dst) const {
    // the pixel range is the lanes or the k steps; cut it at image boundaries
    int64_t pix = pixels_are_lanes ? lane0 : k0;
    const int64_t count = pixels_are_lanes ? lanes : kc;
    for (int64_t done = 0; done < count;) {
      const int64_t b = pix / P, q = pix % P, n = std::min(count - done, P - q);
      const T* base = dy + b * y_image + q;  // element (o, pixel q + i) at base[o*P + i]
      if (pixels_are_lanes) {  // k steps are channels: rows of pixels, plain copies
        for (int64_t o = 0; o < kc; ++o)
          pack_detail::copy_row(base + (k0 + o) * P, n, dst + o * width + done);
      } else {  // lanes are channels, k steps pixels: the transposing packer, one image at a time
        StridedPacker<T>{base, P, 1}.pack(lane0, lanes, 0, n, width, dst + done * width);
      }
      pix += n;
      done += n;
    }
    zero_lanes(lanes, kc, width, dst);
  }
};

// The weights of the convolution that carries dY back to dX, for the taps r + i*s of each axis
// (t taps per axis): in and out channels swapped and the taps reversed,
//   out[g][c][o][a][b] = w[g][o][c][rh + (th - 1 - a) * sh][rw + (tw - 1 - b) * sw].
// With stride 1 and every tap (r = 0, t = k) it is the whole kernel flipped.
// A transpose of (o, c) blocks of taps, by blocks of 16 input channels (the threads' items), each
// block's taps read through a table of where output tap (a, b) lies. A block reads a short run
// of w per output channel, the runs a whole row of w apart (18 KiB for 512 channels of 3x3),
// which the hardware prefetchers do not follow: the runs about 8 KiB ahead are prefetched
// (c512-7x7's backward: the copy went from 13% to 5% of the profile at 2 threads, 2-5% faster
// in all).
template <typename T>
void swapped_flipped_weights(const ConvParams& p, int64_t rh, int64_t rw, int64_t th,
                             int64_t tw, const T* w, T* out) {
  constexpr int64_t kBlock = 16;
  const int64_t Cg = p.C / p.groups, Og = p.O / p.groups;
  const int64_t blocks = (Cg + kBlock - 1) / kBlock;
  const int64_t taps = th * tw;
  std::vector<int64_t> tap(taps);  // where output tap (a, b) lies in a (o, c) block of w
  for (int64_t a = 0; a < th; ++a)
    for (int64_t b = 0; b < tw; ++b)
      tap[a * tw + b] = (rh + (th - 1 - a) * p.sh) * p.kw + rw + (tw - 1 - b) * p.sw;
  const int nt = p.O * Cg * taps >= 65536 ? max_threads() : 1;
  parallel_for(p.groups * blocks, nt, [&](int64_t item, int) {
    const int64_t g = item / blocks, c0 = (item % blocks) * kBlock;
    const int64_t c1 = std::min(Cg, c0 + kBlock);
    const int64_t run = (c1 - c0) * p.kh * p.kw;  // elements of w a block reads per o
    const int64_t ahead = std::clamp<int64_t>(8192 / (run * int64_t(sizeof(T))), 1, 16);
    for (int64_t o = 0; o < Og; ++o) {
      if (o + ahead < Og) prefetch_run(w + ((g * Og + o + ahead) * Cg + c0) * p.kh * p.kw, run);
      for (int64_t c = c0; c < c1; ++c) {
        const T* src = w + ((g * Og + o) * Cg + c) * p.kh * p.kw;
        T* dst = out + ((g * Cg + c) * Og + o) * taps;
        for (int64_t t = 0; t < taps; ++t) dst[t] = src[tap[t]];
      }
    }
  });
}

}  // namespace fastbp
