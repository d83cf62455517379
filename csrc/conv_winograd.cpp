#include "conv_winograd.h"

#include <algorithm>
#include <atomic>

#include "aligned_buffer.h"
#include "dispatch.h"
#include "gemm/blocking.h"
#include "gemm/driver.h"
#include "gemm/pack.h"
#include "kernels/winograd.h"
#include "parallel.h"

// The transforms, with the n x n input tile d (n = r + 1 = 4 or 6), the r x r kernel g and the
// n x n product M (kernels/winograd.h gives the matrices):
//   V = Bᵀ d B,  U = G g Gᵀ,  Y = Aᵀ M A,  M = sum over input channels of U ⊙ V
// Element e = n*a + b of the n x n transforms is GEMM e:
//   M_e (O x tiles) = U_e (O x C) V_e (C x tiles).
// The GEMMs run on the micro-kernels directly: U is packed once per call, V is written by the
// input transform straight into packed slivers of a block of tiles, and each block's M goes
// through the output transform while it is in cache. Every output is one fixed chain (the kernel's
// sum over channels in order, then the output transform), so its bits do not depend on how the
// tiles and channels are cut into blocks or on the threads.
//
// Tile (i, j) of an image reads rows 2i..2i+n-1 and columns 2j..2j+n-1 of the zero-padded input
// and writes outputs (2i..2i+1, 2j..2j+1), those inside Ho x Wo. The padded input is kept split
// into its even and odd columns, so a run of tiles along a row reads every input as contiguous
// runs.

namespace fastbp {
namespace {

// The fewest input and output channels for which the transforms pay, by kernel size and tiles
// per row. Fewer channels leave the GEMMs little depth (C) or few rows (O) against transforms
// whose cost is per channel; short rows of tiles fill few lanes of the transforms' vectors.
// Measured A/B against im2col, C = O, 1 and 2 threads:
// - 3x3: 56x56 images gain from 32 channels (0.80 / 0.86), 28x28 from 32 (0.95 /
//   0.93), 14x14 from 64 (0.80 / 0.76; 48: 0.95 / 1.03), 7x7 and 4x4 from 128 (0.91 / 0.84 and
//   0.57 / 0.80; 64: 1.10 / 1.10 and 1.03 / 1.10).
// - 5x5 with padding 2 (Intel, AVX-512), whose 36 products per tile replace 100: 56x56 and 28x28
//   from 16 (0.95 / 0.90 and 0.68 / 0.96; 8: 1.3-7), 14x14 from 24 (0.82 / 0.97; 16: 0.94 /
//   1.13; 64: 0.71 / 0.74), 7x7 from 96 (0.94 / 0.87; 64: 1.00 / 1.02).
inline int64_t min_channels(int64_t r, int64_t tiles_per_row) {
  if (r == 5) return tiles_per_row >= 14 ? 16 : tiles_per_row >= 7 ? 24 : 96;
  return tiles_per_row >= 14 ? 32 : tiles_per_row >= 7 ? 64 : 128;
}
// The elements of a tile, (r + 1)², each a GEMM.
inline int64_t elements(int64_t r) { return (r + 1) * (r + 1); }
// U, 16 / 9 (3x3) or 36 / 25 (5x5) the size of the weights, is made on every call and read once
// per block of tiles: at most 8 MiB of it, which the caches mostly hold. Past that its traffic
// to memory decides:
// c512 (8x512x7x7, 16 MiB of U) measured 0.79-0.89 of im2col's time on a quiet machine but
// 1.00-1.03 with the memory shared, where im2col reads 9 MiB of weights in place.
constexpr int64_t kMaxTransformedBytes = int64_t(8) << 20;
// Tiles per block: the columns of each GEMM, enough to amortise loading an A sliver; one
// element's V (a slice of channels x these tiles) stays in L2.
constexpr int64_t kBlockTiles = 96;
// Channels per pass of the input transform over a block's runs of tiles. A run along one row of
// tiles writes a part of each line of V it touches; a pass over all channels per run left those
// lines to be fetched again for the next run. With four, the lines are whole before they leave
// L1 (Intel, 1 / 2 threads: lenet-c2 forward 0.91 / 0.93 of the time before, its input gradient
// 0.87 / 0.89; 3x3 layers 0.96-0.99).
constexpr int64_t kPassChannels = 4;


// floor(a / b) and ceil(a / b) for b > 0 and any a
inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((b - 1 - a) / b); }
inline int64_t ceil_div_any(int64_t a, int64_t b) { return -floor_div(-a, b); }

// A dilated convolution is dh x dw independent undilated ones: output phase (rh, rw), the
// outputs (rh + dh*i, rw + dw*j), is an r x r convolution of the input rows rh - ph + dh*R and
// columns rw - pw + dw*Q (zero outside the input). Each such phase image is tiled alike, with as
// many tiles as the largest phase needs; the tiles past a smaller phase's outputs are computed
// and dropped. Without dilation there is one phase: the image.
struct Tiles {
  int64_t dh, dw;                   // phases per image: dh x dw
  int64_t th, tw, per_phase, per_image;  // tiles: th x tw per phase image
  int64_t Hp, We;                   // a phase image's padded rows, columns per half (even / odd)
  explicit Tiles(const ConvParams& p)
      : dh(p.dh), dw(p.dw), th(ceil_div(ceil_div(p.Ho, p.dh), 2)),
        tw(ceil_div(ceil_div(p.Wo, p.dw), 2)), per_phase(th * tw),
        per_image(p.dh * p.dw * per_phase), Hp(2 * th + p.kh - 1), We(tw + (p.kw - 1) / 2) {}
  int64_t plane() const { return Hp * 2 * We; }  // one channel of one phase image
};

// One channel of phase image (rh, rw), zero-padded and split into its even and odd columns:
// row R holds input row rh - ph + dh*R, its phase column 2q at E[q] and 2q + 1 at O[q]
// (O = E + We), zeros outside the input. Each plane is contiguous, so a run of tiles reads all
// channels nearby.
template <typename T>
void split_plane(const ConvParams& p, const Tiles& tl, int64_t rh, int64_t rw,
                 const T* __restrict x, T* __restrict dst) {
  // the q whose input column rw - pw + dw*(2q + s) (s = 0 even, 1 odd) lies in the input
  const int64_t c0 = rw - p.pw, step = 2 * p.dw;
  const int64_t e0 = std::max<int64_t>(0, ceil_div_any(-c0, step));
  const int64_t e1 = std::min(tl.We, floor_div(p.W - 1 - c0, step) + 1);
  const int64_t o0 = std::max<int64_t>(0, ceil_div_any(-c0 - p.dw, step));
  const int64_t o1 = std::min(tl.We, floor_div(p.W - 1 - c0 - p.dw, step) + 1);
  for (int64_t r = 0; r < tl.Hp; ++r) {
    T* e = dst + r * 2 * tl.We;
    T* o = e + tl.We;
    const int64_t ih = rh - p.ph + p.dh * r;
    if (ih < 0 || ih >= p.H) {
      std::fill(e, e + 2 * tl.We, T(0));
      continue;
    }
    const T* src = x + ih * p.W;
    if (step == 2) {  // undilated: both column phases in one pass (gemm/pack.h)
      pack_detail::split_phases(src, p.W, c0, tl.We, e, o);
      continue;
    }
    std::fill(e, e + 2 * tl.We, T(0));
    for (int64_t q = e0; q < e1; ++q) e[q] = src[c0 + step * q];
    for (int64_t q = o0; q < o1; ++q) o[q] = src[c0 + p.dw + step * q];
  }
}

}  // namespace

template <>
const kernels::WinogradKernels<float>& winograd_kernels<float>(int64_t r) {
  namespace k = kernels;
  if (r == 5)
    return *for_active_path(&k::ref::swinograd5, FASTBP_X86(k::avx2::swinograd5),
                            FASTBP_X86(k::avx512::swinograd5));
  return *for_active_path(&k::ref::swinograd3, FASTBP_X86(k::avx2::swinograd3),
                          FASTBP_X86(k::avx512::swinograd3));
}
template <>
const kernels::WinogradKernels<double>& winograd_kernels<double>(int64_t r) {
  namespace k = kernels;
  if (r == 5)
    return *for_active_path(&k::ref::dwinograd5, FASTBP_X86(k::avx2::dwinograd5),
                            FASTBP_X86(k::avx512::dwinograd5));
  return *for_active_path(&k::ref::dwinograd3, FASTBP_X86(k::avx2::dwinograd3),
                          FASTBP_X86(k::avx512::dwinograd3));
}

namespace {

// Blocks of tiles: as few as hold the tiles at kBlockTiles (rounded up to whole slivers of NR)
// each, evened out; the last may be shorter.
inline int64_t block_tiles(int64_t tiles, int64_t NR) {
  const int64_t blocks = ceil_div(tiles, round_up(kBlockTiles, NR));
  return round_up(ceil_div(tiles, blocks), NR);
}

// The GEMM tile: the ISA's main tile or its wide one, whichever pads the products less (the
// tiles are the columns here, so how they fill slivers matters as much as the channels).
template <typename T>
const GemmBlocking<T>& winograd_blocking(int64_t O, int64_t tiles) {
  const GemmBlocking<T>& main = gemm_blocking<T>(active_capability());
  if (!main.wide) return main;
  const auto padded = [&](const GemmBlocking<T>& b) {
    const int64_t tb = block_tiles(tiles, b.nr), last = tiles - (ceil_div(tiles, tb) - 1) * tb;
    return round_up(O, b.mr) * ((ceil_div(tiles, tb) - 1) * tb + round_up(last, b.nr));
  };
  return padded(*main.wide) < padded(main) ? *main.wide : main;
}

}  // namespace

template <typename T>
bool winograd_applies(const ConvParams& p) {
  if (p.kh != p.kw || (p.kh != 3 && p.kh != 5) || p.sh != 1 || p.sw != 1 || p.groups != 1 ||
      p.Ho < 2 || p.Wo < 2 ||
      double(elements(p.kh)) * p.O * p.C * sizeof(T) > kMaxTransformedBytes)
    return false;
  return std::min(p.C, p.O) >= min_channels(p.kh, Tiles(p).tw);
}
template bool winograd_applies<float>(const ConvParams&);
template bool winograd_applies<double>(const ConvParams&);

template <typename T>
bool winograd_forward(const ConvParams& p, const T* x, const T* w, const T* bias, T* y,
                      bool relu, bool swapped) {
  if (p.N == 0) return true;
  const Tiles tl(p);
  const GemmBlocking<T>& bk = winograd_blocking<T>(p.O, p.N * tl.per_image);
  const kernels::WinogradKernels<T>& kern = winograd_kernels<T>(p.kh);
  const int64_t E = elements(p.kh), taps = p.kh * p.kw;
  const int64_t MR = bk.mr, NR = bk.nr, C = p.C, O = p.O;
  const int64_t KC = std::min(round_up(ceil_div(C, ceil_div(C, bk.kc)), 8), C);
  const int64_t m_sl = ceil_div(O, MR);
  const int64_t a_sliver = round_up(C * MR, 16);  // keeps every sliver on a 64-byte boundary
  const int64_t e_u = winograd_spread(m_sl * a_sliver);  // U's stride between elements e
  const int nt = 2.0 * E * O * C * p.N * tl.per_image < kGemmMinParallelFlops ? 1 : max_threads();

  // U, packed: sliver s of element e holds rows s*MR.. of U_e, each channel's MR values together.
  // Made from the sliver's kernels packed the same way, tap by tap.
  AlignedBuffer<T> u_packed(E * e_u), g_packed(nt * taps * C * MR);
  parallel_for(m_sl, nt, [&](int64_t s, int tid) {
    T* g = g_packed.data() + tid * taps * C * MR;
    const int64_t rows = std::min(MR, O - s * MR);
    if (swapped)  // kernel (o, c) is w[c][o] flipped: each c's MR rows of r x r taps, transposed
      for (int64_t c = 0; c < C; ++c) {
        const T* src = w + (c * O + s * MR) * taps;
        for (int64_t k = 0; k < taps; ++k)
          for (int64_t l = 0; l < MR; ++l)
            g[(c * taps + k) * MR + l] = l < rows ? src[l * taps + taps - 1 - k] : T(0);
      }
    else
      StridedPacker<T>{w + s * MR * taps * C, taps * C, 1}.pack(0, rows, 0, taps * C,
                                                               static_cast<int>(MR), g);
    kern.weight(g, C, MR, u_packed.data() + s * a_sliver, e_u);
  });

  // blocks of tiles, and each thread's V (E packed slivers per NR tiles) and M (E x O x tiles)
  const int64_t b_sliver = round_up(KC * NR, 16);
  const int64_t max_tb = round_up(kBlockTiles, NR);
  const int64_t v_size = E * winograd_spread(ceil_div(max_tb, NR) * b_sliver);
  const int64_t m_size = E * winograd_spread(O * max_tb);
  const int64_t work = v_size + m_size;
  // images per chunk: their padded copy within what the limit leaves after U, the packed
  // kernels and the threads' buffers
  const int64_t budget = static_cast<int64_t>(workspace_budget() / sizeof(T)) - nt * work;
  const int64_t image_planes = tl.dh * tl.dw * C * tl.plane();
  const int64_t most = std::clamp<int64_t>(budget / image_planes, 1, p.N);
  const int64_t nb = ceil_div(p.N, ceil_div(p.N, most));
  AlignedBuffer<T> padded(nb * image_planes);
  AlignedBuffer<T> buffers(nt * work);

  std::atomic<bool> finite{true};
  for (int64_t n0 = 0; n0 < p.N && finite; n0 += nb) {
    const int64_t count = std::min(nb, p.N - n0);
    // planes in the order (image, phase, channel)
    const int64_t phases = tl.dh * tl.dw;
    parallel_for(count * phases * C, count * phases * C * tl.plane() >= 16384 ? nt : 1,
                 [&](int64_t item, int) {
                   const int64_t n = item / (phases * C), f = item / C % phases, c = item % C;
                   split_plane(p, tl, f / tl.dw, f % tl.dw, x + ((n0 + n) * C + c) * p.H * p.W,
                               padded.data() + item * tl.plane());
                 });
    const int64_t tiles = count * tl.per_image;
    const int64_t tb_max = block_tiles(tiles, NR), n_blocks = ceil_div(tiles, tb_max);
    // with few blocks, threads also split the output channels (each transforms the block's input)
    const int64_t parts = nt > 1 ? std::clamp<int64_t>(ceil_div(2 * nt, n_blocks), 1, m_sl) : 1;
    parallel_for(n_blocks * parts, nt, [&](int64_t item, int tid) {
      const int64_t blk = item / parts, part = item % parts;
      const int64_t t0 = blk * tb_max, tb = std::min(tb_max, tiles - t0);
      const int64_t n_sl = ceil_div(tb, NR);
      const int64_t s0 = m_sl * part / parts, s1 = m_sl * (part + 1) / parts;
      T* v = buffers.data() + tid * work;
      T* m = v + v_size;
      const int64_t e_v = winograd_spread(n_sl * b_sliver);  // V's stride between elements e
      const int64_t e_m = winograd_spread(O * tb);             // M's
      for (int64_t c0 = 0; c0 < C; c0 += KC) {
        const int64_t kc = std::min(KC, C - c0);
        // V of the block's tiles, channels c0.., kPassChannels at a time, in runs along tile
        // rows cut at sliver ends
        for (int64_t c1 = c0; c1 < c0 + kc; c1 += kPassChannels)
          for (int64_t t = t0; t < t0 + tb;) {
            const int64_t f = t / tl.per_phase, r = t % tl.per_phase, i = r / tl.tw,
                          j = r % tl.tw;
            const int64_t lane = t - t0, sl = lane / NR, l = lane % NR;
            const int64_t len = std::min({tl.tw - j, NR - l, t0 + tb - t});
            kern.input(padded.data() + ((f * C + c1) * tl.Hp + 2 * i) * 2 * tl.We + j,
                       2 * tl.We, tl.We, len, std::min(kPassChannels, c0 + kc - c1), tl.plane(),
                       v + sl * b_sliver + (c1 - c0) * NR + l, NR, e_v);
            t += len;
          }
        if (tb % NR)  // the last sliver's lanes past the block: zeros, not stale values
          for (int64_t e = 0; e < E; ++e)
            for (int64_t c = 0; c < kc; ++c) {
              T* d = v + e * e_v + (n_sl - 1) * b_sliver + c * NR;
              std::fill(d + tb % NR, d + NR, T(0));
            }
        const T beta = c0 == 0 ? T(0) : T(1);
        for (int64_t e = 0; e < E; ++e)
          for (int64_t s = s0; s < s1; ++s) {
            const T* a = u_packed.data() + e * e_u + s * a_sliver + c0 * MR;
            const int64_t rows = std::min(MR, O - s * MR);
            for (int64_t sl = 0; sl < n_sl; ++sl)
              bk.kernel(kc, a, v + e * e_v + sl * b_sliver, m + e * e_m + s * MR * tb + sl * NR,
                        tb, rows, std::min(NR, tb - sl * NR), T(1), beta, nullptr, false);
          }
      }
      // Y for the block's tiles, output channels of this part
      for (int64_t t = t0; t < t0 + tb;) {
        const int64_t f = t / tl.per_phase, r = t % tl.per_phase, i = r / tl.tw, j = r % tl.tw;
        const int64_t n = f / (tl.dh * tl.dw), rh = f / tl.dw % tl.dh, rw = f % tl.dw;
        const int64_t len = std::min(tl.tw - j, t0 + tb - t);
        // output (rh + dh*(2i + a), rw + dw*(2j + c)); a phase with fewer outputs drops the rest
        const int64_t oh = rh + tl.dh * 2 * i, ow = rw + tl.dw * 2 * j;
        const int64_t cols = ceil_div_any(p.Wo - rw, tl.dw) - 2 * j;
        const int64_t o0 = s0 * MR, o1 = std::min(s1 * MR, O);
        if (oh < p.Ho && cols > 0 &&
            !kern.output(m + o0 * tb + (t - t0), e_m, len, o1 - o0, tb, bias ? bias + o0 : nullptr,
                         relu, y + (((n0 + n) * O + o0) * p.Ho + oh) * p.Wo + ow, p.Ho * p.Wo,
                         oh + tl.dh < p.Ho, tl.dh * p.Wo, cols, tl.dw))
          finite = false;
        t += len;
      }
    });
  }
  return finite;
}

template bool winograd_forward<float>(const ConvParams&, const float*, const float*,
                                      const float*, float*, bool, bool);
template bool winograd_forward<double>(const ConvParams&, const double*, const double*,
                                       const double*, double*, bool, bool);

}  // namespace fastbp
