#include "blocking.h"

namespace fastbp {
namespace k = kernels;

// kc_in_place: the rows kernels' A sliver (mr rows of kc_in_place, read in place) in 32 KiB or
// less, 8 x 1024 or 12 x 640 floats.
// Chosen for 32 KiB L1d and 1 MiB L2 per core: the A sliver mr*kc*sizeof(T) well inside L1
// (avx512 float 12x384: 18 KiB), the B block kc*nc*sizeof(T) about 3/4 of L2 (384x480 floats:
// 720 KiB). On Cascade Lake, avx512 float kc/nc of 256/960, 320/768 and 512/384 measured the
// same as 384/480 or worse (sq1024, conv shapes, 1 thread, against OpenBLAS in one process).
template <>
const GemmBlocking<float>& gemm_blocking<float>(Capability c) {
  static const GemmBlocking<float> ref{k::ref::SMR, k::ref::SNR, 512, 256, 512, k::ref::sgemm_ref};
#ifdef FASTBP_X86_KERNELS
  static const GemmBlocking<float> avx2{k::avx2::SMR, k::avx2::SNR, 3072, 384, 480,
                                        k::avx2::sgemm_avx2};
  static const GemmBlocking<float> avx512_wide{k::avx512::WSMR, k::avx512::WSNR, 3072, 384, 480,
                                               k::avx512::sgemm_avx512_wide,
                                               k::avx512::sgemm_avx512_wide_rows, nullptr, 1024};
  static const GemmBlocking<float> avx512{k::avx512::SMR, k::avx512::SNR, 3072, 384, 480,
                                          k::avx512::sgemm_avx512, k::avx512::sgemm_avx512_rows,
                                          &avx512_wide, 640};
  if (c == Capability::avx512) return avx512;
  if (c == Capability::avx2) return avx2;
#endif
  (void)c;
  return ref;
}

template <>
const GemmBlocking<double>& gemm_blocking<double>(Capability c) {
  static const GemmBlocking<double> ref{k::ref::DMR, k::ref::DNR, 512, 256, 256, k::ref::dgemm_ref};
#ifdef FASTBP_X86_KERNELS
  static const GemmBlocking<double> avx2{k::avx2::DMR, k::avx2::DNR, 3072, 256, 384,
                                         k::avx2::dgemm_avx2};
  static const GemmBlocking<double> avx512_wide{k::avx512::WDMR, k::avx512::WDNR, 3072, 256, 384,
                                                k::avx512::dgemm_avx512_wide,
                                                k::avx512::dgemm_avx512_wide_rows, nullptr, 512};
  static const GemmBlocking<double> avx512{k::avx512::DMR, k::avx512::DNR, 3072, 256, 384,
                                           k::avx512::dgemm_avx512, k::avx512::dgemm_avx512_rows,
                                           &avx512_wide, 320};
  if (c == Capability::avx512) return avx512;
  if (c == Capability::avx2) return avx2;
#endif
  (void)c;
  return ref;
}

template <>
kernels::bias_rows_fn<float> bias_rows_kernel<float>() {
  return for_active_path(&k::ref::sbias_rows, FASTBP_X86(k::avx2::sbias_rows),
                         FASTBP_X86(k::avx512::sbias_rows));
}
template <>
kernels::bias_rows_fn<double> bias_rows_kernel<double>() {
  return for_active_path(&k::ref::dbias_rows, FASTBP_X86(k::avx2::dbias_rows),
                         FASTBP_X86(k::avx512::dbias_rows));
}

template <>
kernels::transpose_fn<float> transpose_kernel<float>() {
  return for_active_path(&k::ref::stranspose, FASTBP_X86(k::avx2::stranspose),
                         FASTBP_X86(k::avx512::stranspose));
}
template <>
kernels::transpose_fn<double> transpose_kernel<double>() {
  return for_active_path(&k::ref::dtranspose, FASTBP_X86(k::avx2::dtranspose),
                         FASTBP_X86(k::avx512::dtranspose));
}

namespace {
int64_t rows_padded(int64_t M, int64_t mr) { return (M + mr - 1) / mr * mr; }
}  // namespace

template <typename T>
const GemmBlocking<T>& gemm_blocking_for_rows(Capability c, int64_t M) {
  const GemmBlocking<T>& main = gemm_blocking<T>(c);
  const GemmBlocking<T>* wide = main.wide;
  if (wide && M > 0 && rows_padded(M, wide->mr) < rows_padded(M, main.mr)) return *wide;
  return main;
}
template const GemmBlocking<float>& gemm_blocking_for_rows<float>(Capability, int64_t);
template const GemmBlocking<double>& gemm_blocking_for_rows<double>(Capability, int64_t);

}  // namespace fastbp
