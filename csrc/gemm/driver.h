// The five-loop GEMM driver: C[M,N] = alpha * A[M,K] B[K,N] + beta * C, C row-major (ldc).
// A and B come through packers (pack.h, or an im2col packer), so the driver never cares how an
// operand is laid out. Every element of C is produced by one chain of kernel calls over k in
// order, so results are bitwise identical for any thread count.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "../aligned_buffer.h"
#include "../dispatch.h"
#include "../parallel.h"
#include "blocking.h"

namespace fastbp {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Below this many flops a GEMM runs on the calling thread: a parallel region costs more.
constexpr double kGemmMinParallelFlops = 4.0e6;

template <typename T>
void scale_matrix(int64_t M, int64_t N, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    if (beta == T(0))
      std::fill(c, c + N, T(0));
    else if (beta != T(1))
      for (int64_t j = 0; j < N; ++j) c[j] *= beta;
  }
}

// How many k steps to pack across a whole B block before moving on (whole depth by default).
// A packer whose lanes are contiguous in memory says so with `pack_depth()`: packing a few k
// steps of every sliver reads a few long row segments, which the hardware prefetcher follows,
// instead of hundreds of short ones per sliver, which it does not.
template <class P>
auto pack_depth_hint(const P& p, int) -> decltype(int64_t(p.pack_depth())) {
  return p.pack_depth();
}
template <class P>
int64_t pack_depth_hint(const P&, long) {
  return 0;
}

template <typename T, class PackA, class PackB>
void gemm_driver(int64_t M, int64_t N, int64_t K, T alpha, const PackA& pack_a,
                 const PackB& pack_b, T beta, T* C, int64_t ldc, int nt) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == T(0)) {
    scale_matrix(M, N, beta, C, ldc);
    return;
  }
  const GemmBlocking<T>& bk = gemm_blocking<T>(active_capability());
  const int MR = bk.mr, NR = bk.nr;
  const int64_t KC = std::min(bk.kc, K);
  const int64_t MC = round_up(std::min(bk.mc, M), MR);
  const int64_t NC = round_up(std::min(bk.nc, N), NR);
  if (2.0 * M * N * K < kGemmMinParallelFlops) nt = 1;
  nt = std::max(nt, 1);

  AlignedBuffer<T> a_panel(MC * KC);
  AlignedBuffer<T> b_blocks(static_cast<int64_t>(nt) * NC * KC);
  const int64_t n_jb = ceil_div(N, NC);
  const int64_t b_hint = pack_depth_hint(pack_b, 0);
  const int64_t b_depth = b_hint > 0 ? b_hint : KC;

  // loop over k, KC at a time: one pass adds this depth slice into all of C
  for (int64_t pc = 0; pc < K; pc += KC) {
    const int64_t kc = std::min(KC, K - pc);
    const T beta_pc = pc == 0 ? beta : T(1);
    // loop over rows of A, MC at a time: pack the A panel (shared by all threads)
    for (int64_t ic = 0; ic < M; ic += MC) {
      const int64_t mc = std::min(MC, M - ic);
      const int64_t n_as = ceil_div(mc, MR);
      T* ap = a_panel.data();
      parallel_for(n_as, nt, [&](int64_t s, int) {
        pack_a.pack(ic + s * MR, std::min<int64_t>(MR, mc - s * MR), pc, kc, MR, ap + s * MR * kc);
      });
      // macro-tiles: (block of NC columns) x (chunk of A slivers), handed out dynamically;
      // split rows only as far as needed to give every thread work
      const int64_t want = std::max<int64_t>(1, ceil_div(4 * nt, n_jb));
      const int64_t per_chunk = ceil_div(n_as, want);
      const int64_t n_ich = ceil_div(n_as, per_chunk);
      std::vector<int64_t> held(nt, -1);  // which column block each thread's B buffer holds
      parallel_for(n_jb * n_ich, nt, [&](int64_t t, int tid) {
        const int64_t jb = t / n_ich, ich = t % n_ich;
        const int64_t jc = jb * NC, nc = std::min(NC, N - jc), n_bs = ceil_div(nc, NR);
        T* bp = b_blocks.data() + tid * NC * KC;
        // loop over columns of B, NC at a time: pack the B block into this thread's buffer
        if (held[tid] != jb) {
          for (int64_t q = 0; q < kc; q += b_depth)
            for (int64_t s = 0; s < n_bs; ++s)
              pack_b.pack(jc + s * NR, std::min<int64_t>(NR, nc - s * NR), pc + q,
                          std::min<int64_t>(b_depth, kc - q), NR, bp + s * NR * kc + q * NR);
          held[tid] = jb;
        }
        // loop over A slivers (MR rows; the sliver stays in L1), then B slivers (NR columns)
        const int64_t s_end = std::min(n_as, (ich + 1) * per_chunk);
        for (int64_t s = ich * per_chunk; s < s_end; ++s) {
          const int64_t i = ic + s * MR, m = std::min<int64_t>(MR, M - i);
          const T* a = ap + s * MR * kc;
          for (int64_t bs = 0; bs < n_bs; ++bs)
            bk.kernel(kc, a, bp + bs * NR * kc, C + i * ldc + jc + bs * NR, ldc, m,
                      std::min<int64_t>(NR, nc - bs * NR), alpha, beta_pc);
        }
      });
    }
  }
}

}  // namespace fastbp
