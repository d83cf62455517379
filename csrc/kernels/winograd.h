// The transforms of Winograd's F(2x2, 3x3) and F(2x2, 5x5) convolutions (../conv_winograd.cpp),
// one signature set for every ISA and kernel size r. A tile is 2x2 outputs from n x n inputs,
// n = r + 1, with n² elements. input and output run over a run of `len` tiles along one row of
// tiles, tile q at lane q, for `channels` channels, each `*_step` further on.
//
// The matrices, for points 0, ±1 (and ±2 for 5x5) and infinity:
//   r = 3:  Bᵀ = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
//           G  = [1 0 0; ½ ½ ½; ½ -½ ½; 0 0 1]
//           Aᵀ = [1 1 1 0; 0 1 -1 -1]
//   r = 5:  Bᵀ = [4 0 -5 0 1 0; 0 4 4 -1 -1 0; 0 -4 4 1 -1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0;
//                 0 4 0 -5 0 1]
//           G  = [¼ 0 0 0 0; ⅙ ⅙ ⅙ ⅙ ⅙; ⅙ -⅙ ⅙ -⅙ ⅙; (1 2 4 8 16)/24; (1 -2 4 -8 16)/24;
//                 0 0 0 0 1]
//           Aᵀ = [1 1 1 1 1 0; 0 1 -1 2 -2 1]
//
// input:  V = Bᵀ d B of each tile. Input row i (i < n) of the run is split into its even and
//         odd columns: E_i = rows + i*pitch, O_i = E_i + half, and tile q's input row i is
//         (E_i[q], O_i[q], E_i[q+1], O_i[q+1], ...), n values. Element e = n*a + b of tile q
//         goes to dst[e*e_stride + q]. Channel k: rows and dst moved on by k*rows_step and
//         k*dst_step.
// output: Y = Aᵀ M A + bias[k] (0 when bias is null), then relu (negatives to zero, NaN and -0.0
//         kept) when asked. Element e of tile q's M is m[e*e_stride + q]; its 2x2 outputs go to
//         columns 2q and 2q + 1 of y and, with two_rows, of y + pitch, only the first `cols`
//         columns; column c is y[c*step] (step > 1: a dilated convolution's phase, whose columns
//         lie `step` apart). Channel k: m and y moved on by k*m_step and k*y_step. Returns false
//         when one of the tiles' outputs before relu is not finite (inf or NaN), lanes past the
//         run included.
// weight: U = G g Gᵀ of the kernels of `lanes` output channels (a GEMM sliver) and C input
//         channels: tap k of channel c of lane l is g[(c*r*r + k)*lanes + l], element e of U goes
//         to u[e*e_stride + c*lanes + l].
//
// The weight gradient's transforms read channels-last images, a vector of channels (`lanes`)
// at a time, `len` tiles along a row of tiles, tile q at src + q*tile_step:
// input_cl: V = Bᵀ d B, input (i, j) of tile q at src[q*tile_step + i*row + j*pixel + lane].
// grad_cl:  D = G₂ d G₂ᵀ of 2x2 output gradients (winograd_transforms.h), d addressed alike.
//         Element e = n*a + b of tile q goes to dst[e*e_stride + q*dst_step + lane].
// taps:   dW = A_rᵀ M A_r of `lanes` channel pairs: element e of pair l at m[e*e_stride + l],
//         tap (ki, kj) to out[(ki*r + kj)*out_step + l].
// Every output is a fixed sequence of adds, subtracts and multiplies in the order the kernels
// write them: the same bits wherever a run is cut.
#pragma once
#include <cstdint>

namespace fastbp::kernels {

template <typename T>
struct WinogradKernels {
  int r;  // the kernel's size: 3 or 5
  void (*input)(const T* rows, int64_t pitch, int64_t half, int64_t len, int64_t channels,
                int64_t rows_step, T* dst, int64_t dst_step, int64_t e_stride);
  bool (*output)(const T* m, int64_t e_stride, int64_t len, int64_t channels, int64_t m_step,
                 const T* bias, bool relu, T* y, int64_t y_step, bool two_rows, int64_t pitch,
                 int64_t cols, int64_t step);
  void (*weight)(const T* g, int64_t C, int64_t lanes, T* u, int64_t e_stride);
  void (*input_cl)(const T* src, int64_t row, int64_t pixel, int64_t tile_step, int64_t len,
                   int64_t lanes, T* dst, int64_t dst_step, int64_t e_stride);
  void (*grad_cl)(const T* src, int64_t row, int64_t pixel, int64_t tile_step, int64_t len,
                  int64_t lanes, T* dst, int64_t dst_step, int64_t e_stride);
  void (*taps)(const T* m, int64_t e_stride, int64_t lanes, T* out, int64_t out_step);
};

#define FASTBP_DECLARE_WINOGRAD(isa)                \
  namespace isa {                                   \
  extern const WinogradKernels<float> swinograd3;   \
  extern const WinogradKernels<double> dwinograd3;  \
  extern const WinogradKernels<float> swinograd5;   \
  extern const WinogradKernels<double> dwinograd5;  \
  }
FASTBP_DECLARE_WINOGRAD(ref)
FASTBP_DECLARE_WINOGRAD(avx2)
FASTBP_DECLARE_WINOGRAD(avx512)
#undef FASTBP_DECLARE_WINOGRAD

}  // namespace fastbp::kernels
