// The one micro-kernel signature every ISA implements. Contract: README.md in this folder.
#pragma once
#include <cstdint>

namespace fastbp::kernels {

// C = alpha * A B + beta * C, then bias[i] added to row i (bias not null), then relu: the
// epilogue, applied to the values as they are stored.
template <typename T>
using gemm_ukernel = void (*)(int64_t kc, const T* a, const T* b, T* c, int64_t ldc,
                              int64_t m, int64_t n, T alpha, T beta, const T* bias, bool relu);

// The same product with B's rows left in place. Vector v of row p of B (V = 64 / sizeof(T)
// lanes, NR/V vectors) is `segs` masked loads: load s fills the lanes set in v_mask[v*segs + s]
// with b + b_off[p] + v_off[v*segs + s] + lane (unaligned). Lanes j >= n are in no mask and are
// never read. With lda == 0, `a` is a packed sliver as above; otherwise A's rows are in place
// too, A(i, p) = a[i*lda + p], or a[i*lda + a_off[p]] when a_off is given (k steps that are
// listed columns of A), and the kernel reads MR of them (M must be whole tiles). Only some ISAs
// have one.
template <typename T>
using gemm_ukernel_rows = void (*)(int64_t kc, const T* a, int64_t lda, const int64_t* a_off,
                                   const T* b, const int64_t* b_off, const int64_t* v_off,
                                   const uint16_t* v_mask, int64_t segs, T* c, int64_t ldc,
                                   int64_t m, int64_t n, T alpha, T beta, const T* bias, bool relu);

#define FASTBP_DECLARE_UKERNELS(isa)                                                        \
  void sgemm_##isa(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,      \
                   int64_t m, int64_t n, float alpha, float beta, const float* bias,      \
                   bool relu);                                                             \
  void dgemm_##isa(int64_t kc, const double* a, const double* b, double* c, int64_t ldc,   \
                   int64_t m, int64_t n, double alpha, double beta, const double* bias,   \
                   bool relu);

// Tile sizes (MR rows x NR columns of C) that each kernel computes.
namespace ref {
constexpr int SMR = 4, SNR = 8, DMR = 4, DNR = 4;
FASTBP_DECLARE_UKERNELS(ref)
}  // namespace ref
namespace avx2 {
constexpr int SMR = 6, SNR = 16, DMR = 6, DNR = 8;
FASTBP_DECLARE_UKERNELS(avx2)
}  // namespace avx2
namespace avx512 {
constexpr int SMR = 12, SNR = 32, DMR = 12, DNR = 16;
constexpr int WSMR = 8, WSNR = 48, WDMR = 8, WDNR = 24;  // the wide tiles
FASTBP_DECLARE_UKERNELS(avx512)
void sgemm_avx512_wide(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                       int64_t m, int64_t n, float alpha, float beta, const float* bias,
                       bool relu);
void dgemm_avx512_wide(int64_t kc, const double* a, const double* b, double* c, int64_t ldc,
                       int64_t m, int64_t n, double alpha, double beta, const double* bias,
                       bool relu);
#define FASTBP_DECLARE_ROWS_UKERNEL(name, T)                                                 \
  void name(int64_t kc, const T* a, int64_t lda, const int64_t* a_off, const T* b,          \
            const int64_t* b_off, const int64_t* v_off, const uint16_t* v_mask, int64_t segs, \
            T* c, int64_t ldc, int64_t m, int64_t n, T alpha, T beta, const T* bias,         \
            bool relu);
FASTBP_DECLARE_ROWS_UKERNEL(sgemm_avx512_rows, float)
FASTBP_DECLARE_ROWS_UKERNEL(dgemm_avx512_rows, double)
FASTBP_DECLARE_ROWS_UKERNEL(sgemm_avx512_wide_rows, float)
FASTBP_DECLARE_ROWS_UKERNEL(dgemm_avx512_wide_rows, double)
#undef FASTBP_DECLARE_ROWS_UKERNEL
}  // namespace avx512

#undef FASTBP_DECLARE_UKERNELS
}  // namespace fastbp::kernels
