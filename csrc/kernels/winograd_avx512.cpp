// AVX-512 Winograd transforms (winograd.h): a vector of tiles (of channels, for the weight
// gradient's) at a time, the last one of a run with masked loads and stores, so runs of a few
// tiles (7x7 and 14x14 images) cost one vector step and memory past a run is never touched. One
// template over a traits struct for float and double, and over the kernel size through the 1-d
// transforms (winograd_transforms.h). Built with AVX-512 flags only (see CMakeLists.txt).
#include <immintrin.h>

#include "winograd.h"
#include "winograd_transforms.h"

namespace {

struct F32 {
  using V = __m512;
  using M = __mmask16;
  static constexpr int L = 16;
  static M mask(int64_t n) {
    return n >= L ? M(0xFFFF) : n <= 0 ? M(0) : static_cast<M>((1u << n) - 1);
  }
  static V load(M k, const float* p) { return _mm512_maskz_loadu_ps(k, p); }
  static void store(M k, float* p, V v) { _mm512_mask_storeu_ps(p, k, v); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V sub(V a, V b) { return _mm512_sub_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V splat(float x) { return _mm512_set1_ps(x); }
  static bool all_zero(V v) { return _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NEQ_UQ) == 0; }
  static V relu(V v) {
    const V z = _mm512_setzero_ps();
    return _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, z, _CMP_LT_OQ), z);
  }
  // the lanes of a and b interleaved: a0 b0 a1 b1 ... (low half of the pairs, then high)
  static V lo(V a, V b) {
    return _mm512_permutex2var_ps(
        a, _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23), b);
  }
  static V hi(V a, V b) {
    return _mm512_permutex2var_ps(
        a, _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31), b);
  }
  // half h of v's lanes at the even lanes (the odd ones are not stored)
  static V spread(V v, int h) {
    const int b = 8 * h;
    return _mm512_permutex2var_ps(v, _mm512_setr_epi32(b, 0, b + 1, 0, b + 2, 0, b + 3, 0, b + 4,
                                                       0, b + 5, 0, b + 6, 0, b + 7, 0), v);
  }
  static constexpr M kEvens = 0x5555;
};

struct F64 {
  using V = __m512d;
  using M = __mmask8;
  static constexpr int L = 8;
  static M mask(int64_t n) {
    return n >= L ? M(0xFF) : n <= 0 ? M(0) : static_cast<M>((1u << n) - 1);
  }
  static V load(M k, const double* p) { return _mm512_maskz_loadu_pd(k, p); }
  static void store(M k, double* p, V v) { _mm512_mask_storeu_pd(p, k, v); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static V sub(V a, V b) { return _mm512_sub_pd(a, b); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static V splat(double x) { return _mm512_set1_pd(x); }
  static bool all_zero(V v) { return _mm512_cmp_pd_mask(v, _mm512_setzero_pd(), _CMP_NEQ_UQ) == 0; }
  static V relu(V v) {
    const V z = _mm512_setzero_pd();
    return _mm512_mask_mov_pd(v, _mm512_cmp_pd_mask(v, z, _CMP_LT_OQ), z);
  }
  static V lo(V a, V b) {
    return _mm512_permutex2var_pd(a, _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11), b);
  }
  static V hi(V a, V b) {
    return _mm512_permutex2var_pd(a, _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15), b);
  }
  static V spread(V v, int h) {
    const int b = 4 * h;
    return _mm512_permutex2var_pd(v, _mm512_setr_epi64(b, 0, b + 1, 0, b + 2, 0, b + 3, 0), v);
  }
  static constexpr M kEvens = 0x55;
};

template <class X, int R, typename T>
void input(const T* rows, int64_t pitch, int64_t half, int64_t len, int64_t channels,
           int64_t rows_step, T* dst, int64_t dst_step, int64_t e_stride) {
  using V = typename X::V;
  using W = fastbp::kernels::Winograd1d<X, R>;
  constexpr int n = R + 1;
  for (int64_t q = 0; q < len; q += X::L) {
    const typename X::M k = X::mask(len - q);
    for (int64_t ch = 0; ch < channels; ++ch) {
      V e[n][n];  // row i of the tiles times B
      for (int i = 0; i < n; ++i) {
        const T* E = rows + ch * rows_step + i * pitch + q;
        V d[n];
        for (int j = 0; j < n; ++j) d[j] = X::load(k, E + (j % 2) * half + j / 2);
        W::input(d, e[i]);
      }
      T* dst_ch = dst + ch * dst_step + q;
      for (int b = 0; b < n; ++b) {
        V col[n], v[n];
        for (int i = 0; i < n; ++i) col[i] = e[i][b];
        W::input(col, v);
        for (int a = 0; a < n; ++a) X::store(k, dst_ch + (n * a + b) * e_stride, v[a]);
      }
    }
  }
}

template <class X, int R, typename T>
bool output(const T* m, int64_t e_stride, int64_t len, int64_t channels, int64_t m_step,
            const T* bias, bool relu, T* y, int64_t y_step, bool two_rows, int64_t pitch,
            int64_t cols, int64_t step) {
  using V = typename X::V;
  using W = fastbp::kernels::Winograd1d<X, R>;
  constexpr int n = R + 1;
  V finite = X::splat(T(0));  // stays 0 while every v - v is 0; NaN from an inf or NaN on
  for (int64_t q = 0; q < len; q += X::L) {
    const typename X::M k = X::mask(len - q);
    // columns 2q.. of the two rows: the two output columns of each tile interleaved
    int64_t n_cols = 2 * (len - q) < cols - 2 * q ? 2 * (len - q) : cols - 2 * q;
    if (n_cols > 2 * X::L) n_cols = 2 * X::L;
    const typename X::M k0 = X::mask(n_cols), k1 = X::mask(n_cols - X::L > 0 ? n_cols - X::L : 0);
    for (int64_t ch = 0; ch < channels; ++ch) {
      const V add = X::splat(bias ? bias[ch] : T(0));
      V f[2][n];  // row a of M times A: f[b][a] for output column b
      for (int a = 0; a < n; ++a) {
        const T* s = m + ch * m_step + n * a * e_stride + q;
        V row[n], out[2];
        for (int b = 0; b < n; ++b) row[b] = X::load(k, s + b * e_stride);
        W::output(row, out);
        f[0][a] = out[0];
        f[1][a] = out[1];
      }
      V v[2][2];  // v[row][column] of the tiles' 2x2 outputs
      for (int b = 0; b < 2; ++b) {
        V out[2];
        W::output(f[b], out);
        v[0][b] = X::add(out[0], add);
        v[1][b] = X::add(out[1], add);
        finite = X::add(finite, X::add(X::sub(v[0][b], v[0][b]), X::sub(v[1][b], v[1][b])));
        if (relu) {
          v[0][b] = X::relu(v[0][b]);
          v[1][b] = X::relu(v[1][b]);
        }
      }
      T* y0 = y + ch * y_step + 2 * q * step;
      const V row[2][2] = {{X::lo(v[0][0], v[0][1]), X::hi(v[0][0], v[0][1])},
                           {X::lo(v[1][0], v[1][1]), X::hi(v[1][0], v[1][1])}};
      for (int a = 0; a < 1 + two_rows; ++a) {
        T* d = y0 + a * pitch;
        if (step == 1) {
          X::store(k0, d, row[a][0]);
          X::store(k1, d + X::L, row[a][1]);
        } else if (step == 2) {  // half a vector at a time, spread to the even lanes
          for (int64_t c = 0; c < n_cols; c += X::L / 2)
            X::store(X::kEvens & X::mask(2 * (n_cols - c)), d + 2 * c,
                     X::spread(row[a][c / X::L], static_cast<int>(c % X::L) / (X::L / 2)));
        } else {  // columns further apart: through a buffer, one at a time
          alignas(64) T out[2 * X::L];
          X::store(typename X::M(~0), out, row[a][0]);
          X::store(typename X::M(~0), out + X::L, row[a][1]);
          for (int64_t c = 0; c < n_cols; ++c) d[c * step] = out[c];
        }
      }
    }
  }
  return X::all_zero(finite);
}

template <class X, int R, typename T>
void weight(const T* g, int64_t C, int64_t lanes, T* u, int64_t e_stride) {
  using V = typename X::V;
  using W = fastbp::kernels::Winograd1d<X, R>;
  constexpr int n = R + 1;
  for (int64_t c = 0; c < C; ++c)
    for (int64_t l = 0; l < lanes; l += X::L) {
      const typename X::M k = X::mask(lanes - l);
      V t[R][n];  // g Gᵀ
      for (int i = 0; i < R; ++i) {
        V taps[R];
        for (int j = 0; j < R; ++j) taps[j] = X::load(k, g + (c * R * R + R * i + j) * lanes + l);
        W::weight(taps, t[i]);
      }
      T* d = u + c * lanes + l;
      for (int b = 0; b < n; ++b) {
        V col[R], v[n];
        for (int i = 0; i < R; ++i) col[i] = t[i][b];
        W::weight(col, v);
        for (int a = 0; a < n; ++a) X::store(k, d + (n * a + b) * e_stride, v[a]);
      }
    }
}

// The channels-last transforms: each tile's In x In inputs to n x n elements, the 1-d transform
// along rows, then along columns: Bᵀ of n x n inputs (input_cl), or G₂ of 2x2 output gradients
// (grad_cl).
template <class X, int R, bool Grad, typename T>
void transform_cl(const T* src, int64_t row, int64_t pixel, int64_t tile_step, int64_t len,
                  int64_t lanes, T* dst, int64_t dst_step, int64_t e_stride) {
  using V = typename X::V;
  using W = fastbp::kernels::Winograd1d<X, R>;
  constexpr int n = R + 1, In = Grad ? 2 : n;
  const auto transform = [](const V* d, V* v) {
    if constexpr (Grad) W::grad(d, v);
    else W::input(d, v);
  };
  for (int64_t q = 0; q < len; ++q)
    for (int64_t l = 0; l < lanes; l += X::L) {
      const typename X::M k = X::mask(lanes - l);
      const T* s = src + q * tile_step + l;
      V e[In][n];  // row i of the tile, transformed
      for (int i = 0; i < In; ++i) {
        V d[In];
        for (int j = 0; j < In; ++j) d[j] = X::load(k, s + i * row + j * pixel);
        transform(d, e[i]);
      }
      T* d = dst + q * dst_step + l;
      for (int b = 0; b < n; ++b) {
        V col[In], v[n];
        for (int i = 0; i < In; ++i) col[i] = e[i][b];
        transform(col, v);
        for (int a = 0; a < n; ++a) X::store(k, d + (n * a + b) * e_stride, v[a]);
      }
    }
}

template <class X, int R, typename T>
void taps(const T* m, int64_t e_stride, int64_t lanes, T* out, int64_t out_step) {
  using V = typename X::V;
  using W = fastbp::kernels::Winograd1d<X, R>;
  constexpr int n = R + 1;
  for (int64_t l = 0; l < lanes; l += X::L) {
    const typename X::M k = X::mask(lanes - l);
    V t[n][R];  // row a of M times A_r
    for (int a = 0; a < n; ++a) {
      V row[n];
      for (int b = 0; b < n; ++b) row[b] = X::load(k, m + (n * a + b) * e_stride + l);
      W::weight_grad(row, t[a]);
    }
    for (int kj = 0; kj < R; ++kj) {
      V col[n], w[R];
      for (int a = 0; a < n; ++a) col[a] = t[a][kj];
      W::weight_grad(col, w);
      for (int ki = 0; ki < R; ++ki) X::store(k, out + (ki * R + kj) * out_step + l, w[ki]);
    }
  }
}

template <class X, int R, typename T>
constexpr fastbp::kernels::WinogradKernels<T> kernels_for() {
  return {R, input<X, R, T>, output<X, R, T>, weight<X, R, T>, transform_cl<X, R, false, T>,
          transform_cl<X, R, true, T>, taps<X, R, T>};
}

}  // namespace

namespace fastbp::kernels::avx512 {
const WinogradKernels<float> swinograd3 = kernels_for<F32, 3, float>();
const WinogradKernels<double> dwinograd3 = kernels_for<F64, 3, double>();
const WinogradKernels<float> swinograd5 = kernels_for<F32, 5, float>();
const WinogradKernels<double> dwinograd5 = kernels_for<F64, 5, double>();
}  // namespace fastbp::kernels::avx512
