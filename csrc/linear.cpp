#include "linear.h"

#include <algorithm>

#include "gemm/gemm.h"
#include "parallel.h"

namespace fastbp {

template <typename T>
void linear_forward(int64_t B, int64_t I, int64_t O, const T* x, const T* w, const T* bias,
                    T* y, bool relu) {
  T beta = T(0);
  if (bias) {
    for (int64_t r = 0; r < B; ++r) std::copy(bias, bias + O, y + r * O);
    beta = T(1);
  }
  gemm(false, true, B, O, I, T(1), x, I, w, I, beta, y, O,
       relu ? Epilogue::relu : Epilogue::none);
}

template <typename T>
void linear_backward(int64_t B, int64_t I, int64_t O, const T* dy, const T* x, const T* w, T* dx,
                     T* dw, T* db) {
  if (dx) gemm(false, false, B, I, O, T(1), dy, O, w, I, T(0), dx, I);
  if (dw) gemm(true, false, O, I, B, T(1), dy, O, x, I, T(0), dw, I);
  if (db) {
    // column sums in double, rows in order; columns split into fixed chunks
    constexpr int64_t chunk = 256;
    const int nt = B * O >= 65536 ? max_threads() : 1;
    parallel_for((O + chunk - 1) / chunk, nt, [&](int64_t c, int) {
      const int64_t lo = c * chunk, hi = std::min(O, lo + chunk);
      double acc[chunk] = {};
      for (int64_t r = 0; r < B; ++r) {
        const T* row = dy + r * O;
        for (int64_t j = lo; j < hi; ++j) acc[j - lo] += row[j];
      }
      for (int64_t j = lo; j < hi; ++j) db[j] = static_cast<T>(acc[j - lo]);
    });
  }
}

template void linear_forward<float>(int64_t, int64_t, int64_t, const float*, const float*,
                                    const float*, float*, bool);
template void linear_forward<double>(int64_t, int64_t, int64_t, const double*, const double*,
                                     const double*, double*, bool);
template void linear_backward<float>(int64_t, int64_t, int64_t, const float*, const float*,
                                     const float*, float*, float*, float*);
template void linear_backward<double>(int64_t, int64_t, int64_t, const double*, const double*,
                                      const double*, double*, double*, double*);

}  // namespace fastbp
