// Transpose kernels, one signature for every ISA (contract: README.md):
//   dst[c*ld_dst + r] = src[r*ld_src + c]   for r < rows, c < cols.
// Packing a sliver whose lanes run along k in memory (the rows of a row-major A, or of a
// linear layer's weights as Bᵀ) is this copy, as are the channels-last reorders. Only moves: the
// bits never depend on the ISA.
#pragma once
#include <cstdint>

namespace fastbp::kernels {

template <typename T>
using transpose_fn = void (*)(const T* src, int64_t ld_src, int64_t rows, int64_t cols, T* dst,
                              int64_t ld_dst);

#define FASTBP_DECLARE_TRANSPOSE(isa)                                                         \
  namespace isa {                                                                              \
  void stranspose(const float* src, int64_t ld_src, int64_t rows, int64_t cols, float* dst,   \
                  int64_t ld_dst);                                                             \
  void dtranspose(const double* src, int64_t ld_src, int64_t rows, int64_t cols, double* dst, \
                  int64_t ld_dst);                                                             \
  }
FASTBP_DECLARE_TRANSPOSE(ref)
FASTBP_DECLARE_TRANSPOSE(avx2)
FASTBP_DECLARE_TRANSPOSE(avx512)
#undef FASTBP_DECLARE_TRANSPOSE

}  // namespace fastbp::kernels
