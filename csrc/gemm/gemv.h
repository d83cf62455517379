// Matrix-vector products (M == 1 or N == 1) without packing: packing would touch every element
// of the matrix once more than the product itself does. Each output is one fixed sum over k,
// so results do not depend on the thread count.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "../dispatch.h"
#include "../kernels/dot.h"
#include "../parallel.h"

namespace fastbp {

namespace gemv_detail {

// The matrix-vector dot kernel of the active CPU path (kernels/dot.h).
inline kernels::dot_vec_fn<float> dot_vec_kernel(float*) {
  namespace k = kernels;
  return for_active_path(&k::ref::sdot_vec, FASTBP_X86(k::avx2::sdot_vec),
                         FASTBP_X86(k::avx512::sdot_vec));
}
inline kernels::dot_vec_fn<double> dot_vec_kernel(double*) {
  namespace k = kernels;
  return for_active_path(&k::ref::ddot_vec, FASTBP_X86(k::avx2::ddot_vec),
                         FASTBP_X86(k::avx512::ddot_vec));
}

template <typename T>
void store(T* c, T value, T alpha, T beta) {
  *c = beta == T(0) ? alpha * value : alpha * value + beta * *c;
}

// out[i] (i < count, stride ldo) = alpha * sum_p v[p] * M(p, i) + beta * out[i],
// where M(p, i) = m[p*rs + i] (rows contiguous) or dot products of m + i*cs (columns contiguous).
template <typename T>
void matvec(int64_t count, int64_t K, T alpha, const T* m, int64_t rs, int64_t cs, const T* v,
            int64_t vs, T beta, T* out, int64_t ldo, int nt) {
  std::vector<T> vec;
  if (vs != 1) {  // the vector contiguous, once
    vec.resize(K);
    for (int64_t p = 0; p < K; ++p) vec[p] = v[p * vs];
    v = vec.data();
  }
  constexpr int64_t kChunk = 64;
  const auto dot_vec = dot_vec_kernel(static_cast<T*>(nullptr));
  const int64_t chunks = (count + kChunk - 1) / kChunk;
  if (double(count) * double(K) < 65536.0) nt = 1;
  parallel_for(chunks, nt, [&](int64_t ch, int) {
    const int64_t i0 = ch * kChunk, i1 = std::min(count, i0 + kChunk);
    if (rs == 1) {  // column i of M contiguous in p: one dot product per output
      T dots[kChunk];
      dot_vec(K, m + i0 * cs, cs, i1 - i0, v, dots);
      for (int64_t i = i0; i < i1; ++i) store(out + i * ldo, dots[i - i0], alpha, beta);
      return;
    }
    T acc[kChunk] = {};  // row p of M contiguous in i: sweep rows in order
    for (int64_t p = 0; p < K; ++p) {
      const T* row = m + p * rs;
      const T vp = v[p];
      for (int64_t i = i0; i < i1; ++i) acc[i - i0] += vp * row[i];
    }
    for (int64_t i = i0; i < i1; ++i) store(out + i * ldo, acc[i - i0], alpha, beta);
  });
}

}  // namespace gemv_detail

// Handles C = alpha * A B + beta * C when M == 1 or N == 1 and the matrix operand has a unit
// stride; returns false (nothing done) otherwise.
template <typename T>
bool gemv(int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t rs_a, int64_t cs_a,
          const T* B, int64_t rs_b, int64_t cs_b, T beta, T* C, int64_t ldc, int nt) {
  if (M == 1 && (rs_b == 1 || cs_b == 1)) {  // c[j] = a . B(:, j)
    // as matvec: M(p, j) = B(p, j); rows contiguous when cs_b == 1
    if (cs_b == 1)
      gemv_detail::matvec(N, K, alpha, B, rs_b, 1, A, cs_a, beta, C, 1, nt);
    else
      gemv_detail::matvec(N, K, alpha, B, 1, cs_b, A, cs_a, beta, C, 1, nt);
    return true;
  }
  if (N == 1 && (rs_a == 1 || cs_a == 1)) {  // c[i] = A(i, :) . b
    // as matvec over M(p, i) = A(i, p): rows of M contiguous when rs_a == 1
    if (rs_a == 1)
      gemv_detail::matvec(M, K, alpha, A, cs_a, 1, B, rs_b, beta, C, ldc, nt);
    else
      gemv_detail::matvec(M, K, alpha, A, 1, rs_a, B, rs_b, beta, C, ldc, nt);
    return true;
  }
  return false;
}

}  // namespace fastbp
