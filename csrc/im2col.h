// im2col / col2im for one image (1-d convolution is the 2-d case with H = kH = 1).
// col is (C*kH*kW) x (Ho*Wo), row (c, ki, kj), column (oh, ow):
//   col[(c*kH + ki)*kW + kj][oh*Wo + ow] = x[c][oh*sh - ph + ki*dh][ow*sw - pw + kj*dw]  (0 outside)
// ph, pw are the padding before the first row/column; padding after is implied by Ho, Wo.
#pragma once
#include <cstdint>

namespace fastbp {

struct ConvGeometry {
  int64_t C, H, W;     // input channels (of one group) and size
  int64_t kh, kw;      // kernel size
  int64_t sh, sw;      // stride
  int64_t ph, pw;      // padding before
  int64_t dh, dw;      // dilation
  int64_t Ho, Wo;      // output size
};

template <typename T>
void im2col_2d(const ConvGeometry& g, const T* x, T* col);

// x += col2im(col); x must be zeroed by the caller for a plain col2im.
template <typename T>
void col2im_2d(const ConvGeometry& g, const T* col, T* x);

}  // namespace fastbp
