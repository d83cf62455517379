// Portable body of gather_rows (gather.h), vectorised by the including file's ISA flags.
// Include only inside an anonymous namespace, as generic_ukernel.h.
#pragma once
#include <cstdint>

template <typename T>
void generic_gather_rows(const T* __restrict src, const int64_t* tap, int64_t rows,
                         const fastbp::kernels::GatherRun* runs, int64_t n_runs,
                         T* __restrict out, int64_t row_stride) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* base = src + tap[r];
    T* o = out + r * row_stride;
    for (int64_t k = 0; k < n_runs; ++k) {
      const T* s = base + runs[k].pos;
      T* d = o + runs[k].out;
      for (int64_t i = 0; i < runs[k].len; ++i) d[i] = s[i];
    }
  }
}
