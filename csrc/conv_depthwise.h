// Convolutions with one input channel per group (depthwise, and any conv of a one-channel
// input), computed directly per image plane instead of through a GEMM whose K would be kh*kw.
#pragma once
#include "conv.h"

namespace fastbp {

bool depthwise_applies(const ConvParams& p);

template <typename T>
void depthwise_forward(const ConvParams& p, const T* x, const T* w, const T* bias, T* y,
                       bool relu = false);

// dx, dw, db may be null (not computed). db comes from the same pass over dY as dx and dw, so
// with neither of those asked for it is not computed here (the caller sums dY alone, in the
// same order: the same bits).
template <typename T>
void depthwise_backward(const ConvParams& p, const T* dy, const T* x, const T* w, T* dx, T* dw,
                        T* db = nullptr);

}  // namespace fastbp
