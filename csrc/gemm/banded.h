// A GEMM whose columns come in bands that each need only some of A's columns (k steps):
//   C[:, band b] = A[:, k_b] B[k_b, band b],  k_b an ascending list,
// with A and B read where they lie by the rows kernels (kernels/README.md): A(i, k) =
// a[i*lda + k], B(k, j) = base[off[k] + pos(j)], pos(j) by the band of column j.
// A convolution's output rows whose taps reach into the padding form bands that skip those
// taps (conv.cpp).
//
// The bands' columns follow one another and are cut into slivers of NR as in one GEMM; a
// sliver across two bands multiplies the k steps of both (the union of their lists; with a
// convolution, the extra taps read zero padding). k runs in slices of the whole depth, each
// sliver taking the listed steps that fall in the slice, so A's rows are read once per slice
// for all bands, and every element of C is one chain of kernel calls over its sliver's steps
// in order, cut where the slices end: the same bits for any thread count. A step left out
// multiplies a zero (padding) that would add nothing: the same bits as the plain GEMM of every
// step, signed zeros and non-finite weights on the padding aside.
#pragma once
#include <algorithm>
#include <cstdint>
#include <iterator>
#include <vector>

#include "driver.h"

namespace fastbp {

template <typename T>
struct ColumnBand {
  int64_t n;         // columns
  const int64_t* k;  // the nk columns of A it multiplies, ascending
  int64_t nk;
  InPlaceB<T> at;    // where its columns lie in B: at.base + at.pos(j) (at.off unused)
};

// Whether this path runs a banded GEMM of M rows: it needs a rows kernel and whole tiles.
template <typename T>
bool banded_gemm_applies(int64_t M) {
  const GemmBlocking<T>& bk = gemm_blocking_for_rows<T>(active_capability(), M);
  return bk.rows_kernel != nullptr && M > 0 && M % bk.mr == 0;
}

// C (M rows ldc apart, the bands' columns side by side) = the products above; A has K columns,
// b_off[k] is where row k of B lies. Each vector of a sliver must lie in at most
// kMaxRunSegments runs of consecutive positions. Requires banded_gemm_applies<T>(M).
template <typename T>
void banded_gemm(int64_t M, int64_t K, const T* a, int64_t lda, const int64_t* b_off,
                 const std::vector<ColumnBand<T>>& bands, T* C, int64_t ldc, int nt) {
  int64_t N = 0;
  for (const ColumnBand<T>& band : bands) N += band.n;
  if (M <= 0 || N <= 0) return;
  if (K <= 0) return scale_matrix(M, N, T(0), C, ldc);
  const GemmBlocking<T>& bk = gemm_blocking_for_rows<T>(active_capability(), M);
  const int MR = bk.mr, NR = bk.nr;
  constexpr int kVec = 64 / sizeof(T), kSeg = 3 * kMaxRunSegments;
  const int64_t KC = slice_depth(bk, K, true);  // as the plain GEMM's: the same bits
  const int64_t n_slices = ceil_div(K, KC);

  // each column's band and position (relative to the first band's base)
  std::vector<int64_t> band_of(N), pos(N), follow(N);
  for (int64_t b = 0, j = 0; b < int64_t(bands.size()); ++b)
    for (int64_t l = 0; l < bands[b].n; ++l, ++j) {
      band_of[j] = b;
      pos[j] = (bands[b].at.base - bands[0].at.base) + bands[b].at.pos(l);
    }
  // how many columns from j on lie at consecutive positions
  for (int64_t j = N - 1; j >= 0; --j)
    follow[j] = j + 1 < N && pos[j + 1] == pos[j] + 1 ? follow[j + 1] + 1 : 1;

  // the slivers: their k steps (a band's list, or the union across bands), B rows' offsets,
  // where each slice's steps start, and their vectors' segments
  struct Sliver {
    int64_t j, n, list;
    int segs;
  };
  std::vector<Sliver> slivers;
  std::vector<std::vector<int64_t>> ks, offs;
  std::vector<int64_t> first, seg_off;
  std::vector<uint16_t> seg_mask;
  int64_t list_band = -1;  // the band whose own list is ks.back(), if any
  double flops = 0;
  for (int64_t j = 0; j < N; j += NR) {
    const int64_t n = std::min<int64_t>(NR, N - j), b0 = band_of[j], b1 = band_of[j + n - 1];
    if (b0 != b1 || b0 != list_band) {
      std::vector<int64_t> k(bands[b0].k, bands[b0].k + bands[b0].nk);
      for (int64_t b = b0 + 1; b <= b1; ++b) {
        std::vector<int64_t> both;
        std::set_union(k.begin(), k.end(), bands[b].k, bands[b].k + bands[b].nk,
                       std::back_inserter(both));
        k.swap(both);
      }
      std::vector<int64_t> off(k.size());
      for (size_t p = 0; p < k.size(); ++p) off[p] = b_off[k[p]];
      for (int64_t s = 0; s <= n_slices; ++s)
        first.push_back(std::lower_bound(k.begin(), k.end(), std::min(s * KC, K)) - k.begin());
      ks.push_back(std::move(k));
      offs.push_back(std::move(off));
      list_band = b0 == b1 ? b0 : -1;
    }
    const int64_t list = int64_t(ks.size()) - 1;
    flops += 2.0 * M * n * double(ks[list].size());
    if (ks[list].empty()) {  // columns that read nothing but padding: their products are zero
      scale_matrix(M, n, T(0), C + j, ldc);
      continue;
    }
    // each vector in runs of consecutive positions: one masked load per run
    const int64_t at = int64_t(slivers.size()) * kSeg;
    seg_off.resize(at + kSeg);
    seg_mask.resize(at + kSeg);
    const auto runs = [&](int64_t l) { return std::pair{pos[j + l], follow[j + l]}; };
    const int segs = cut_segments(runs, n, NR / kVec, kVec, seg_off.data() + at,
                                  seg_mask.data() + at);
    slivers.push_back(Sliver{j, n, list, segs});
  }
  if (slivers.empty()) return;  // columns of padding alone
  if (flops < kGemmMinParallelFlops) nt = 1;
  nt = std::max(nt, 1);

  const int64_t m_sl = M / MR, n_sl = int64_t(slivers.size());
  const TaskGrid grid = choose_tasks(m_sl, n_sl, std::max<int64_t>(1, bk.mc / MR), MR, NR, K, nt);
  const T* base = bands[0].at.base;
  const int64_t block_sl = std::max<int64_t>(1, bk.nc / NR);
  parallel_for(grid.n_rows * grid.n_cols, nt, [&](int64_t t, int) {
    const int64_t jr = t / grid.n_rows, ir = t % grid.n_rows;
    const int64_t s0 = m_sl * ir / grid.n_rows, s1 = m_sl * (ir + 1) / grid.n_rows;
    const int64_t r0 = n_sl * jr / grid.n_cols, r1 = n_sl * (jr + 1) / grid.n_cols;
    // as the plain GEMM: B slivers in blocks (kc x nc, in L2), each met by every A sliver
    // (MR x kc, in L1) in turn
    for (int64_t sl = 0; sl < n_slices; ++sl)
      for (int64_t rb = r0; rb < r1; rb += block_sl)
        for (int64_t s = s0; s < s1; ++s)
          for (int64_t r = rb; r < std::min(r1, rb + block_sl); ++r) {
            const Sliver& v = slivers[r];
            const int64_t* starts = first.data() + v.list * (n_slices + 1);
            const int64_t p0 = starts[sl], kc = starts[sl + 1] - p0;
            if (kc == 0) continue;
            // A at listed columns, or as it lies where every step is listed (the kernel's faster
            // loop); the sliver's first slice with steps starts its chain, later ones add to it
            const bool all = int64_t(ks[v.list].size()) == K;
            bk.rows_kernel(kc, a + s * MR * lda + (all ? p0 : 0), lda,
                           all ? nullptr : ks[v.list].data() + p0, base + pos[v.j],
                           offs[v.list].data() + p0, seg_off.data() + r * kSeg,
                           seg_mask.data() + r * kSeg, v.segs, C + s * MR * ldc + v.j, ldc, MR,
                           v.n, T(1), p0 == 0 ? T(0) : T(1), nullptr, false);
          }
  });
}

}  // namespace fastbp
