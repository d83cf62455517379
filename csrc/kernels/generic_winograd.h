// Portable bodies of the Winograd transforms (winograd.h), vectorised by the including file's
// ISA flags. Include only inside an anonymous namespace, as generic_ukernel.h.
#pragma once
#include <cstdint>

template <typename T>
void generic_winograd_input(const T* __restrict rows, int64_t pitch, int64_t half, int64_t len,
                            int64_t channels, int64_t rows_step, T* __restrict dst,
                            int64_t dst_step, int64_t e_stride) {
  for (int64_t k = 0; k < channels; ++k, rows += rows_step, dst += dst_step)
    for (int64_t q = 0; q < len; ++q) {
      T e[4][4];
      for (int r = 0; r < 4; ++r) {
        const T* E = rows + r * pitch;
        const T d0 = E[q], d1 = E[half + q], d2 = E[q + 1], d3 = E[half + q + 1];
        e[r][0] = d0 - d2;
        e[r][1] = d1 + d2;
        e[r][2] = d2 - d1;
        e[r][3] = d1 - d3;
      }
      for (int b = 0; b < 4; ++b) {
        dst[b * e_stride + q] = e[0][b] - e[2][b];
        dst[(4 + b) * e_stride + q] = e[1][b] + e[2][b];
        dst[(8 + b) * e_stride + q] = e[2][b] - e[1][b];
        dst[(12 + b) * e_stride + q] = e[1][b] - e[3][b];
      }
    }
}

template <typename T>
bool generic_winograd_output(const T* __restrict m, int64_t e_stride, int64_t len,
                             int64_t channels, int64_t m_step, const T* bias, bool relu,
                             T* __restrict y, int64_t y_step, bool two_rows, int64_t pitch,
                             int64_t cols, int64_t step) {
  T finite = T(0);  // stays 0 while every v - v is 0; NaN from an inf or NaN on
  for (int64_t k = 0; k < channels; ++k, m += m_step, y += y_step) {
    const T add = bias ? bias[k] : T(0);
    for (int64_t q = 0; q < len; ++q) {
      T f[2][4];  // row a of M times A
      for (int a = 0; a < 4; ++a) {
        const T m0 = m[(4 * a) * e_stride + q], m1 = m[(4 * a + 1) * e_stride + q];
        const T m2 = m[(4 * a + 2) * e_stride + q], m3 = m[(4 * a + 3) * e_stride + q];
        f[0][a] = m0 + m1 + m2;
        f[1][a] = m1 - m2 - m3;
      }
      for (int b = 0; b < 2 && 2 * q + b < cols; ++b) {
        T v0 = f[b][0] + f[b][1] + f[b][2] + add;
        T v1 = f[b][1] - f[b][2] - f[b][3] + add;
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

template <typename T>
void generic_winograd_weight(const T* __restrict g, int64_t C, int64_t lanes, T* __restrict u,
                             int64_t e_stride) {
  const T h = T(0.5);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t l = 0; l < lanes; ++l) {
      T t[3][4];  // g Gᵀ
      for (int r = 0; r < 3; ++r) {
        const T* k = g + (c * 9 + 3 * r) * lanes + l;
        t[r][0] = k[0];
        t[r][1] = h * (k[0] + k[lanes] + k[2 * lanes]);
        t[r][2] = h * (k[0] - k[lanes] + k[2 * lanes]);
        t[r][3] = k[2 * lanes];
      }
      T* d = u + c * lanes + l;
      for (int b = 0; b < 4; ++b) {
        d[b * e_stride] = t[0][b];
        d[(4 + b) * e_stride] = h * (t[0][b] + t[1][b] + t[2][b]);
        d[(8 + b) * e_stride] = h * (t[0][b] - t[1][b] + t[2][b]);
        d[(12 + b) * e_stride] = t[2][b];
      }
    }
}

template <typename T>
fastbp::kernels::WinogradKernels<T> generic_winograd_kernels() {
  return {generic_winograd_input<T>, generic_winograd_output<T>, generic_winograd_weight<T>};
}
