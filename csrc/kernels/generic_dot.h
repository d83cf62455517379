// Portable body of dot_rows (dot.h) on GCC/Clang vector types of VB bytes, with an MR x NR tile
// of vector accumulators: pick VB, MR, NR so that MR*NR + NR + 1 vectors fit the ISA's
// registers. Include only inside an anonymous namespace, as generic_ukernel.h.
#pragma once
// Vectors of 64 bytes are passed by value between these inline helpers, all inside one kernel
// file; GCC's note that this ABI differs between ISAs concerns calls across files only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
#include <algorithm>
#include <cstdint>

template <typename T, int VB>
struct DotVec {
  typedef T type __attribute__((vector_size(VB)));
  typedef T unaligned __attribute__((vector_size(VB), aligned(alignof(T)), may_alias));
  static constexpr int L = VB / sizeof(T);
  static type load(const T* p) { return *reinterpret_cast<const unaligned*>(p); }
};

// Sum of the lanes of v, pairwise in a fixed order.
template <typename T, int L, typename V>
inline T reduce_lanes(V v) {
  T lane[L];
  for (int l = 0; l < L; ++l) lane[l] = v[l];
  for (int width = L / 2; width >= 1; width /= 2)
    for (int l = 0; l < width; ++l) lane[l] += lane[l + width];
  return lane[0];
}

// One tile: ROWS rows of A (<= MR) against COLS rows of B (<= NR), k in [k0, k1).
template <typename T, int VB, int ROWS, int COLS>
inline void dot_tile(int64_t k0, int64_t k1, const T* const* ar, const T* const* br,
                     const int64_t* k_pos, T out[][4]) {
  using V = DotVec<T, VB>;
  constexpr int64_t S = 64 / sizeof(T);  // kDotStep
  typename V::type acc[ROWS][COLS] = {};
  for (int64_t k = k0; k < k1; k += V::L) {
    const int64_t kp = k_pos ? k_pos[k / S] + k % S : k;
    typename V::type bv[COLS];
#pragma GCC unroll 8
    for (int j = 0; j < COLS; ++j) bv[j] = V::load(br[j] + kp);
#pragma GCC unroll 8
    for (int i = 0; i < ROWS; ++i) {
      const typename V::type av = V::load(ar[i] + k);
#pragma GCC unroll 8
      for (int j = 0; j < COLS; ++j) acc[i][j] += av * bv[j];
    }
  }
  for (int i = 0; i < ROWS; ++i)
    for (int j = 0; j < COLS; ++j) out[i][j] = reduce_lanes<T, V::L>(acc[i][j]);
}

// Edge tiles run the same loop with fewer rows/columns (all combinations instantiated).
template <typename T, int VB, int MR, int NR, int ROWS = MR>
inline void dot_tile_rows(int rows, int cols, int64_t k0, int64_t k1, const T* const* ar,
                          const T* const* br, const int64_t* kp, T out[][4]) {
  if constexpr (ROWS > 1) {
    if (rows < ROWS)
      return dot_tile_rows<T, VB, MR, NR, ROWS - 1>(rows, cols, k0, k1, ar, br, kp, out);
  }
  if (cols >= NR) return dot_tile<T, VB, ROWS, NR>(k0, k1, ar, br, kp, out);
  if constexpr (NR > 1) {
    if (cols == 1) return dot_tile<T, VB, ROWS, 1>(k0, k1, ar, br, kp, out);
  }
  if constexpr (NR > 2) {
    if (cols == 2) return dot_tile<T, VB, ROWS, 2>(k0, k1, ar, br, kp, out);
  }
  if constexpr (NR > 3) {
    if (cols == 3) return dot_tile<T, VB, ROWS, 3>(k0, k1, ar, br, kp, out);
  }
}

template <typename T, int VB, int MR, int NR>
void generic_dot_rows(int64_t K, const T* a, const int64_t* a_off, int64_t m, const T* b,
                      const int64_t* b_off, int64_t n, const int64_t* k_pos, T beta, T* c,
                      int64_t ldc) {
  static_assert(NR <= 4, "tile columns");
  // k in chunks that keep the tile's rows in L1 while a column tile sweeps the rows of A
  constexpr int64_t kChunk = 2048 / sizeof(T) * 4;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == T(0) ? T(0) : beta * c[i * ldc + j];
  for (int64_t k0 = 0; k0 < K; k0 += kChunk) {
    const int64_t k1 = std::min(K, k0 + kChunk);
    for (int64_t j0 = 0; j0 < n; j0 += NR) {
      const int cols = static_cast<int>(std::min<int64_t>(NR, n - j0));
      const T* br[NR];
      for (int j = 0; j < NR; ++j) br[j] = b + b_off[j0 + std::min(j, cols - 1)];
      for (int64_t i0 = 0; i0 < m; i0 += MR) {
        const int rows = static_cast<int>(std::min<int64_t>(MR, m - i0));
        const T* ar[MR];
        for (int i = 0; i < MR; ++i) ar[i] = a + a_off[i0 + std::min(i, rows - 1)];
        T out[MR][4];
        dot_tile_rows<T, VB, MR, NR>(rows, cols, k0, k1, ar, br, k_pos, out);
        for (int i = 0; i < rows; ++i)
          for (int j = 0; j < cols; ++j) c[(i0 + i) * ldc + j0 + j] += out[i][j];
      }
    }
  }
}

// dot_vec (dot.h): four rows at a time, two vectors of k per step (eight independent chains).
template <typename T, int VB>
void generic_dot_vec(int64_t K, const T* a, int64_t lda, int64_t m, const T* x, T* out) {
  using V = DotVec<T, VB>;
  constexpr int L = V::L, R = 4;
  const int64_t Kv = K / (2 * L) * (2 * L), K1 = K / L * L;
  for (int64_t i0 = 0; i0 < m; i0 += R) {
    const int rows = static_cast<int>(std::min<int64_t>(R, m - i0));
    const T* ar[R];
    for (int r = 0; r < R; ++r) ar[r] = a + (i0 + std::min(r, rows - 1)) * lda;
    typename V::type acc0[R] = {}, acc1[R] = {};
    for (int64_t k = 0; k < Kv; k += 2 * L) {
      const typename V::type x0 = V::load(x + k), x1 = V::load(x + k + L);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        acc0[r] += V::load(ar[r] + k) * x0;
        acc1[r] += V::load(ar[r] + k + L) * x1;
      }
    }
    if (K1 > Kv) {
      const typename V::type x0 = V::load(x + Kv);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) acc0[r] += V::load(ar[r] + Kv) * x0;
    }
    for (int r = 0; r < rows; ++r) {
      T s = reduce_lanes<T, L>(acc0[r] + acc1[r]);
      for (int64_t k = K1; k < K; ++k) s += ar[r][k] * x[k];
      out[i0 + r] = s;
    }
  }
}

// The four entry points of dot.h for one ISA file, on VB-byte vectors with an MR x NR tile;
// expand inside that ISA's namespace.
#define FASTBP_DEFINE_DOT_KERNELS(VB, MR, NR)                                                  \
  void sdot_rows(int64_t K, const float* a, const int64_t* a_off, int64_t m, const float* b,  \
                 const int64_t* b_off, int64_t n, const int64_t* k_pos, float beta, float* c, \
                 int64_t ldc) {                                                               \
    generic_dot_rows<float, VB, MR, NR>(K, a, a_off, m, b, b_off, n, k_pos, beta, c, ldc);    \
  }                                                                                           \
  void ddot_rows(int64_t K, const double* a, const int64_t* a_off, int64_t m, const double* b, \
                 const int64_t* b_off, int64_t n, const int64_t* k_pos, double beta,          \
                 double* c, int64_t ldc) {                                                    \
    generic_dot_rows<double, VB, MR, NR>(K, a, a_off, m, b, b_off, n, k_pos, beta, c, ldc);   \
  }                                                                                           \
  void sdot_vec(int64_t K, const float* a, int64_t lda, int64_t m, const float* x,             \
                float* out) {                                                                 \
    generic_dot_vec<float, VB>(K, a, lda, m, x, out);                                         \
  }                                                                                           \
  void ddot_vec(int64_t K, const double* a, int64_t lda, int64_t m, const double* x,           \
                double* out) {                                                                \
    generic_dot_vec<double, VB>(K, a, lda, m, x, out);                                        \
  }
