#include "norm.h"

#include "lane_sum.h"
#include "parallel.h"

namespace fastbp {
namespace {

// Channels in parallel once there is enough data to pay for starting threads. Each channel is
// computed by one thread, in one order.
template <class F>
void over_channels(const ChannelShape& s, F&& f) {
  parallel_for(s.C, s.N * s.C * s.M >= (int64_t(1) << 16) ? max_threads() : 1,
               [&](int64_t c, int) { f(c); });
}

}  // namespace

template <typename T>
void channel_moments(const ChannelShape& s, const T* x, double* mean, double* var) {
  const double count = static_cast<double>(s.N * s.M);
  over_channels(s, [&](int64_t c) {
    LaneSum sum;
    for (int64_t n = 0; n < s.N; ++n) {
      const T* row = x + (n * s.C + c) * s.M;
      sum.add(s.M, [&](int64_t i) { return static_cast<double>(row[i]); });
    }
    const double mu = count > 0 ? sum.total() / count : 0.0;
    LaneSum sq;
    for (int64_t n = 0; n < s.N; ++n) {
      const T* row = x + (n * s.C + c) * s.M;
      sq.add(s.M, [&](int64_t i) {
        const double d = static_cast<double>(row[i]) - mu;
        return d * d;
      });
    }
    mean[c] = mu;
    var[c] = count > 0 ? sq.total() / count : 0.0;
  });
}

template <typename T>
void channel_normalize(const ChannelShape& s, const T* x, const double* center, const T* scale,
                       const T* shift, const T* inv_std, T* out, T* x_hat) {
  over_channels(s, [&](int64_t c) {
    const double m = center[c], a = scale[c], b = shift ? shift[c] : 0.0;
    const double r = x_hat ? inv_std[c] : 0.0;
    for (int64_t n = 0; n < s.N; ++n) {
      const int64_t at = (n * s.C + c) * s.M;
      const T* xr = x + at;
      T* o = out + at;
      for (int64_t i = 0; i < s.M; ++i) o[i] = static_cast<T>((xr[i] - m) * a + b);
      if (x_hat) {
        T* h = x_hat + at;
        for (int64_t i = 0; i < s.M; ++i) h[i] = static_cast<T>((xr[i] - m) * r);
      }
    }
  });
}

template <typename T>
void channel_grad_sums(const ChannelShape& s, const T* g, const T* x_hat, double* sum_g,
                       double* sum_gx) {
  over_channels(s, [&](int64_t c) {
    LaneSum sg, sgx;
    for (int64_t n = 0; n < s.N; ++n) {
      const int64_t at = (n * s.C + c) * s.M;
      const T* gr = g + at;
      sg.add(s.M, [&](int64_t i) { return static_cast<double>(gr[i]); });
      if (x_hat) {
        const T* h = x_hat + at;
        sgx.add(s.M, [&](int64_t i) {
          return static_cast<double>(gr[i]) * static_cast<double>(h[i]);
        });
      }
    }
    sum_g[c] = sg.total();
    if (x_hat) sum_gx[c] = sgx.total();
  });
}

template <typename T>
void channel_grad_input(const ChannelShape& s, const T* g, const T* x_hat, const T* a,
                        const T* b, const T* c, T* gx) {
  over_channels(s, [&](int64_t ch) {
    const T ac = a[ch], bc = x_hat ? b[ch] : T(0), cc = x_hat ? c[ch] : T(0);
    for (int64_t n = 0; n < s.N; ++n) {
      const int64_t at = (n * s.C + ch) * s.M;
      const T* gr = g + at;
      T* o = gx + at;
      if (x_hat) {
        const T* h = x_hat + at;
        for (int64_t i = 0; i < s.M; ++i) o[i] = gr[i] * ac - (h[i] * cc + bc);
      } else {
        for (int64_t i = 0; i < s.M; ++i) o[i] = gr[i] * ac;
      }
    }
  });
}

#define FASTBP_INSTANTIATE(T)                                                                 \
  template void channel_moments<T>(const ChannelShape&, const T*, double*, double*);          \
  template void channel_normalize<T>(const ChannelShape&, const T*, const double*, const T*,  \
                                     const T*, const T*, T*, T*);                             \
  template void channel_grad_sums<T>(const ChannelShape&, const T*, const T*, double*,        \
                                     double*);                                                \
  template void channel_grad_input<T>(const ChannelShape&, const T*, const T*, const T*,      \
                                      const T*, const T*, T*);
FASTBP_INSTANTIATE(float)
FASTBP_INSTANTIATE(double)
#undef FASTBP_INSTANTIATE

}  // namespace fastbp
