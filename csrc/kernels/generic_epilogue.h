// Portable body of bias_rows (epilogue.h), vectorised by the including file's ISA flags (the
// selects become masked moves or blends). Include only inside an anonymous namespace, as
// generic_ukernel.h.
#pragma once
#include <cstdint>

template <typename T>
void generic_bias_rows(const T* src, int64_t lds, T* dst, int64_t ldd, int64_t m, int64_t n,
                       const T* bias, bool relu) {
  for (int64_t i = 0; i < m; ++i) {
    const T* s = src + i * lds;
    T* d = dst + i * ldd;
    if (bias) {
      const T add = bias[i];
      if (relu)
        for (int64_t j = 0; j < n; ++j) {
          const T v = s[j] + add;
          d[j] = v < T(0) ? T(0) : v;
        }
      else
        for (int64_t j = 0; j < n; ++j) d[j] = s[j] + add;
    } else if (relu) {  // no add: -0.0 + 0.0 would turn -0.0 into +0.0
      for (int64_t j = 0; j < n; ++j) d[j] = s[j] < T(0) ? T(0) : s[j];
    } else if (s != d) {
      for (int64_t j = 0; j < n; ++j) d[j] = s[j];
    }
  }
}

#define FASTBP_DEFINE_EPILOGUE_KERNELS()                                                      \
  void sbias_rows(const float* src, int64_t lds, float* dst, int64_t ldd, int64_t m,         \
                  int64_t n, const float* bias, bool relu) {                                  \
    generic_bias_rows(src, lds, dst, ldd, m, n, bias, relu);                                  \
  }                                                                                           \
  void dbias_rows(const double* src, int64_t lds, double* dst, int64_t ldd, int64_t m,       \
                  int64_t n, const double* bias, bool relu) {                                 \
    generic_bias_rows(src, lds, dst, ldd, m, n, bias, relu);                                  \
  }
