// Convolution forward and backward (NCHW, weight O x C/groups x kH x kW) on im2col + GEMM.
// 1-d convolution is this with H = kH = 1. All pointers are dense row-major arrays.
#pragma once
#include <cstdint>

namespace fastbp {

struct ConvParams {
  int64_t N, C, H, W;  // input
  int64_t O;           // output channels
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;  // ph, pw: padding before (after is implied by Ho, Wo)
  int64_t groups;
  int64_t Ho, Wo;      // output size
};

// With relu, y = relu(conv + bias), applied as the result is written out.
template <typename T>
void conv2d_forward(const ConvParams& p, const T* x, const T* w, const T* bias, T* y,
                    bool relu = false);

// Which algorithm conv2d_forward runs for this shape: "depthwise", "winograd" or "im2col" (the
// GEMM over im2col panels). Winograd's falls back to im2col for a call whose result would not be
// finite (conv_winograd.h).
template <typename T>
const char* conv2d_forward_algorithm(const ConvParams& p);
// Which algorithm conv2d_backward runs for dW: "depthwise", "winograd" or "gemm".
template <typename T>
const char* conv2d_weight_grad_algorithm(const ConvParams& p);

// Each of dx, dw, db may be null: that gradient is not computed.
template <typename T>
void conv2d_backward(const ConvParams& p, const T* dy, const T* x, const T* w, T* dx, T* dw,
                     T* db);

// dX alone: needs no x, only its size (p.N, p.C, p.H, p.W). The forward of a transposed
// convolution is this.
template <typename T>
void conv2d_backward_input(const ConvParams& p, const T* dy, const T* w, T* dx);

}  // namespace fastbp
