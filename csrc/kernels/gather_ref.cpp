// ref gather_rows: the portable body built with this ISA's flags (see CMakeLists.txt).
#include "gather.h"

namespace {
#include "generic_gather.h"
}  // namespace

namespace fastbp::kernels::ref {
void sgather_rows(const float* src, const int64_t* tap, int64_t rows, const GatherRun* runs,
                  int64_t n_runs, float* out, int64_t row_stride) {
  generic_gather_rows(src, tap, rows, runs, n_runs, out, row_stride);
}
void dgather_rows(const double* src, const int64_t* tap, int64_t rows, const GatherRun* runs,
                  int64_t n_runs, double* out, int64_t row_stride) {
  generic_gather_rows(src, tap, rows, runs, n_runs, out, row_stride);
}
}  // namespace fastbp::kernels::ref
