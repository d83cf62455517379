// The five-loop GEMM driver: C[M,N] = alpha * A[M,K] B[K,N] + beta * C, C row-major (ldc).
// A and B come through packers (pack.h, or an im2col packer), so the driver never cares how an
// operand is laid out. Every element of C is produced by one chain of kernel calls over k in
// order, so results are bitwise identical for any thread count.
#pragma once
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <utility>
#include <vector>

#include "../aligned_buffer.h"
#include "../dispatch.h"
#include "../parallel.h"
#include "blocking.h"
#include "gemm.h"

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

// A packer whose B operand already sits in memory as rows says so with `in_place()`; on ISAs
// with a rows kernel the driver then reads B there, unpacked: B(p, j) = base[off[p] + pos(j)].
// pos(j) = j, or with `run` > 0, columns come in runs of `run` that lie `pitch` apart within a
// group of `group` runs, groups `group_pitch` apart: pos(j) = (u / group) * group_pitch +
// (u % group) * pitch + j % run with u = j / run. The kernel loads each vector of a row of B in
// as many masked segments as the runs cut it into (at most kMaxRunSegments).
constexpr int kMaxRunSegments = 4;

// The masked loads of the `nv` vectors of `vec` lanes of n columns, one per run of consecutive
// positions within a vector; runs(l) gives lane l's position and how many lanes from l on follow
// it at consecutive positions. Segment s of vector v loads the lanes in mask[v*S + s] from
// runs(0)'s position + voff[v*S + s] + lane. Returns S, the most segments any vector needs
// (unused ones have an empty mask); lanes at or past n are in no mask. A vector that would
// need more than kMaxRunSegments is an internal error (the callers' layouts rule it out).
template <class Runs>
int cut_segments(const Runs& runs, int64_t n, int nv, int vec, int64_t* voff, uint16_t* mask) {
  constexpr int kMaxVectors = 3;  // the rows kernels' tiles are two or three vectors wide
  if (nv > kMaxVectors) throw std::logic_error("fastbp: a sliver of B wider than a kernel's tile");
  int64_t cut_off[kMaxVectors][kMaxRunSegments];
  uint16_t cut_mask[kMaxVectors][kMaxRunSegments];
  int count[kMaxVectors] = {}, S = 1;
  const int64_t at = runs(0).first;
  for (int v = 0; v < nv; ++v) {
    for (int64_t l = v * vec; l < std::min<int64_t>(n, (v + 1) * vec);) {
      const auto [here, follow] = runs(l);
      const int64_t len = std::min<int64_t>({follow, (v + 1) * vec - l, n - l});
      const int64_t lane = l - v * vec;
      if (count[v] == kMaxRunSegments)
        throw std::logic_error("fastbp: a vector of B spans more runs than a kernel loads");
      cut_off[v][count[v]] = here - at - lane;
      cut_mask[v][count[v]++] = static_cast<uint16_t>(((1u << len) - 1) << lane);
      l += len;
    }
    S = std::max(S, count[v]);
  }
  for (int v = 0; v < nv; ++v)
    for (int s = 0; s < S; ++s) {
      voff[v * S + s] = s < count[v] ? cut_off[v][s] : 0;
      mask[v * S + s] = s < count[v] ? cut_mask[v][s] : 0;
    }
  return S;
}

template <typename T>
struct InPlaceB {
  const T* base = nullptr;
  const int64_t* off = nullptr;
  int64_t run = 0, pitch = 0, group = 1, group_pitch = 0;
  int64_t pos(int64_t j) const {
    if (run == 0) return j;
    const int64_t u = j / run;
    return (u / group) * group_pitch + (u % group) * pitch + j % run;
  }
  // The segments of the `nv` vectors of `vec` lanes of columns [j, j + n), relative to pos(j)
  // (cut_segments above): runs end every `run` columns.
  int segments(int64_t j, int64_t n, int nv, int vec, int64_t* voff, uint16_t* mask) const {
    const auto runs = [&](int64_t l) {
      return std::pair<int64_t, int64_t>{pos(j + l), run > 0 ? run - (j + l) % run : vec};
    };
    return cut_segments(runs, n, nv, vec, voff, mask);
  }
};

template <typename T, class P>
auto in_place_hint(const P& p, int) -> decltype(InPlaceB<T>(p.in_place())) {
  return p.in_place();
}
template <typename T, class P>
InPlaceB<T> in_place_hint(const P&, long) {
  return {};
}

// A packer whose lanes are rows in memory with k contiguous says so with `rows_in_place(ld)`.
// The driver reads them in place when B is read in place too, or always when the packer also
// says `prefer_in_place()` (and the ISA has a rows kernel, which then reads B's packed slivers).
template <class P>
auto prefer_in_place_hint(const P& p, int) -> decltype(bool(p.prefer_in_place())) {
  return p.prefer_in_place();
}
template <class P>
bool prefer_in_place_hint(const P&, long) {
  return false;
}
template <typename T, class P>
auto rows_hint(const P& p, int64_t& ld, int)
    -> decltype(static_cast<const T*>(p.rows_in_place(ld))) {
  return p.rows_in_place(ld);
}
template <typename T, class P>
const T* rows_hint(const P&, int64_t&, long) {
  return nullptr;
}

// k per slice: equal slices of at most kc (a multiple of 8), so no short last slice, whose
// kernel calls would spend as long loading and storing C as multiplying. With A and B both read
// in place nothing is packed, and slices of up to kc_in_place reload and store C's tiles less
// often (lenet-c2, r18-down, s2-5x5, c512-7x7 forward 2-3% faster at 1024 than at 384 floats).
template <typename T>
int64_t slice_depth(const GemmBlocking<T>& bk, int64_t K, bool in_place) {
  const int64_t kc = in_place && bk.kc_in_place > 0 ? bk.kc_in_place : bk.kc;
  return std::min(round_up(ceil_div(K, ceil_div(K, kc)), 8), K);
}

struct TaskGrid {
  int64_t n_rows, n_cols;  // C is cut into n_rows x n_cols tasks
};

// Picks how many row and column runs to cut C into, one task each. A task packs its A rows once
// per k slice and B once per column block, so more tasks cost packing (A is packed again for
// every column run, B for every row run), while too few leave a thread idle. The estimate: the
// busiest thread's tasks times (kernel time + packing time) per task, in rough cycles.
inline TaskGrid choose_tasks(int64_t m_sl, int64_t n_sl, int64_t max_m_sl, int MR, int NR,
                             int64_t K, int nt) {
  TaskGrid best{ceil_div(m_sl, max_m_sl), 1};
  if (nt <= 1) return best;
  const double kFmaPerCycle = 32.0, kPackCycles = 1.5;
  double best_cost = -1.0;
  for (int64_t ni = best.n_rows; ni <= std::min<int64_t>(m_sl, best.n_rows + 4 * nt); ++ni) {
    for (int64_t nj = 1; nj <= std::min<int64_t>(n_sl, 4 * nt); ++nj) {
      const double mb = double(ceil_div(m_sl, ni) * MR), nb = double(ceil_div(n_sl, nj) * NR);
      const double task = mb * nb * K / kFmaPerCycle + (mb + nb) * K * kPackCycles;
      const double cost = double(ceil_div(ni * nj, nt)) * task;
      if (best_cost < 0 || cost < best_cost * 0.999) {
        best_cost = cost;
        best = {ni, nj};
      }
    }
  }
  return best;
}

// row_bias[i] added to row i of C (when given), then relu as torch's, in one pass over C by the
// ISA's epilogue kernel (kernels/epilogue.h): for the products no micro-kernel stores (K == 0,
// or a GEMV). Everywhere else the micro-kernels apply it to the last k slice's values as they
// store them (kernels/README.md), with no pass of its own: the pass cost lenet-c1 8%.
template <typename T>
void apply_epilogue(Epilogue ep, const T* row_bias, int64_t M, int64_t N, T* C, int64_t ldc) {
  if (ep != Epilogue::relu && !row_bias) return;
  bias_rows_kernel<T>()(C, ldc, C, ldc, M, N, row_bias, ep == Epilogue::relu);
}

// C is cut into tasks of whole slivers; one task computes its part of C over all of k. Tasks are
// handed out dynamically and never wait for each other: on shared vCPUs a barrier costs a whole
// time slice whenever one thread is descheduled.
template <typename T, class PackA, class PackB>
void gemm_driver(int64_t M, int64_t N, int64_t K, T alpha, const PackA& pack_a,
                 const PackB& pack_b, T beta, T* C, int64_t ldc, int nt,
                 Epilogue ep = Epilogue::none, const T* row_bias = nullptr) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == T(0)) {
    scale_matrix(M, N, beta, C, ldc);
    apply_epilogue(ep, row_bias, M, N, C, ldc);
    return;
  }
  const GemmBlocking<T>& bk = gemm_blocking_for_rows<T>(active_capability(), M);
  const int MR = bk.mr, NR = bk.nr;
  if (2.0 * M * N * K < kGemmMinParallelFlops) nt = 1;
  nt = std::max(nt, 1);

  // tasks: rows and columns cut into nearly equal runs of whole slivers
  const int64_t m_sl = ceil_div(M, MR), n_sl = ceil_div(N, NR);
  const TaskGrid grid = choose_tasks(m_sl, n_sl, std::max<int64_t>(1, bk.mc / MR), MR, NR, K, nt);
  const int64_t n_tasks = grid.n_rows * grid.n_cols;
  const int64_t block_sl = std::max<int64_t>(1, bk.nc / NR);  // B slivers per packed block
  const int64_t MB = ceil_div(m_sl, grid.n_rows) * MR;
  const int64_t NB = std::min(ceil_div(n_sl, grid.n_cols), block_sl) * NR;
  const InPlaceB<T> direct = bk.rows_kernel ? in_place_hint<T>(pack_b, 0) : InPlaceB<T>{};
  // A read in place as well, when B is and A's rows have k contiguous (a conv's weights): its
  // packing is the copy of the whole weight tensor per call, and with threads splitting the
  // columns, per thread. Only where M is whole tiles: the kernel reads MR rows of A.
  int64_t lda = 0;
  const bool a_in_place = direct.base || (bk.rows_kernel && prefer_in_place_hint(pack_a, 0));
  const T* a_rows = a_in_place && M % MR == 0 ? rows_hint<T>(pack_a, lda, 0) : nullptr;
  const int64_t KC = slice_depth(bk, K, a_rows && direct.base);
  constexpr int kVec = 64 / sizeof(T);  // the rows kernels' vectors
  // A in place with B packed: the rows kernel reads B's packed sliver as rows NR apart
  std::vector<int64_t> packed_off(a_rows && !direct.base ? KC : 0);
  for (int64_t q = 0; q < int64_t(packed_off.size()); ++q) packed_off[q] = q * NR;
  // each thread's A then B buffer, both starting on 64-byte boundaries (the kernels' aligned loads)
  const int64_t a_size = a_rows ? 0 : round_up(MB * KC, 64);
  const int64_t per_thread = a_size + (direct.base ? 0 : round_up(NB * KC, 64));
  AlignedBuffer<T> buffers(std::min<int64_t>(nt, n_tasks) * per_thread);
  const int64_t b_hint = pack_depth_hint(pack_b, 0);
  const int64_t b_depth = b_hint > 0 ? b_hint : KC;
  // With a single k slice a thread keeps its packed B block for a next task on the same columns.
  std::vector<int64_t> held(nt, -1);

  // tasks column-run major, so consecutive tasks share B blocks
  parallel_for(n_tasks, nt, [&](int64_t t, int tid) {
    const int64_t jr = t / grid.n_rows, ir = t % grid.n_rows;
    const int64_t s0 = m_sl * ir / grid.n_rows, s1 = m_sl * (ir + 1) / grid.n_rows;  // A slivers
    const int64_t r0 = n_sl * jr / grid.n_cols, r1 = n_sl * (jr + 1) / grid.n_cols;  // B slivers
    const int64_t ic = s0 * MR, mb = std::min(s1 * MR, M) - ic, n_as = s1 - s0;
    T* ap = buffers.data() + tid * per_thread;
    T* bp = ap + a_size;
    // loop over k, KC at a time: pack this task's A rows
    for (int64_t pc = 0; pc < K; pc += KC) {
      const int64_t kc = std::min(KC, K - pc);
      const T beta_pc = pc == 0 ? beta : T(1);
      if (!a_rows)
        for (int64_t s = 0; s < n_as; ++s)
          pack_a.pack(ic + s * MR, std::min<int64_t>(MR, mb - s * MR), pc, kc, MR,
                      ap + s * MR * kc);
      // loop over the task's columns, NB at a time: pack the B block (it stays in L2)
      for (int64_t rb = r0; rb < r1; rb += block_sl) {
        const int64_t jc = rb * NR, nb = std::min(std::min(r1, rb + block_sl) * NR, N) - jc;
        const int64_t n_bs = ceil_div(nb, NR);
        if (!direct.base && !(K == kc && held[tid] == jc && r1 - r0 <= block_sl)) {
          for (int64_t q = 0; q < kc; q += b_depth)
            for (int64_t s = 0; s < n_bs; ++s)
              pack_b.pack(jc + s * NR, std::min<int64_t>(NR, nb - s * NR), pc + q,
                          std::min<int64_t>(b_depth, kc - q), NR, bp + s * NR * kc + q * NR);
          held[tid] = K == kc ? jc : -1;
        }
        // B read in place: each B sliver's segments, once for all the A slivers
        constexpr int kSeg = 3 * kMaxRunSegments;
        thread_local std::vector<int64_t> seg_off;
        thread_local std::vector<uint16_t> seg_mask;
        thread_local std::vector<int> seg_count;
        // the cuts depend on the columns' geometry only: the last ones serve again when it
        // repeats, as for each image of a convolution and each k slice (lenet-c1, ppg-c1 -4%)
        constexpr int kKey = 8;
        thread_local int64_t seg_key[kKey] = {};  // NR = 0: nothing cut yet
        const InPlaceB<T> b_rows = direct.base ? direct : InPlaceB<T>{};
        const int64_t key[kKey] = {NR, direct.base != nullptr, b_rows.run, b_rows.pitch,
                                   b_rows.group, b_rows.group_pitch, jc, nb};
        const bool again = std::equal(key, key + kKey, seg_key);
        if ((direct.base || a_rows) && !again) {
          std::copy(key, key + kKey, seg_key);
          // a packed sliver is one run of NR columns
          seg_off.resize(n_bs * kSeg);
          seg_mask.resize(n_bs * kSeg);
          seg_count.resize(n_bs);
          for (int64_t bs = 0; bs < n_bs; ++bs)
            seg_count[bs] = b_rows.segments(jc + bs * NR, std::min<int64_t>(NR, nb - bs * NR),
                                            NR / kVec, kVec, seg_off.data() + bs * kSeg,
                                            seg_mask.data() + bs * kSeg);
        }
        // loop over A slivers (MR rows; the sliver stays in L1), then B slivers (NR columns)
        for (int64_t s = 0; s < n_as; ++s) {
          const int64_t i = ic + s * MR, m = std::min<int64_t>(MR, M - i);
          const T* a = ap + s * MR * kc;
          // the epilogue as the last k slice's values are stored
          const bool last = pc + kc == K;
          const T* bias = last && row_bias ? row_bias + i : nullptr;
          const bool relu = last && ep == Epilogue::relu;
          for (int64_t bs = 0; bs < n_bs; ++bs) {
            T* c = C + i * ldc + jc + bs * NR;
            const int64_t n = std::min<int64_t>(NR, nb - bs * NR);
            if (direct.base || a_rows) {
              const int64_t j = jc + bs * NR;
              const T* b = direct.base ? direct.base + direct.pos(j) : bp + bs * NR * kc;
              bk.rows_kernel(kc, a_rows ? a_rows + i * lda + pc : a, a_rows ? lda : 0, nullptr,
                             b, direct.base ? direct.off + pc : packed_off.data(),
                             seg_off.data() + bs * kSeg, seg_mask.data() + bs * kSeg,
                             seg_count[bs], c, ldc, m, n, alpha, beta_pc, bias, relu);
            } else {
              bk.kernel(kc, a, bp + bs * NR * kc, c, ldc, m, n, alpha, beta_pc, bias, relu);
            }
          }
        }
      }
    }
  });
}

}  // namespace fastbp
