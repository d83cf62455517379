// The input gradient of a strided convolution as stride-1 convolutions, one per stride phase
// (conv.h's layouts). conv.cpp tries it before col2im.
#pragma once
#include "conv.h"

namespace fastbp {

// dX when the shape suits (stride > 1 with a kernel of at least twice the stride, dilation 1,
// at least 8 channels per group, padding no larger than the kernel needs); returns false,
// having written nothing, otherwise.
template <typename T>
bool conv2d_backward_input_phases(const ConvParams& p, const T* dy, const T* w, T* dx);

}  // namespace fastbp
