#include "blocking.h"

namespace fastbp {
namespace k = kernels;

// Chosen for 32 KiB L1d and 1 MiB L2 per core: mr*kc*sizeof(T) well inside L1,
// kc*nc*sizeof(T) about 3/4 of L2.
template <>
const GemmBlocking<float>& gemm_blocking<float>(Capability c) {
  static const GemmBlocking<float> ref{k::ref::SMR, k::ref::SNR, 512, 256, 512, k::ref::sgemm_ref};
#ifdef FASTBP_X86_KERNELS
  static const GemmBlocking<float> avx2{k::avx2::SMR, k::avx2::SNR, 3072, 384, 480,
                                        k::avx2::sgemm_avx2};
  static const GemmBlocking<float> avx512{k::avx512::SMR, k::avx512::SNR, 3072, 384, 480,
                                          k::avx512::sgemm_avx512};
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
  static const GemmBlocking<double> avx512{k::avx512::DMR, k::avx512::DNR, 3072, 256, 384,
                                           k::avx512::dgemm_avx512};
  if (c == Capability::avx512) return avx512;
  if (c == Capability::avx2) return avx2;
#endif
  (void)c;
  return ref;
}

}  // namespace fastbp
