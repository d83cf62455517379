#include "linear.h"

#include <algorithm>

#include "aligned_buffer.h"
#include "gemm/driver.h"
#include "gemm/pack.h"
#include "parallel.h"

namespace fastbp {

namespace {

// dst (cols x rows) = src (rows x cols) transposed, in 64 x 64 blocks (threads over row blocks).
template <typename T>
void transpose(const T* src, int64_t rows, int64_t cols, T* dst) {
  constexpr int64_t kBlock = 64;
  const int nt = rows * cols >= 65536 ? max_threads() : 1;
  parallel_for(ceil_div(rows, kBlock), nt, [&](int64_t rb, int) {
    const int64_t r0 = rb * kBlock, r1 = std::min(rows, r0 + kBlock);
    for (int64_t c0 = 0; c0 < cols; c0 += kBlock)
      transpose_kernel<T>()(src + r0 * cols + c0, cols, r1 - r0, std::min(kBlock, cols - c0),
                            dst + c0 * rows + r0, rows);
  });
}

// yᵀ = W xᵀ (+ bias, filled into each row first as gemm's path fills y): W is read in place
// as A, so only the batch is packed, and y is the transpose of the O x B result. Each element
// is the same chain of products as gemm's, so the bits do not change. For weights beyond the
// caches and a batch of at most 256 rows: there packing Wᵀ as B is a pass over W at memory
// speed that the multiply does not hide (measured, 1 thread: 32x2048->2048 -40%, 2x4096->4096
// -52%, 256x4096->1024 -4%; with 4 MiB of weights 64x1024->1024 was 9% slower, and with 1024
// rows 6%). Needs a rows kernel and O a whole number of its tiles. Where the rows kernel's
// address moves take FMA ports (dispatch.h), only up to 96 rows (Intel, 1 / 2 threads: 32 rows
// -20%, 96 -7%; 128 +4%, 256 +18% / +15% against packing Wᵀ).
constexpr int64_t kWeightRowsMinBytes = int64_t(8) << 20, kWeightRowsMaxBatch = 256,
                  kWeightRowsMaxBatchAluOnFma = 96;

template <typename T>
bool linear_forward_weight_rows(int64_t B, int64_t I, int64_t O, const T* x, const T* w,
                                const T* bias, T* y, bool relu) {
  const GemmBlocking<T>& bk = gemm_blocking_for_rows<T>(active_capability(), O);
  const int64_t max_batch = alu_on_fma_ports() ? kWeightRowsMaxBatchAluOnFma : kWeightRowsMaxBatch;
  if (!bk.rows_kernel || O % bk.mr != 0 || B < 2 || B > max_batch ||
      static_cast<double>(O) * I * sizeof(T) < kWeightRowsMinBytes)
    return false;
  AlignedBuffer<T> yt(O * B);
  T beta = T(0);
  if (bias) {
    for (int64_t o = 0; o < O; ++o) std::fill(yt.data() + o * B, yt.data() + (o + 1) * B, bias[o]);
    beta = T(1);
  }
  gemm_driver<T>(O, B, I, T(1), InPlaceRowsPacker<T>{{w, I, 1}}, StridedPacker<T>{x, I, 1}, beta,
                 yt.data(), B, max_threads(), relu ? Epilogue::relu : Epilogue::none);
  transpose(yt.data(), O, B, y);
  return true;
}

}  // namespace

template <typename T>
void linear_forward(int64_t B, int64_t I, int64_t O, const T* x, const T* w, const T* bias,
                    T* y, bool relu) {
  if (linear_forward_weight_rows(B, I, O, x, w, bias, y, relu)) return;
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
