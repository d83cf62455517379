#include "conv.h"

#include <algorithm>
#include <vector>

#include "aligned_buffer.h"
#include "gemm/gemm.h"
#include "im2col.h"
#include "parallel.h"

namespace fastbp {
namespace {

struct GroupShape {
  int64_t Cg, Og, KK, P;  // channels in/out per group, rows of col (Cg*kh*kw), output pixels
  ConvGeometry geom;
  bool pointwise;  // 1x1, stride 1, no padding: col is the input itself
};

GroupShape group_shape(const ConvParams& p) {
  GroupShape s;
  s.Cg = p.C / p.groups;
  s.Og = p.O / p.groups;
  s.KK = s.Cg * p.kh * p.kw;
  s.P = p.Ho * p.Wo;
  s.geom = ConvGeometry{s.Cg, p.H, p.W, p.kh, p.kw, p.sh, p.sw, p.ph, p.pw, p.dh, p.dw, p.Ho, p.Wo};
  s.pointwise = p.kh == 1 && p.kw == 1 && p.sh == 1 && p.sw == 1 && p.ph == 0 && p.pw == 0 &&
                p.Ho == p.H && p.Wo == p.W;
  return s;
}

// Work over n independent items: with at least as many items as threads, one item per thread
// and single-threaded GEMMs; otherwise items in turn and all threads inside each GEMM.
struct Split {
  int outer, inner;
};
Split split_threads(int64_t items) {
  const int nt = max_threads();
  if (items >= nt) return {nt, 1};
  return {1, nt};
}

}  // namespace

template <typename T>
void conv2d_forward(const ConvParams& p, const T* x, const T* w, const T* bias, T* y) {
  const GroupShape s = group_shape(p);
  const int64_t items = p.N * p.groups;
  const Split th = split_threads(items);
  AlignedBuffer<T> cols(s.pointwise ? 0 : th.outer * s.KK * s.P);
  parallel_for(items, th.outer, [&](int64_t item, int tid) {
    const int64_t n = item / p.groups, g = item % p.groups;
    const T* xg = x + (n * p.C + g * s.Cg) * p.H * p.W;
    T* yg = y + (n * p.O + g * s.Og) * s.P;
    const T* col = xg;
    if (!s.pointwise) {
      T* c = cols.data() + tid * s.KK * s.P;
      im2col_2d(s.geom, xg, c);
      col = c;
    }
    T beta = T(0);
    if (bias) {
      for (int64_t o = 0; o < s.Og; ++o) std::fill(yg + o * s.P, yg + (o + 1) * s.P, bias[g * s.Og + o]);
      beta = T(1);
    }
    gemm(false, false, s.Og, s.P, s.KK, T(1), w + g * s.Og * s.KK, s.KK, col, s.P, beta, yg, s.P,
         th.inner);
  });
}

template <typename T>
static void conv2d_backward_input(const ConvParams& p, const GroupShape& s, const T* dy,
                                  const T* w, T* dx) {
  const int64_t items = p.N * p.groups;
  const Split th = split_threads(items);
  AlignedBuffer<T> cols(s.pointwise ? 0 : th.outer * s.KK * s.P);
  parallel_for(items, th.outer, [&](int64_t item, int tid) {
    const int64_t n = item / p.groups, g = item % p.groups;
    const T* dyg = dy + (n * p.O + g * s.Og) * s.P;
    T* dxg = dx + (n * p.C + g * s.Cg) * p.H * p.W;
    const T* wg = w + g * s.Og * s.KK;
    if (s.pointwise) {  // dX = W^T dY directly
      gemm(true, false, s.KK, s.P, s.Og, T(1), wg, s.KK, dyg, s.P, T(0), dxg, s.P, th.inner);
      return;
    }
    T* col = cols.data() + tid * s.KK * s.P;
    gemm(true, false, s.KK, s.P, s.Og, T(1), wg, s.KK, dyg, s.P, T(0), col, s.P, th.inner);
    std::fill(dxg, dxg + s.Cg * p.H * p.W, T(0));
    col2im_2d(s.geom, col, dxg);
  });
}

// dW = sum over images of dY_n col_n^T. Images are summed into a fixed number of partial
// results (never depending on the thread count), which are then added in order.
template <typename T>
static void conv2d_backward_weight(const ConvParams& p, const GroupShape& s, const T* dy,
                                   const T* x, T* dw) {
  const int64_t wsize = p.O * s.KK;
  const int64_t n_part = std::min<int64_t>(p.N, 8);
  if (n_part == 0) {
    std::fill(dw, dw + wsize, T(0));
    return;
  }
  const Split th = split_threads(n_part);
  AlignedBuffer<T> partials(n_part > 1 ? n_part * wsize : 0);
  AlignedBuffer<T> cols(s.pointwise ? 0 : th.outer * s.KK * s.P);
  parallel_for(n_part, th.outer, [&](int64_t q, int tid) {
    T* part = n_part > 1 ? partials.data() + q * wsize : dw;
    for (int64_t n = q; n < p.N; n += n_part) {
      const T beta = n == q ? T(0) : T(1);
      for (int64_t g = 0; g < p.groups; ++g) {
        const T* xg = x + (n * p.C + g * s.Cg) * p.H * p.W;
        const T* dyg = dy + (n * p.O + g * s.Og) * s.P;
        const T* col = xg;
        if (!s.pointwise) {
          T* c = cols.data() + tid * s.KK * s.P;
          im2col_2d(s.geom, xg, c);
          col = c;
        }
        gemm(false, true, s.Og, s.KK, s.P, T(1), dyg, s.P, col, s.P, beta, part + g * s.Og * s.KK,
             s.KK, th.inner);
      }
    }
  });
  if (n_part > 1) {
    const int64_t chunk = 4096;
    parallel_for((wsize + chunk - 1) / chunk, max_threads(), [&](int64_t c, int) {
      const int64_t lo = c * chunk, hi = std::min(wsize, lo + chunk);
      for (int64_t i = lo; i < hi; ++i) {
        T acc = partials.data()[i];
        for (int64_t q = 1; q < n_part; ++q) acc += partials.data()[q * wsize + i];
        dw[i] = acc;
      }
    });
  }
}

// db[o] = sum over n and pixels of dY, accumulated in double in a fixed order.
template <typename T>
static void conv2d_backward_bias(const ConvParams& p, const T* dy, T* db) {
  const int64_t P = p.Ho * p.Wo;
  parallel_for(p.O, P * p.N >= 32768 ? max_threads() : 1, [&](int64_t o, int) {
    double acc = 0.0;
    for (int64_t n = 0; n < p.N; ++n) {
      const T* row = dy + (n * p.O + o) * P;
      double part = 0.0;
      for (int64_t i = 0; i < P; ++i) part += row[i];
      acc += part;
    }
    db[o] = static_cast<T>(acc);
  });
}

template <typename T>
void conv2d_backward(const ConvParams& p, const T* dy, const T* x, const T* w, T* dx, T* dw,
                     T* db) {
  const GroupShape s = group_shape(p);
  if (dx) conv2d_backward_input(p, s, dy, w, dx);
  if (dw) conv2d_backward_weight(p, s, dy, x, dw);
  if (db) conv2d_backward_bias(p, dy, db);
}

template void conv2d_forward<float>(const ConvParams&, const float*, const float*, const float*,
                                    float*);
template void conv2d_forward<double>(const ConvParams&, const double*, const double*,
                                     const double*, double*);
template void conv2d_backward<float>(const ConvParams&, const float*, const float*, const float*,
                                     float*, float*, float*);
template void conv2d_backward<double>(const ConvParams&, const double*, const double*,
                                      const double*, double*, double*, double*);

}  // namespace fastbp
