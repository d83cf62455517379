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

// im2col, one piece at a time: out[i * out_stride] = col[row][pix + i] for i < count, where
// pix + count <= Ho*Wo. The GEMM packers call this, so the column matrix is never stored whole.
template <typename T>
void im2col_segment(const ConvGeometry& g, const T* x, int64_t row, int64_t pix, int64_t count,
                    T* out, int64_t out_stride);

// x += col2im(col), where row r of col starts at col + r*ld_col; zero x first for a plain col2im.
template <typename T>
void col2im_2d(const ConvGeometry& g, const T* col, int64_t ld_col, T* x);

}  // namespace fastbp
