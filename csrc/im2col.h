// im2col and col2im (1-d convolution is the 2-d case with H = kH = 1).
// col is (C*kH*kW) x (Ho*Wo), row q = (c, ki, kj), column (oh, ow):
//   col[q][oh*Wo + ow] = x[c][oh*sh - ph + ki*dh][ow*sw - pw + kj*dw]  (0 outside x)
// ph, pw are the padding before the first row/column; padding after is implied by Ho, Wo.
//
// The column matrix is never stored. The images are copied once into a zero-padded buffer big
// enough for every tap of every output pixel; there, col[q][pixel] = x_pad[tap[q] + pos(pixel)]
// with no bounds to check, and the GEMM packers copy straight out of it.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/gather.h"

namespace fastbp {

struct ConvGeometry {
  int64_t C, H, W;  // input channels (of one group) and size
  int64_t kh, kw;   // kernel size
  int64_t sh, sw;   // stride
  int64_t ph, pw;   // padding before
  int64_t dh, dw;   // dilation
  int64_t Ho, Wo;   // output size
};

// x_pad layout: [channel][phase][image][Hq][Wq] for `images` images. The zero-padded plane
// (Hp x Wp) of each channel and image is split into stride phases: padded element (r, c) lies in
// phase (r % sh) * sw + c % sw at row r / sh, column c / sw. Then tap (ki, kj) of output pixel
// (oh, ow) lies at a fixed offset from oh * Wq + ow for any stride and dilation, so a run of
// output pixels along a row is a run of consecutive elements (with stride 1 there is one phase
// and this is the plain padded plane).
//
// Pixel numbering (the columns of col):
// - compact: pixel j is output pixel j % (Ho*Wo) of image j / (Ho*Wo).
// - padded: pixel j is position j of the first phase: output rows have pitch Wq and images pitch
//   Hq*Wq, so col[q][j] = x_pad[tap[q] + j] can be read in place. (The forward's GEMM takes
//   just the Ho*Wq positions of each image's output rows, images one after another.)
// - row_runs: each output row is a run of `run` pixels (Wo rounded up to whole vectors, or to a
//   half or a quarter of one, or Wo itself), runs of one image Wq apart in x_pad and images
//   Hq*Wq apart: for small images this drops far fewer pixels than `padded` (none with run =
//   Wo), and each vector of B is one to a few contiguous loads.
// Pixels outside the output (ow >= Wo, oh >= Ho) are computed too and dropped by the caller.
enum class PixelOrder { compact, padded, row_runs };

struct PaddedInput {
  int64_t Hq, Wq, image;  // one phase of one image: Hq x Wq, image = Hq * Wq elements
  int64_t phases, images, channels;
  std::vector<int64_t> tap;  // per column-matrix row q = (c, ki, kj): offset in x_pad
  PixelOrder order;
  int64_t run;    // pixels per output row with row_runs
  int64_t slack;  // zeros after the last channel: the last taps of dropped pixels read them

  PaddedInput(const ConvGeometry& g, int64_t images, PixelOrder order = PixelOrder::compact,
              int64_t run = 0);
  static int64_t padded_rows(const ConvGeometry& g);  // Hp
  static int64_t padded_cols(const ConvGeometry& g);  // Wp
  // Hq * Wq: the pixel pitch of images in padded numbering
  static int64_t phase_image(const ConvGeometry& g);
  int64_t channel_size() const { return phases * images * image; }
  int64_t size() const { return channels * channel_size() + slack; }
};

// Whether numbering pixels by padded position pays: a kernel larger than 1x1 and at most a
// quarter of the computed pixels dropped.
bool padded_pixels_pay(const ConvGeometry& g);

// The numbering for reading col in place with vectors of `lanes` values: padded or row_runs,
// whichever drops fewer pixels, if that is at most a quarter; else compact. `run` gets the
// row_runs run length. With exact_runs (a reader that loads a vector in several segments, the
// rows kernels), row_runs may have run = Wo: no pixel dropped.
PixelOrder in_place_order(const ConvGeometry& g, int64_t lanes, int64_t& run,
                          bool exact_runs = false);

// Computed pixels per image under an order (their pitch in the GEMM's columns).
int64_t pixels_per_image(const ConvGeometry& g, PixelOrder order, int64_t run);

// Output rows [r0, r1) whose taps read the image, not its padding, at kernel rows [k0, k1): the
// output rows in runs of the same valid kernel rows (for 5x5, padding 2: rows 0, 1, 2..Ho-3,
// Ho-2, Ho-1). A run may have no valid kernel row (k0 == k1) when the padding is wider than
// the kernel's reach.
struct RowBand {
  int64_t r0, r1, k0, k1;
};
std::vector<RowBand> row_bands(const ConvGeometry& g);

// Copies `count` images of g.C channels (x_image apart, channel c at x + c*H*W) into x_pad;
// with c1 >= 0, only channels [c0, c1) (the slack after the last channel goes with it), so that
// threads can fill a buffer a channel range each.
template <typename T>
void pad_input(const ConvGeometry& g, const PaddedInput& L, const T* x, int64_t x_image,
               int64_t count, T* x_pad, int64_t c0 = 0, int64_t c1 = -1);

// Pixels [pix, pix + count) of a run of images, cut at the ends of output rows (one run with
// padded_pixels): within a run, pixel out + i of the packed sequence sits at x_pad position
// pos + i.
using PixelRun = kernels::GatherRun;
// Fills runs (capacity `count`); returns how many.
int64_t make_pixel_runs(const ConvGeometry& g, const PaddedInput& L, int64_t pix, int64_t count,
                        PixelRun* runs);

// The packers' copy loop for the active CPU path (kernels/gather.h).
template <typename T>
kernels::gather_rows_fn<T> gather_rows_kernel();

// x += col2im(col), where row r of col starts at col + r*ld_col; zero x first for a plain col2im.
template <typename T>
void col2im_2d(const ConvGeometry& g, const T* col, int64_t ld_col, T* x);

}  // namespace fastbp
