// Per-channel kernels of batch normalization on an (N, C, M) array: the statistics and gradient
// sums over N and M for each channel C, and the per-channel affine maps that use them. Sums run
// in double, each channel in one fixed order, so results do not depend on the thread count.
#pragma once
#include <cstdint>

namespace fastbp {

struct ChannelShape {
  int64_t N, C, M;  // element (n, c, m) at (n * C + c) * M + m
};

// mean[c] = sum x / (N M), var[c] = sum (x - mean[c])^2 / (N M): two passes, in double.
template <typename T>
void channel_moments(const ChannelShape& s, const T* x, double* mean, double* var);

// out = (x - center[c]) * scale[c] + shift[c] (shift may be null: 0), and when x_hat is not
// null also x_hat = (x - center[c]) * inv_std[c], in double: a channel far from zero loses no
// digits to the subtraction.
template <typename T>
void channel_normalize(const ChannelShape& s, const T* x, const double* center, const T* scale,
                       const T* shift, const T* inv_std, T* out, T* x_hat);

// sum_g[c] = sum g, and when x_hat is not null sum_gx[c] = sum g * x_hat, in double.
template <typename T>
void channel_grad_sums(const ChannelShape& s, const T* g, const T* x_hat, double* sum_g,
                       double* sum_gx);

// gx = g * a[c] - (x_hat * c[c] + b[c]); with x_hat null, gx = g * a[c].
template <typename T>
void channel_grad_input(const ChannelShape& s, const T* g, const T* x_hat, const T* a,
                        const T* b, const T* c, T* gx);

}  // namespace fastbp
