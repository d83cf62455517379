#include "conv_depthwise.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "aligned_buffer.h"
#include "dispatch.h"
#include "gemm/driver.h"
#include "kernels/depthwise.h"
#include "lane_sum.h"
#include "parallel.h"

// Each input plane is copied once into a zero-padded buffer split into stride phases: element
// (r, c) of the padded plane goes to phase (r % sh, c % sw) at row r / sh, column c / sw. Tap
// (ki, kj) of output pixel (oh, ow) then sits at a fixed offset from oh * Wq + ow, whatever the
// stride and dilation, so the outputs of a whole plane form one flat run of Ho rows of pitch Wq
// (columns ow >= Wo are computed and dropped) and every kernel is a plain vector loop.

namespace fastbp {
namespace {

template <typename T>
const kernels::DepthwiseKernels<T>& active_kernels();
template <>
const kernels::DepthwiseKernels<float>& active_kernels<float>() {
  namespace k = kernels;
  return *for_active_path(&k::ref::sdepthwise, FASTBP_X86(k::avx2::sdepthwise),
                          FASTBP_X86(k::avx512::sdepthwise));
}
template <>
const kernels::DepthwiseKernels<double>& active_kernels<double>() {
  namespace k = kernels;
  return *for_active_path(&k::ref::ddepthwise, FASTBP_X86(k::avx2::ddepthwise),
                          FASTBP_X86(k::avx512::ddepthwise));
}

struct PhasePlane {
  int64_t Hp, Wp, Hq, Wq;  // padded plane, one phase
  int64_t run;             // flat outputs per plane, (Ho - 1) * Wq + Wo, rounded up to vectors
  int64_t size;            // all phases, plus zeros for the taps of the rounded-up outputs
  std::vector<int64_t> off;      // per tap (ki, kj): offset from output pixel oh * Wq + ow

  explicit PhasePlane(const ConvParams& p) {
    Hp = std::max((p.Ho - 1) * p.sh + (p.kh - 1) * p.dh + 1, p.ph + p.H);
    Wp = std::max((p.Wo - 1) * p.sw + (p.kw - 1) * p.dw + 1, p.pw + p.W);
    Hq = ceil_div(Hp, p.sh);
    Wq = ceil_div(Wp, p.sw);
    run = round_up((p.Ho - 1) * Wq + p.Wo, 64);  // a multiple of the vector for float and double
    size = p.sh * p.sw * Hq * Wq + (run - ((p.Ho - 1) * Wq + p.Wo));
    for (int64_t ki = 0; ki < p.kh; ++ki)
      for (int64_t kj = 0; kj < p.kw; ++kj) {
        const int64_t r = ki * p.dh, c = kj * p.dw;
        off.push_back(((r % p.sh) * p.sw + c % p.sw) * Hq * Wq + (r / p.sh) * Wq + c / p.sw);
      }
  }
  // where element (r, c) of the padded plane lives
  int64_t at(const ConvParams& p, int64_t r, int64_t c) const {
    return ((r % p.sh) * p.sw + c % p.sw) * Hq * Wq + (r / p.sh) * Wq + c / p.sw;
  }
};

// The padded, phase-split copy of one H x W plane.
template <typename T>
void split_plane(const ConvParams& p, const PhasePlane& L, const T* x, T* dst) {
  std::fill(dst, dst + L.size, T(0));
  for (int64_t ih = 0; ih < p.H; ++ih) {
    const T* src = x + ih * p.W;
    for (int64_t cp = 0; cp < p.sw; ++cp) {  // input columns iw with (iw + pw) % sw == cp
      const int64_t first = ((cp - p.pw) % p.sw + p.sw) % p.sw;
      if (first >= p.W) continue;
      T* d = dst + L.at(p, ih + p.ph, first + p.pw);
      for (int64_t iw = first; iw < p.W; iw += p.sw) *d++ = src[iw];
    }
  }
}

// The inverse for gradients: dx[ih][iw] = grad at padded (ih + ph, iw + pw).
template <typename T>
void unsplit_plane(const ConvParams& p, const PhasePlane& L, const T* grad, T* dx) {
  for (int64_t ih = 0; ih < p.H; ++ih) {
    T* dst = dx + ih * p.W;
    for (int64_t cp = 0; cp < p.sw; ++cp) {
      const int64_t first = ((cp - p.pw) % p.sw + p.sw) % p.sw;
      if (first >= p.W) continue;
      const T* s = grad + L.at(p, ih + p.ph, first + p.pw);
      for (int64_t iw = first; iw < p.W; iw += p.sw) dst[iw] = *s++;
    }
  }
}

// One output plane (Ho x Wo) laid out on the flat grid of pitch Wq, dropped columns zero.
template <typename T>
void spread_plane(const ConvParams& p, const PhasePlane& L, const T* y, T* flat) {
  std::fill(flat, flat + L.run, T(0));
  for (int64_t oh = 0; oh < p.Ho; ++oh)
    for (int64_t ow = 0; ow < p.Wo; ++ow) flat[oh * L.Wq + ow] = y[oh * p.Wo + ow];
}

// The flat run also multiplies zero dY by the inputs under dropped columns; that is exact
// unless an input or weight there is inf or NaN (0 * inf = NaN). A plane whose flat result is
// not finite is therefore done again over the real outputs only, so non-finite values
// propagate exactly as in the definition.
template <typename T>
bool all_finite(const T* a, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(a[i])) return false;
  return true;
}

template <typename T>
void wgrad_exact(const ConvParams& p, const PhasePlane& L, const T* plane, const T* dy,
                 T* part) {
  for (size_t t = 0; t < L.off.size(); ++t) {
    T sum = 0;
    for (int64_t oh = 0; oh < p.Ho; ++oh)
      for (int64_t ow = 0; ow < p.Wo; ++ow)
        sum += dy[oh * p.Wo + ow] * plane[L.off[t] + oh * L.Wq + ow];
    part[t] = sum;
  }
}

template <typename T>
void xgrad_exact(const ConvParams& p, const PhasePlane& L, const T* w, const T* dy, T* grad) {
  for (size_t t = 0; t < L.off.size(); ++t)
    for (int64_t oh = 0; oh < p.Ho; ++oh)
      for (int64_t ow = 0; ow < p.Wo; ++ow)
        grad[L.off[t] + oh * L.Wq + ow] += w[t] * dy[oh * p.Wo + ow];
}

// Threads over `items` planes when the work is worth a parallel region.
int plane_threads(const ConvParams& p) {
  const double flops = 2.0 * p.N * p.O * p.Ho * p.Wo * p.kh * p.kw;
  return flops < kGemmMinParallelFlops ? 1 : max_threads();
}

}  // namespace

// With several output channels per input channel, a GEMM (M = those channels) shares each input
// load among them; the direct path pays a load per multiply-add, so it is for few.
bool depthwise_applies(const ConvParams& p) {
  return p.C == p.groups && (p.groups > 1 || p.O < 8);
}

template <typename T>
void depthwise_forward(const ConvParams& p, const T* x, const T* w, const T* bias, T* y,
                       bool relu) {
  const auto& k = active_kernels<T>();
  const PhasePlane L(p);
  const int64_t Og = p.O / p.groups, taps = p.kh * p.kw, P = p.Ho * p.Wo;
  const int nt = plane_threads(p);
  const int64_t work = round_up(L.size, 16) + round_up(L.run, 16);
  AlignedBuffer<T> buffers(std::min<int64_t>(nt, p.N * p.C) * work);
  parallel_for(p.N * p.C, nt, [&](int64_t item, int tid) {
    const int64_t n = item / p.C, c = item % p.C;
    T* plane = buffers.data() + tid * work;
    T* out = plane + round_up(L.size, 16);
    split_plane(p, L, x + (n * p.C + c) * p.H * p.W, plane);
    for (int64_t j = 0; j < Og; ++j) {
      const int64_t o = c * Og + j;
      const T init = bias ? bias[o] : T(0);
      T* dst = y + (n * p.O + o) * P;
      // relu in the kernel, on each vector before it is stored (a pass of its own cost dw-3x3
      // 30% more than bias alone)
      if (p.Wo >= kernels::kDepthwiseRun<T>) {  // straight into y, row by row in one call
        k.rows(plane, L.Wq, L.off.data(), w + o * taps, taps, init, relu, dst, p.Wo, p.Wo, p.Ho);
      } else {
        k.row(plane, L.off.data(), w + o * taps, taps, init, relu, out, L.run);  // all rows
        for (int64_t oh = 0; oh < p.Ho; ++oh)
          for (int64_t ow = 0; ow < p.Wo; ++ow) dst[oh * p.Wo + ow] = out[oh * L.Wq + ow];
      }
    }
  });
}

// dX, dW and dB in one pass over the (image, channel) planes, so each dY plane is read (and
// spread) once for all three. dW is per output channel the sum over images of each tap's dot
// product with dY, dB the sum over images of each dY plane's sum, both in double and in image
// order: a chunk of images at a time (its per-image sums within the workspace limit) runs in
// parallel, then its sums are added in order.
template <typename T>
void depthwise_backward(const ConvParams& p, const T* dy, const T* x, const T* w, T* dx, T* dw,
                        T* db) {
  if (!dx && !dw) return;
  const PhasePlane L(p);
  const auto& k = active_kernels<T>();
  const int64_t Og = p.O / p.groups, taps = p.kh * p.kw, P = p.Ho * p.Wo;
  const int nt = plane_threads(p);
  const int64_t plane_size = round_up(L.size, 16);
  // a thread's buffers: dX's padded plane, x's padded plane (for dW), the spread dY plane
  const int64_t grad_size = dx ? plane_size : 0, x_size = dw ? plane_size : 0;
  const int64_t work = grad_size + x_size + round_up(L.run, 16);
  AlignedBuffer<T> buffers(std::min<int64_t>(nt, p.N * p.C) * work);
  const int64_t image_parts = dw ? p.O * taps : 0, image_sums = db ? p.O : 0;
  const int64_t per_image = image_parts * sizeof(T) + image_sums * sizeof(double);
  const int64_t nb =
      per_image ? std::clamp<int64_t>(static_cast<int64_t>(workspace_limit()) / per_image, 1,
                                      std::max<int64_t>(p.N, 1))
                : p.N;
  AlignedBuffer<T> parts(nb * image_parts);
  AlignedBuffer<double> sums(nb * image_sums);
  std::vector<double> total(image_parts, 0.0), bias_total(image_sums, 0.0);
  for (int64_t n0 = 0; n0 < p.N; n0 += nb) {
    const int64_t count = std::min(nb, p.N - n0);
    parallel_for(count * p.C, nt, [&](int64_t item, int tid) {
      const int64_t n = n0 + item / p.C, c = item % p.C;
      T* grad = buffers.data() + tid * work;
      T* plane = grad + grad_size;
      T* flat = plane + x_size;
      if (dx) std::fill(grad, grad + L.size, T(0));
      if (dw) split_plane(p, L, x + (n * p.C + c) * p.H * p.W, plane);
      for (int64_t j = 0; j < Og; ++j) {
        const int64_t o = c * Og + j;
        const T* dyo = dy + (n * p.O + o) * P;
        spread_plane(p, L, dyo, flat);
        if (dx) {
          if (all_finite(w + o * taps, taps))
            k.xgrad(grad, L.off.data(), w + o * taps, taps, flat, L.run);
          else
            xgrad_exact(p, L, w + o * taps, dyo, grad);
        }
        if (db) sums.data()[(n - n0) * p.O + o] = lane_sum(dyo, P);
        if (dw) {
          T* part = parts.data() + ((n - n0) * p.O + o) * taps;
          std::fill(part, part + taps, T(0));
          k.wgrad(plane, L.off.data(), taps, flat, L.run, part);
          if (!all_finite(part, taps)) wgrad_exact(p, L, plane, dyo, part);
        }
      }
      if (dx) unsplit_plane(p, L, grad, dx + (n * p.C + c) * p.H * p.W);
    });
    for (int64_t b = 0; b < count; ++b) {
      for (int64_t i = 0; i < image_parts; ++i) total[i] += parts.data()[b * image_parts + i];
      for (int64_t o = 0; o < image_sums; ++o) bias_total[o] += sums.data()[b * image_sums + o];
    }
  }
  for (int64_t i = 0; i < image_parts; ++i) dw[i] = static_cast<T>(total[i]);
  for (int64_t o = 0; o < image_sums; ++o) db[o] = static_cast<T>(bias_total[o]);
}

template void depthwise_forward<float>(const ConvParams&, const float*, const float*,
                                       const float*, float*, bool);
template void depthwise_forward<double>(const ConvParams&, const double*, const double*,
                                        const double*, double*, bool);
template void depthwise_backward<float>(const ConvParams&, const float*, const float*,
                                        const float*, float*, float*, float*);
template void depthwise_backward<double>(const ConvParams&, const double*, const double*,
                                         const double*, double*, double*, double*);

}  // namespace fastbp
