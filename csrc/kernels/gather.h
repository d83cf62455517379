// The im2col packers' copy loop, one signature for every ISA (contract: README.md):
//   for r < rows, for each run k:  out[r*row_stride + run.out + i] = src[tap[r] + run.pos + i],
//   i < run.len.
// Runs are short (one output row of a small image is 7..56 pixels), so the loop is written per
// ISA: AVX-512 copies a run of up to 16 floats with one masked load and store.
#pragma once
#include <cstdint>

namespace fastbp::kernels {

struct GatherRun {
  int64_t out, len, pos;
};

template <typename T>
using gather_rows_fn = void (*)(const T* src, const int64_t* tap, int64_t rows,
                                const GatherRun* runs, int64_t n_runs, T* out,
                                int64_t row_stride);

#define FASTBP_DECLARE_GATHER(isa)                                                          \
  namespace isa {                                                                            \
  void sgather_rows(const float* src, const int64_t* tap, int64_t rows, const GatherRun* runs, \
                    int64_t n_runs, float* out, int64_t row_stride);                        \
  void dgather_rows(const double* src, const int64_t* tap, int64_t rows,                     \
                    const GatherRun* runs, int64_t n_runs, double* out, int64_t row_stride); \
  }
FASTBP_DECLARE_GATHER(ref)
FASTBP_DECLARE_GATHER(avx2)
FASTBP_DECLARE_GATHER(avx512)
#undef FASTBP_DECLARE_GATHER

}  // namespace fastbp::kernels
