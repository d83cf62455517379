// The convolution's weight gradient on channels-last copies of x and dY (conv.h's layouts in,
// conv.h's layout out): conv.cpp picks it by the shape.
#pragma once
#include "conv.h"

namespace fastbp {

// Whether the channels-last path is the one for this shape (never depends on the threads).
bool weight_grad_channels_last_applies(const ConvParams& p);

template <typename T>
void conv2d_backward_weight_channels_last(const ConvParams& p, const T* dy, const T* x, T* dw);

}  // namespace fastbp
