// Portable micro-kernel body, written so the compiler can vectorise the NR loop for whatever ISA
// flags the including file is built with. Include it only inside an anonymous namespace: each
// kernel file gets its own copy, so code built for one ISA never leaks into another's.
#pragma once
#include <cstdint>

#include "generic_epilogue.h"

template <typename T, int MR, int NR>
inline void generic_gemm_ukernel(int64_t kc, const T* __restrict a, const T* __restrict b,
                                 T* __restrict c, int64_t ldc, int64_t m, int64_t n, T alpha,
                                 T beta, const T* bias, bool relu) {
  T acc[MR][NR] = {};
  for (int64_t p = 0; p < kc; ++p) {
    const T* ap = a + p * MR;
    const T* bp = b + p * NR;
    for (int i = 0; i < MR; ++i) {
      const T ai = ap[i];
      for (int j = 0; j < NR; ++j) acc[i][j] += ai * bp[j];
    }
  }
  for (int64_t i = 0; i < m; ++i) {
    T* ci = c + i * ldc;
    if (beta == T(0)) {
      for (int64_t j = 0; j < n; ++j) ci[j] = alpha * acc[i][j];
    } else {
      for (int64_t j = 0; j < n; ++j) ci[j] = alpha * acc[i][j] + beta * ci[j];
    }
  }
  generic_bias_rows(c, ldc, c, ldc, m, n, bias, relu);  // the epilogue (epilogue.h)
}
