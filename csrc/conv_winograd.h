// 3x3 and 5x5 convolutions of stride 1 by Winograd's minimal filtering F(2x2, 3x3) and
// F(2x2, 5x5) (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016): each
// 2x2 block of outputs comes from a 4x4 (6x6) block of inputs with 16 (36) products per channel
// pair instead of 36 (100), as 16 (36) GEMMs of output x input channels over the tiles. A dilated
// one runs as dh x dw undilated ones, one per phase of the output.
#pragma once
#include "conv.h"
#include "kernels/winograd.h"

namespace fastbp {

// Stride 1, one group, a 3x3 or 5x5 kernel (any dilation), channels enough to feed the GEMMs and
// weights small enough that their 16 or 36 transformed copies are cheap to keep. Depends on the
// shape and the element size only, never on threads or the workspace limit.
template <typename T>
bool winograd_applies(const ConvParams& p);

// Returns false, with y partly written, when an output before relu came out inf or NaN: the
// transforms add and subtract inputs before multiplying, so an inf input (or values near the
// top of the range) can give NaN where the direct sum gives inf, and the caller recomputes y
// the direct way to keep its semantics.
// With `swapped`, w holds the weights of the convolution this one carries dY back through
// (dX of a stride-1 convolution): w[c][o][r][r], read with in and out channels swapped and the
// taps flipped, so that no reordered copy is made.
template <typename T>
bool winograd_forward(const ConvParams& p, const T* x, const T* w, const T* bias, T* y,
                      bool relu = false, bool swapped = false);

// Where winograd_applies, and with tiles and channels enough for the weight gradient's fixed
// costs and transforms to pay (conv_winograd_weight.cpp). Depends on the shape only.
template <typename T>
bool winograd_weight_grad_applies(const ConvParams& p);

// dW by F(r x r, 2x2) on the same points (conv_winograd_weight.cpp):
// dW = A_rᵀ [sum over tiles of (G₂ dY G₂ᵀ) ⊙ (Bᵀ x B)] A_r, each 2x2 block of output gradients
// a tile. Returns false, with dw partly written, when a result came out inf or NaN (the caller
// recomputes dw the direct way, as for the forward), or at once when its buffers the size of the
// weights would take more than half of what the workspace limit leaves.
template <typename T>
bool winograd_weight_grad(const ConvParams& p, const T* dy, const T* x, T* dw);

// The stride between the elements' matrices of a transform's output, for `size` values each:
// one 64-byte line past a multiple of 4 KiB, so that the 16 or 36 streams a transform reads or
// writes fall in different cache sets (at a multiple of 4 KiB they share one set, which holds
// 12 lines, and thrash).
inline int64_t winograd_spread(int64_t size) { return (size + 1023) / 1024 * 1024 + 16; }

// The active path's transforms for an r x r kernel (r = 3 or 5).
template <typename T>
const kernels::WinogradKernels<T>& winograd_kernels(int64_t r);

}  // namespace fastbp
