// The weight gradient of a 3x3 or 5x5 convolution of stride 1 by Winograd's F(r x r, 2x2)
// (conv_winograd.h): each 2x2 block of dY is a tile, and with n = r + 1
//   dW = A_rᵀ M A_r,  M_e (O x C) = sum over tiles t of D_e[t] (O) x V_e[t] (C)ᵀ,
//   D = G₂ dy G₂ᵀ (the tile's 2x2 output gradients),  V = Bᵀ d B (its n x n inputs),
// so each tap pair takes n² products per tile instead of 4 r² (5x5: 36 against 100; 3x3: 16
// against 36). The matrices are in kernels/winograd_transforms.h; Bᵀ is the forward's.
//
// The transforms read channels-last copies of x (zero-padded, each phase of a dilated
// convolution a strided view) and dY (zeros past its last row and column, so that a half tile
// adds nothing), a vector of channels at a time, and write D and V straight into the packed
// slivers of the micro-kernels: the GEMMs' k runs over tiles. Tiles go in blocks whose size
// depends on the shape (and the workspace limit, through the images per chunk); the blocks take
// turns between two slices of M, each a sum in block order, and the slices add up at the end:
// every sum is one fixed chain whatever the threads.
#include <algorithm>
#include <cmath>
#include <vector>

#include "aligned_buffer.h"
#include "conv_pack.h"
#include "conv_winograd.h"
#include "dispatch.h"
#include "gemm/blocking.h"
#include "gemm/driver.h"
#include "parallel.h"

namespace fastbp {
namespace {

// Tiles per block, the depth of the block's GEMMs: M is read and written once per block. Where
// M is small (at most kBlockBytes, which L2 keeps), as many as keep the block's packed D and V
// within kBlockBytes too, at least 32; where M is larger, 128, so that its traffic is spread over
// more products (256 x 256 channels, 3x3: 128 or 256 tiles 0.86 of the time of 32).
constexpr int64_t kBlockBytes = int64_t(1) << 20;
constexpr int64_t kMinBlockTiles = 32, kMaxBlockTiles = 128;
// Slices of M: block j of a chunk goes into slice j % kSlices, and the slices add up at the
// end in order. A thread takes a slice's blocks whole, transforms and GEMMs, so no block's
// data moves between cores; the sums do not depend on the threads.
constexpr int64_t kSlices = 2;

// The GEMM tile: the ISA's main tile or its wide one, whichever pads O x C less.
template <typename T>
const GemmBlocking<T>& weight_grad_blocking(int64_t O, int64_t C) {
  const GemmBlocking<T>& main = gemm_blocking<T>(active_capability());
  if (!main.wide) return main;
  const auto padded = [&](const GemmBlocking<T>& b) {
    return round_up(O, b.mr) * round_up(C, b.nr);
  };
  return padded(*main.wide) < padded(main) ? *main.wide : main;
}

// tiles of the weight gradient: 2x2 blocks of each phase image of dY, th x tw of them
int64_t tile_rows(const ConvParams& p) { return ceil_div(ceil_div(p.Ho, p.dh), 2); }
int64_t tile_cols(const ConvParams& p) { return ceil_div(ceil_div(p.Wo, p.dw), 2); }

}  // namespace

// At least 384 tiles, and 64 channels in and out for 3x3 (32 for 5x5): below, M's fixed costs
// (O x C x n² each: its sums and taps) and the transforms (per tile, O + C) outweigh the
// products saved. Measured A/B against the direct weight gradient (Intel, 1 / 2 threads): 3x3
// with 64 channels and 392 tiles 0.71 / 0.86, 128 channels 0.68 / 0.71, 32 channels 0.94-1.06
// (784 tiles), 64 channels on 98 tiles 0.84 / 1.16; 5x5 with 32 channels 0.84-0.90 (784 tiles),
// 0.89-1.05 (392).
template <typename T>
bool winograd_weight_grad_applies(const ConvParams& p) {
  if (!winograd_applies<T>(p)) return false;
  const int64_t tiles = p.N * p.dh * p.dw * tile_rows(p) * tile_cols(p);
  return tiles >= 384 && std::min(p.C, p.O) >= (p.kh == 5 ? 32 : 64);
}
template bool winograd_weight_grad_applies<float>(const ConvParams&);
template bool winograd_weight_grad_applies<double>(const ConvParams&);

template <typename T>
bool winograd_weight_grad(const ConvParams& p, const T* dy, const T* x, T* dw) {
  const int64_t r = p.kh, n = r + 1, E = n * n, C = p.C, O = p.O;
  const kernels::WinogradKernels<T>& kern = winograd_kernels<T>(r);
  const GemmBlocking<T>& bk = weight_grad_blocking<T>(O, C);
  const int64_t MR = bk.mr, NR = bk.nr, m_sl = ceil_div(O, MR), n_sl = ceil_div(C, NR);
  // tiles: th x tw per phase image (dh x dw of them), phase (rh, rw) holding the outputs
  // (rh + dh*i, rw + dw*j); tile (ti, tj) the outputs i = 2ti.., j = 2tj.. and the inputs
  // (rh + dh*(2ti + a), rw + dw*(2tj + b)) of the padded image, a, b < n
  const int64_t th = tile_rows(p), tw = tile_cols(p);
  const int64_t phases = p.dh * p.dw, per_image = phases * th * tw;
  const int64_t Hx = p.dh * (2 * th + r - 1), Wx = p.dw * (2 * tw + r - 1);  // padded x
  const int64_t Hy = p.dh * 2 * th, Wy = p.dw * 2 * tw;                       // dY, zeros past
  const int64_t x_image = Hx * Wx * C, y_image = Hy * Wy * O;

  // packed slivers of a block of at most Tb tiles: A (D, MR output channels per k) and B (V, NR
  // input channels)
  const int64_t per_tile = E * (m_sl * MR + n_sl * NR) * int64_t(sizeof(T));
  const int64_t Tb = E * O * C * int64_t(sizeof(T)) > kBlockBytes
                         ? kMaxBlockTiles
                         : std::clamp<int64_t>(kBlockBytes / per_tile / 16 * 16, kMinBlockTiles,
                                               kMaxBlockTiles);
  const int64_t a_sliver = Tb * MR, b_sliver = Tb * NR;
  const int64_t e_a = winograd_spread(m_sl * a_sliver), e_b = winograd_spread(n_sl * b_sliver);
  const int64_t e_m = winograd_spread(O * C), slice_m = E * e_m;
  const int nt = 2.0 * E * O * C * p.N * per_image < kGemmMinParallelFlops ? 1 : max_threads();
  // tasks: the slices, and with more threads than slices parts of M's rows, each transforming
  // its blocks' whole input
  const int64_t parts = std::clamp<int64_t>(nt / kSlices, 1, m_sl), tasks = kSlices * parts;
  const int64_t task_buf = E * (e_a + e_b);
  // M's slices and one packed block per slice are the size of the weights, not of the batch:
  // within half of what the workspace limit leaves, or the caller's direct way (the same for
  // any threads: more threads than slices add packed blocks, as other passes add panels)
  if (kSlices * (slice_m + task_buf) * int64_t(sizeof(T)) >
      static_cast<int64_t>(workspace_budget() / 2))
    return false;
  AlignedBuffer<T> packed(tasks * task_buf), m(kSlices * slice_m);
  // lanes past O and C are never written: zeros, which the kernels multiply into dropped
  // rows and columns of M
  for (int64_t i = 0; i < tasks * E; ++i) {
    T* a_last = packed.data() + i / E * task_buf + i % E * e_a + (m_sl - 1) * a_sliver;
    T* b_last = packed.data() + i / E * task_buf + E * e_a + i % E * e_b + (n_sl - 1) * b_sliver;
    if (O % MR) std::fill(a_last, a_last + a_sliver, T(0));
    if (C % NR) std::fill(b_last, b_last + b_sliver, T(0));
  }
  std::vector<char> started(tasks, 0);  // whether a task's slice of M holds a block yet

  // images per chunk: their channels-last copies within what the limit leaves
  const int64_t budget = static_cast<int64_t>(workspace_budget() / sizeof(T));
  const int64_t nb =
      std::clamp<int64_t>(budget / (x_image + y_image), 1, std::max<int64_t>(p.N, 1));
  AlignedBuffer<T> xc(std::min(nb, p.N) * x_image), yc(std::min(nb, p.N) * y_image);

  for (int64_t n0 = 0; n0 < p.N; n0 += nb) {
    const int64_t count = std::min(nb, p.N - n0);
    parallel_for(2 * count, nt, [&](int64_t item, int) {
      const int64_t b = item / 2;
      if (item % 2 == 0)
        channels_last(x + (n0 + b) * C * p.H * p.W, C, p.H, p.W, p.ph, p.pw, Hx, Wx,
                      xc.data() + b * x_image);
      else
        channels_last(dy + (n0 + b) * O * p.Ho * p.Wo, O, p.Ho, p.Wo, 0, 0, Hy, Wy,
                      yc.data() + b * y_image);
    });
    // the chunk's tiles in blocks of at most Tb, as many as makes whole rounds of the slices,
    // evened out
    const int64_t tiles = count * per_image;
    const int64_t tb_max = ceil_div(tiles, round_up(ceil_div(tiles, Tb), kSlices));
    parallel_for(tasks, nt, [&](int64_t task, int) {
      const int64_t slice = task / parts, part = task % parts;
      const int64_t s0 = m_sl * part / parts, s1 = m_sl * (part + 1) / parts;
      T* a_buf = packed.data() + task * task_buf;
      T* b_buf = a_buf + E * e_a;
      T* m_slice = m.data() + slice * slice_m;
      for (int64_t t0 = slice * tb_max; t0 < tiles; t0 += kSlices * tb_max) {
        const int64_t tb = std::min(tb_max, tiles - t0);
        // D (this part's slivers) and V of the block, in runs of tiles along a row
        for (int64_t t = t0; t < t0 + tb;) {
          const int64_t len = std::min(tw - t % tw, t0 + tb - t);
          const int64_t b = t / per_image, f = t % per_image / (th * tw);
          const int64_t ti = t % (th * tw) / tw, tj = t % tw;
          const int64_t row = f / p.dw + 2 * p.dh * ti, col = f % p.dw + 2 * p.dw * tj;
          const T* dy_at = yc.data() + b * y_image + (row * Wy + col) * O;
          for (int64_t s = s0; s < s1; ++s)
            kern.grad_cl(dy_at + s * MR, p.dh * Wy * O, p.dw * O, 2 * p.dw * O, len,
                         std::min(MR, O - s * MR), a_buf + s * a_sliver + (t - t0) * MR, MR,
                         e_a);
          const T* x_at = xc.data() + b * x_image + (row * Wx + col) * C;
          for (int64_t u = 0; u < n_sl; ++u)
            kern.input_cl(x_at + u * NR, p.dh * Wx * C, p.dw * C, 2 * p.dw * C, len,
                          std::min(NR, C - u * NR), b_buf + u * b_sliver + (t - t0) * NR, NR,
                          e_b);
          t += len;
        }
        // M_e += D_e V_eᵀ over the block, into the slice's M
        const T beta = started[task] ? T(1) : T(0);
        started[task] = 1;
        for (int64_t e = 0; e < E; ++e)
          for (int64_t s = s0; s < s1; ++s)
            for (int64_t u = 0; u < n_sl; ++u)
              bk.kernel(tb, a_buf + e * e_a + s * a_sliver, b_buf + e * e_b + u * b_sliver,
                        m_slice + e * e_m + s * MR * C + u * NR, C, std::min(MR, O - s * MR),
                        std::min(NR, C - u * NR), T(1), beta, nullptr, false);
      }
    });
  }
  // the slices' sums, in slice order, into the first
  for (int64_t slice = 1; slice < kSlices; ++slice) {
    if (!started[slice * parts]) continue;
    const T* add = m.data() + slice * slice_m;
    parallel_for(E, E * O * C >= 65536 ? nt : 1, [&](int64_t e, int) {
      T* to = m.data() + e * e_m;
      const T* from = add + e * e_m;
      for (int64_t i = 0; i < O * C; ++i) to[i] += from[i];
    });
  }
  if (p.N == 0) {  // no images: dW is zero
    std::fill(dw, dw + O * C * r * r, T(0));
    return true;
  }
  // dW[o][c] = A_rᵀ M A_r: each o's taps as (tap, c), then transposed into dW's (c, tap)
  AlignedBuffer<T> taps(nt * r * r * C);
  parallel_for(O, O * C * E >= 65536 ? nt : 1, [&](int64_t o, int tid) {
    T* buf = taps.data() + tid * r * r * C;
    kern.taps(m.data() + o * C, e_m, C, buf, C);
    transpose_kernel<T>()(buf, C, r * r, C, dw + o * C * r * r, r * r);
  });
  for (int64_t i = 0; i < O * C * r * r; ++i)
    if (!std::isfinite(dw[i])) return false;
  return true;
}

template bool winograd_weight_grad<float>(const ConvParams&, const float*, const float*, float*);
template bool winograd_weight_grad<double>(const ConvParams&, const double*, const double*,
                                           double*);

}  // namespace fastbp
