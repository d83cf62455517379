// Depthwise convolution kernels: one signature set for every ISA. Contract: README.md.
#pragma once
#include <cstdint>

namespace fastbp::kernels {

// row, wgrad and xgrad run over a flat run of n outputs i; tap t reads (or writes) src at
// off[t] + i.
//   row:   dst[i] = init + sum_t w[t] * src[off[t] + i], then with relu negatives to zero
//          (NaN and -0.0 kept)                                        (forward)
//   rows:  row on each of `rows` rows: row r reads src + r*src_pitch and writes n outputs at
//          dst + r*dst_pitch, the same values as row's       (forward, straight into y)
//   wgrad: acc[t] += sum_i dy[i] * src[off[t] + i]                    (weight gradient)
//   xgrad: dst[off[t] + i] += w[t] * dy[i], taps in order             (input gradient)
// `row` (and each row of `rows`) takes any n >= 1 and writes only dst[0, n); it may read src
// up to off[t] + max(n, L) (L = kDepthwiseRun<T>: 64 bytes, the widest vector of any ISA's
// kernels). For wgrad and xgrad n is a multiple of L: the caller pads every buffer so that the
// indices up to there are valid, dy past the real outputs being zero. The sum of wgrad's lanes
// follows the ISA's vector width, so its bits may differ between paths (as the GEMM's do).
template <typename T>
constexpr int64_t kDepthwiseRun = 64 / sizeof(T);
template <typename T>
struct DepthwiseKernels {
  void (*row)(const T* src, const int64_t* off, const T* w, int64_t taps, T init, bool relu,
              T* dst, int64_t n);
  void (*rows)(const T* src, int64_t src_pitch, const int64_t* off, const T* w, int64_t taps,
               T init, bool relu, T* dst, int64_t dst_pitch, int64_t n, int64_t rows);
  void (*wgrad)(const T* src, const int64_t* off, int64_t taps, const T* dy, int64_t n, T* acc);
  void (*xgrad)(T* dst, const int64_t* off, const T* w, int64_t taps, const T* dy, int64_t n);
};

#define FASTBP_DECLARE_DEPTHWISE(isa)                    \
  namespace isa {                                        \
  extern const DepthwiseKernels<float> sdepthwise;       \
  extern const DepthwiseKernels<double> ddepthwise;      \
  }
FASTBP_DECLARE_DEPTHWISE(ref)
FASTBP_DECLARE_DEPTHWISE(avx2)
FASTBP_DECLARE_DEPTHWISE(avx512)
#undef FASTBP_DECLARE_DEPTHWISE

}  // namespace fastbp::kernels
