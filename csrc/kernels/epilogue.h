// Epilogue kernels: bias and relu over rows of a result, one signature for every ISA
// (contract: README.md):
//   dst[i*ldd + j] = f(src[i*lds + j] + bias[i])   for i < m, j < n,
// without the add when bias is null, with f = relu (negatives to zero; NaN and -0.0 kept, as
// torch) or the identity. src may be dst (in place). The relu is a select, not a branch: on
// random signs a branch mispredicts half the time. Each value is one add at most, so the bits
// never depend on the ISA or on how the rows are cut.
#pragma once
#include <cstdint>

namespace fastbp::kernels {

template <typename T>
using bias_rows_fn = void (*)(const T* src, int64_t lds, T* dst, int64_t ldd, int64_t m,
                              int64_t n, const T* bias, bool relu);

#define FASTBP_DECLARE_EPILOGUE(isa)                                                        \
  namespace isa {                                                                            \
  void sbias_rows(const float* src, int64_t lds, float* dst, int64_t ldd, int64_t m,        \
                  int64_t n, const float* bias, bool relu);                                  \
  void dbias_rows(const double* src, int64_t lds, double* dst, int64_t ldd, int64_t m,      \
                  int64_t n, const double* bias, bool relu);                                 \
  }
FASTBP_DECLARE_EPILOGUE(ref)
FASTBP_DECLARE_EPILOGUE(avx2)
FASTBP_DECLARE_EPILOGUE(avx512)
#undef FASTBP_DECLARE_EPILOGUE

}  // namespace fastbp::kernels
