// The C entry points of c_api.h: one validation function per op, then the core, with every
// exception turned into an error code (nothing may unwind into C or Cython callers).
#include "c_api.h"

#include <algorithm>
#include <initializer_list>
#include <new>
#include <stdexcept>

#include "conv.h"
#include "gemm/gemm.h"
#include "linear.h"
#include "parallel.h"

namespace fastbp {
namespace {

// Largest element count (and size argument) fastbp addresses; fastbp.functional's limit too.
constexpr int64_t kMaxElements = int64_t(1) << 59;

// Whether the product of non-negative factors stays within kMaxElements.
bool product_fits(std::initializer_list<int64_t> factors) {
  int64_t n = 1;
  for (int64_t f : factors)
    if (__builtin_mul_overflow(n, f, &n) || n > kMaxElements) return false;
  return true;
}

template <class F>
int guarded(F&& run) noexcept {
  try {
    const DenormalScope mode;
    run();
    return FASTBP_OK;
  } catch (const std::bad_alloc&) {
    return FASTBP_ERR_NO_MEMORY;
  } catch (const std::length_error&) {
    return FASTBP_ERR_NO_MEMORY;
  } catch (...) {
    return FASTBP_ERR_INTERNAL;
  }
}

int64_t conv_output_size(int64_t size, int64_t kernel, int64_t stride, int64_t padding,
                         int64_t dilation) {
  for (int64_t v : {size, kernel, stride, padding, dilation})
    if (v > kMaxElements) return -1;
  int64_t span;  // rows of padded input one output row sees
  if (size < 1 || kernel < 1 || stride < 1 || padding < 0 || dilation < 1 ||
      __builtin_mul_overflow(kernel - 1, dilation, &span) || ++span > size + 2 * padding)
    return -1;
  return (size + 2 * padding - span) / stride + 1;
}

// ---- GEMM: arguments 1..13 as in c_api.h
template <typename T>
int gemm_entry(int trans_a, int trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
               int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M < 0 || M > kMaxElements) return -3;
  if (N < 0 || N > kMaxElements) return -4;
  if (K < 0 || K > kMaxElements) return -5;
  // stored shapes: A is M x K (K x M when transposed), B is K x N (N x K)
  if (lda < std::max<int64_t>(1, trans_a ? M : K)) return -8;
  if (ldb < std::max<int64_t>(1, trans_b ? K : N)) return -10;
  if (ldc < std::max<int64_t>(1, N)) return -13;
  if (!product_fits({trans_a ? K : M, lda}) || !product_fits({trans_b ? N : K, ldb}) ||
      !product_fits({M, ldc}))
    return FASTBP_ERR_TOO_LARGE;
  if (M == 0 || N == 0) return FASTBP_OK;
  const bool reads_ab = K > 0 && alpha != T(0);
  if (reads_ab && !A) return -7;
  if (reads_ab && !B) return -9;
  if (!C) return -12;
  return guarded([&] {
    gemm<T>(trans_a != 0, trans_b != 0, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  });
}

// ---- Convolution: the 14 size arguments N..groups start at argument `first`.
// Fills p (with Ho, Wo) and returns FASTBP_OK, or the code of the first bad argument.
int check_conv(ConvParams& p, int64_t first) {
  const int64_t sizes[] = {p.N, p.C, p.H, p.W, p.O, p.kh, p.kw,
                           p.sh, p.sw, p.ph, p.pw, p.dh, p.dw, p.groups};
  const int64_t minimum[] = {0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1};
  for (int i = 0; i < 14; ++i)
    if (sizes[i] < minimum[i] || sizes[i] > kMaxElements) return static_cast<int>(-(first + i));
  if (p.C % p.groups || p.O % p.groups) return static_cast<int>(-(first + 13));
  // a kernel that does not fit the padded input is the kernel size's fault
  p.Ho = conv_output_size(p.H, p.kh, p.sh, p.ph, p.dh);
  if (p.Ho < 0) return static_cast<int>(-(first + 5));
  p.Wo = conv_output_size(p.W, p.kw, p.sw, p.pw, p.dw);
  if (p.Wo < 0) return static_cast<int>(-(first + 6));
  const int64_t Cg = p.C / p.groups;
  // output plane, input, weight, output, padded input, column gradient of one GEMM's images
  if (!product_fits({p.Ho, p.Wo}) || !product_fits({p.N, p.C, p.H, p.W}) ||
      !product_fits({p.O, Cg, p.kh, p.kw}) || !product_fits({p.N, p.O, p.Ho, p.Wo}) ||
      !product_fits({p.C, p.H + 2 * p.ph, p.W + 2 * p.pw}) ||
      !product_fits({Cg, p.kh, p.kw, p.Ho * p.Wo + 1024}))
    return FASTBP_ERR_TOO_LARGE;
  return FASTBP_OK;
}

ConvParams conv_params(int64_t N, int64_t C, int64_t H, int64_t W, int64_t O, int64_t kh,
                       int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw, int64_t dh,
                       int64_t dw, int64_t groups) {
  ConvParams p{};
  p.N = N; p.C = C; p.H = H; p.W = W; p.O = O; p.kh = kh; p.kw = kw;
  p.sh = sh; p.sw = sw; p.ph = ph; p.pw = pw; p.dh = dh; p.dw = dw; p.groups = groups;
  return p;
}

template <typename T>
int conv2d_forward_entry(FASTBP_CONV_FORWARD_ARGS(T)) {
  ConvParams p = conv_params(N, C, H, W, O, kh, kw, stride_h, stride_w, pad_h, pad_w,
                             dilation_h, dilation_w, groups);
  if (int code = check_conv(p, 5)) return code;
  if (N == 0) return FASTBP_OK;
  if (!x) return -1;
  if (!weight) return -2;
  if (!y) return -4;
  return guarded([&] { conv2d_forward<T>(p, x, weight, bias, y); });
}

template <typename T>
int conv2d_backward_entry(FASTBP_CONV_BACKWARD_ARGS(T)) {
  ConvParams p = conv_params(N, C, H, W, O, kh, kw, stride_h, stride_w, pad_h, pad_w,
                             dilation_h, dilation_w, groups);
  if (int code = check_conv(p, 7)) return code;
  if (N == 0) {  // no images: zero weight and bias gradients, nothing else to read
    if (grad_weight) std::fill(grad_weight, grad_weight + O * (C / groups) * kh * kw, T(0));
    if (grad_bias) std::fill(grad_bias, grad_bias + O, T(0));
    return FASTBP_OK;
  }
  // what each gradient reads: dX dY and W, dW dY and X, db dY
  if (!grad_output && (grad_input || grad_weight || grad_bias)) return -1;
  if (!x && grad_weight) return -2;
  if (!weight && grad_input) return -3;
  return guarded([&] {
    conv2d_backward<T>(p, grad_output, x, weight, grad_input, grad_weight, grad_bias);
  });
}

// ---- Linear: sizes are arguments 5..7 (forward) and 7..9 (backward).
int check_linear(int64_t batch, int64_t in, int64_t out, int64_t first) {
  const int64_t sizes[] = {batch, in, out};
  for (int i = 0; i < 3; ++i)
    if (sizes[i] < 0 || sizes[i] > kMaxElements) return static_cast<int>(-(first + i));
  if (!product_fits({batch, in}) || !product_fits({out, in}) || !product_fits({batch, out}))
    return FASTBP_ERR_TOO_LARGE;
  return FASTBP_OK;
}

template <typename T>
int linear_forward_entry(FASTBP_LINEAR_FORWARD_ARGS(T)) {
  if (int code = check_linear(batch, in_features, out_features, 5)) return code;
  if (batch == 0 || out_features == 0) return FASTBP_OK;
  if (!x && in_features > 0) return -1;
  if (!weight && in_features > 0) return -2;
  if (!y) return -4;
  return guarded([&] { linear_forward<T>(batch, in_features, out_features, x, weight, bias, y); });
}

template <typename T>
int linear_backward_entry(FASTBP_LINEAR_BACKWARD_ARGS(T)) {
  if (int code = check_linear(batch, in_features, out_features, 7)) return code;
  const bool all = batch > 0 && in_features > 0 && out_features > 0;
  if (!grad_output && batch > 0 && out_features > 0 && (grad_input || grad_weight || grad_bias))
    return -1;
  if (!x && all && grad_weight) return -2;
  if (!weight && all && grad_input) return -3;
  return guarded([&] {
    linear_backward<T>(batch, in_features, out_features, grad_output, x, weight, grad_input,
                       grad_weight, grad_bias);
  });
}

}  // namespace

const fastbp_c_api& c_api_table() {
  static const fastbp_c_api table = {
      FASTBP_C_API_VERSION,
      gemm_entry<float>,
      gemm_entry<double>,
      conv2d_forward_entry<float>,
      conv2d_forward_entry<double>,
      conv2d_backward_entry<float>,
      conv2d_backward_entry<double>,
      linear_forward_entry<float>,
      linear_forward_entry<double>,
      linear_backward_entry<float>,
      linear_backward_entry<double>,
      conv_output_size,
  };
  return table;
}

}  // namespace fastbp
