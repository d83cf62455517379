// Portable bodies of the Winograd transforms (winograd.h), vectorised by the including file's
// ISA flags, one lane at a time through the 1-d transforms (winograd_transforms.h, which the
// including file includes first). Include only inside an anonymous namespace, as
// generic_ukernel.h.
#pragma once
#include <cstdint>

template <typename T, int R>
void generic_winograd_input(const T* __restrict rows, int64_t pitch, int64_t half, int64_t len,
                            int64_t channels, int64_t rows_step, T* __restrict dst,
                            int64_t dst_step, int64_t e_stride) {
  constexpr int n = R + 1;
  using W = fastbp::kernels::Winograd1d<fastbp::kernels::Scalar<T>, R>;
  for (int64_t k = 0; k < channels; ++k, rows += rows_step, dst += dst_step)
    for (int64_t q = 0; q < len; ++q) {
      T e[n][n];  // row i of the tile times B
      for (int i = 0; i < n; ++i) {
        const T* E = rows + i * pitch + q;
        T d[n];
        for (int j = 0; j < n; ++j) d[j] = E[(j % 2) * half + j / 2];
        W::input(d, e[i]);
      }
      for (int b = 0; b < n; ++b) {
        T col[n], v[n];
        for (int i = 0; i < n; ++i) col[i] = e[i][b];
        W::input(col, v);
        for (int a = 0; a < n; ++a) dst[(n * a + b) * e_stride + q] = v[a];
      }
    }
}

template <typename T, int R>
bool generic_winograd_output(const T* __restrict m, int64_t e_stride, int64_t len,
                             int64_t channels, int64_t m_step, const T* bias, bool relu,
                             T* __restrict y, int64_t y_step, bool two_rows, int64_t pitch,
                             int64_t cols, int64_t step) {
  constexpr int n = R + 1;
  using W = fastbp::kernels::Winograd1d<fastbp::kernels::Scalar<T>, R>;
  T finite = T(0);  // stays 0 while every v - v is 0; NaN from an inf or NaN on
  for (int64_t k = 0; k < channels; ++k, m += m_step, y += y_step) {
    const T add = bias ? bias[k] : T(0);
    for (int64_t q = 0; q < len; ++q) {
      T f[2][n];  // row a of M times A: f[b][a] for output column b
      for (int a = 0; a < n; ++a) {
        T row[n], out[2];
        for (int b = 0; b < n; ++b) row[b] = m[(n * a + b) * e_stride + q];
        W::output(row, out);
        f[0][a] = out[0];
        f[1][a] = out[1];
      }
      for (int b = 0; b < 2 && 2 * q + b < cols; ++b) {
        T v[2];
        W::output(f[b], v);
        T v0 = v[0] + add, v1 = v[1] + add;
        finite += (v0 - v0) + (v1 - v1);
        if (relu) {
          v0 = v0 < T(0) ? T(0) : v0;
          v1 = v1 < T(0) ? T(0) : v1;
        }
        y[(2 * q + b) * step] = v0;
        if (two_rows) y[pitch + (2 * q + b) * step] = v1;
      }
    }
  }
  return finite == T(0);
}

template <typename T, int R>
void generic_winograd_weight(const T* __restrict g, int64_t C, int64_t lanes, T* __restrict u,
                             int64_t e_stride) {
  constexpr int n = R + 1;
  using W = fastbp::kernels::Winograd1d<fastbp::kernels::Scalar<T>, R>;
  for (int64_t c = 0; c < C; ++c)
    for (int64_t l = 0; l < lanes; ++l) {
      T t[R][n];  // g Gᵀ
      for (int i = 0; i < R; ++i) {
        T k[R];
        for (int j = 0; j < R; ++j) k[j] = g[(c * R * R + R * i + j) * lanes + l];
        W::weight(k, t[i]);
      }
      T* d = u + c * lanes + l;
      for (int b = 0; b < n; ++b) {
        T col[R], v[n];
        for (int i = 0; i < R; ++i) col[i] = t[i][b];
        W::weight(col, v);
        for (int a = 0; a < n; ++a) d[(n * a + b) * e_stride] = v[a];
      }
    }
}

// The channels-last transforms: each tile's In x In inputs to n x n elements, along rows, then
// along columns: Bᵀ of n x n inputs (input_cl), or G₂ of 2x2 output gradients (grad_cl).
template <typename T, int R, bool Grad>
void generic_winograd_transform_cl(const T* __restrict src, int64_t row, int64_t pixel,
                                   int64_t tile_step, int64_t len, int64_t lanes,
                                   T* __restrict dst, int64_t dst_step, int64_t e_stride) {
  constexpr int n = R + 1, In = Grad ? 2 : n;
  using W = fastbp::kernels::Winograd1d<fastbp::kernels::Scalar<T>, R>;
  const auto transform = [](const T* d, T* v) {
    if constexpr (Grad) W::grad(d, v);
    else W::input(d, v);
  };
  for (int64_t q = 0; q < len; ++q)
    for (int64_t l = 0; l < lanes; ++l) {
      const T* s = src + q * tile_step + l;
      T e[In][n];  // row i of the tile, transformed
      for (int i = 0; i < In; ++i) {
        T d[In];
        for (int j = 0; j < In; ++j) d[j] = s[i * row + j * pixel];
        transform(d, e[i]);
      }
      for (int b = 0; b < n; ++b) {
        T col[In], v[n];
        for (int i = 0; i < In; ++i) col[i] = e[i][b];
        transform(col, v);
        for (int a = 0; a < n; ++a) dst[(n * a + b) * e_stride + q * dst_step + l] = v[a];
      }
    }
}

template <typename T, int R>
void generic_winograd_taps(const T* __restrict m, int64_t e_stride, int64_t lanes,
                           T* __restrict out, int64_t out_step) {
  constexpr int n = R + 1;
  using W = fastbp::kernels::Winograd1d<fastbp::kernels::Scalar<T>, R>;
  for (int64_t l = 0; l < lanes; ++l) {
    T t[n][R];  // row a of M times A_r
    for (int a = 0; a < n; ++a) {
      T row[n];
      for (int b = 0; b < n; ++b) row[b] = m[(n * a + b) * e_stride + l];
      W::weight_grad(row, t[a]);
    }
    for (int kj = 0; kj < R; ++kj) {
      T col[n], w[R];
      for (int a = 0; a < n; ++a) col[a] = t[a][kj];
      W::weight_grad(col, w);
      for (int ki = 0; ki < R; ++ki) out[(ki * R + kj) * out_step + l] = w[ki];
    }
  }
}

template <typename T, int R>
fastbp::kernels::WinogradKernels<T> generic_winograd_kernels() {
  return {R,
          generic_winograd_input<T, R>,
          generic_winograd_output<T, R>,
          generic_winograd_weight<T, R>,
          generic_winograd_transform_cl<T, R, false>,
          generic_winograd_transform_cl<T, R, true>,
          generic_winograd_taps<T, R>};
}
