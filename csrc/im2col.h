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

// Output pixels of a run of images (pixel j is pixel j % (Ho*Wo) of image j / (Ho*Wo)), cut at
// the ends of output rows. The GEMM packers build these once per packed sliver.
struct PixelRun {
  int64_t out;     // position of the run's first pixel in the packed sequence
  int64_t len;
  int64_t image, oh, ow;  // where it starts
};

// Fills runs (capacity `count`) for pixels [pix, pix + count); returns how many.
int64_t make_pixel_runs(const ConvGeometry& g, int64_t pix, int64_t count, PixelRun* runs);

// im2col without storing col: for rows [row0, row0 + rows) of the column matrix and the pixels
// of `runs`, dst[r*row_stride + p*pix_stride] = col[row0 + r][pixel p]. Images are x_image apart.
template <typename T>
void im2col_rows(const ConvGeometry& g, const T* x, int64_t x_image, const PixelRun* runs,
                 int64_t n_runs, int64_t row0, int64_t rows, T* dst, int64_t row_stride,
                 int64_t pix_stride);

// x += col2im(col), where row r of col starts at col + r*ld_col; zero x first for a plain col2im.
template <typename T>
void col2im_2d(const ConvGeometry& g, const T* col, int64_t ld_col, T* x);

}  // namespace fastbp
