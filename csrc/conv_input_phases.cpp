// dX of a strided convolution without col2im. Along one axis, with stride s and dilation 1,
// input position ih receives w[ki] dY[oh] wherever oh*s - p + ki = ih. Split ih by its phase
// r = (ih + p) mod s, ih = m*s + r - p: only taps ki = r + j*s reach it, from oh = m - j. So the
// phase is a stride-1 convolution of dY with the sub-kernel w[r + j*s] flipped (j counting
// down), padded by (taps - 1 - m0) before, where m0 is the phase's first m. The s*s phases
// together write every element of dX once; a phase no tap reaches is zero.
#include "conv_input_phases.h"

#include <algorithm>

#include "aligned_buffer.h"
#include "conv_pack.h"
#include "gemm/driver.h"
#include "parallel.h"

namespace fastbp {
namespace {

// One axis of one phase: taps r, r + s, ... below k, and the m range whose ih lies in [0, size).
struct PhaseAxis {
  int64_t taps, m0, count;
};
PhaseAxis phase_axis(int64_t r, int64_t k, int64_t s, int64_t pad, int64_t size) {
  PhaseAxis a;
  a.taps = r < k ? (k - 1 - r) / s + 1 : 0;
  a.m0 = pad > r ? ceil_div(pad - r, s) : 0;                // first m with m*s + r - pad >= 0
  const int64_t last = size - 1 + pad - r;                   // m*s <= last
  a.count = last < 0 ? 0 : std::max<int64_t>(0, last / s + 1 - a.m0);
  return a;
}

}  // namespace

template <typename T>
bool conv2d_backward_input_phases(const ConvParams& p, const T* dy, const T* w, T* dx) {
  const int64_t Cg = p.C / p.groups;
  if ((p.sh == 1 && p.sw == 1) || p.dh != 1 || p.dw != 1 || Cg < 8) return false;
  // every phase at least two taps along a strided axis: a 3x3 kernel of stride 2 would leave
  // 1x1 and 1x2 phases, whose GEMMs are too shallow to beat col2im (measured)
  if ((p.sh > 1 && p.kh < 2 * p.sh) || (p.sw > 1 && p.kw < 2 * p.sw)) return false;
  // every phase's padding before must be >= 0 (taps - 1 >= m0)
  for (int64_t r = 0; r < p.sh; ++r) {
    const PhaseAxis a = phase_axis(r, p.kh, p.sh, p.ph, p.H);
    if (a.taps > 0 && a.count > 0 && a.taps - 1 < a.m0) return false;
  }
  for (int64_t r = 0; r < p.sw; ++r) {
    const PhaseAxis a = phase_axis(r, p.kw, p.sw, p.pw, p.W);
    if (a.taps > 0 && a.count > 0 && a.taps - 1 < a.m0) return false;
  }
  // a phase's output is at most nh x nw per channel; images a chunk at a time under the
  // workspace limit
  const int64_t nh = ceil_div(p.H + p.ph, p.sh), nw = ceil_div(p.W + p.pw, p.sw);
  // (the phases' weights first: they count against it)
  AlignedBuffer<T> wp(p.O * Cg * ceil_div(p.kh, p.sh) * ceil_div(p.kw, p.sw));
  const int64_t budget = static_cast<int64_t>(workspace_budget() / sizeof(T));
  const int64_t chunk = std::clamp<int64_t>(budget / std::max<int64_t>(p.C * nh * nw, 1), 1,
                                            std::max<int64_t>(p.N, 1));
  AlignedBuffer<T> z(std::min(chunk, p.N) * p.C * nh * nw);
  for (int64_t rh = 0; rh < p.sh; ++rh)
    for (int64_t rw = 0; rw < p.sw; ++rw) {
      const PhaseAxis ah = phase_axis(rh, p.kh, p.sh, p.ph, p.H);
      const PhaseAxis aw = phase_axis(rw, p.kw, p.sw, p.pw, p.W);
      if (ah.count == 0 || aw.count == 0) continue;
      // dx positions of this phase: row (ah.m0 + i) * sh + rh - ph, column likewise
      auto scatter = [&](int64_t n0, int64_t count, const T* src) {
        const int nt = count * p.C * p.H * p.W >= 65536 ? max_threads() : 1;
        parallel_for(count * p.C, nt, [&](int64_t nc, int) {
          T* plane = dx + (n0 * p.C + nc) * p.H * p.W;
          for (int64_t i = 0; i < ah.count; ++i) {
            T* row = plane + ((ah.m0 + i) * p.sh + rh - p.ph) * p.W + aw.m0 * p.sw + rw - p.pw;
            const T* s = src ? src + (nc * ah.count + i) * aw.count : nullptr;
            for (int64_t j = 0; j < aw.count; ++j) row[j * p.sw] = s ? s[j] : T(0);
          }
        });
      };
      if (ah.taps == 0 || aw.taps == 0) {
        scatter(0, p.N, nullptr);
        continue;
      }
      const int64_t th = ah.taps, tw = aw.taps;
      swapped_flipped_weights(p, rh, rw, th, tw, w, wp.data());
      for (int64_t n0 = 0; n0 < p.N; n0 += chunk) {
        ConvParams t{};
        t.N = std::min(chunk, p.N - n0); t.C = p.O; t.H = p.Ho; t.W = p.Wo; t.O = p.C;
        t.kh = th; t.kw = tw; t.sh = t.sw = t.dh = t.dw = 1;
        t.ph = th - 1 - ah.m0; t.pw = tw - 1 - aw.m0;
        t.groups = p.groups; t.Ho = ah.count; t.Wo = aw.count;
        conv2d_forward(t, dy + n0 * p.O * p.Ho * p.Wo, wp.data(), static_cast<const T*>(nullptr),
                       z.data());
        scatter(n0, t.N, z.data());
      }
    }
  return true;
}

template bool conv2d_backward_input_phases<float>(const ConvParams&, const float*, const float*,
                                                  float*);
template bool conv2d_backward_input_phases<double>(const ConvParams&, const double*,
                                                   const double*, double*);

}  // namespace fastbp
