#include "conv.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "aligned_buffer.h"
#include "conv_depthwise.h"
#include "conv_input_phases.h"
#include "conv_pack.h"
#include "conv_weight_cl.h"
#include "conv_winograd.h"
#include "gemm/banded.h"
#include "gemm/driver.h"
#include "gemm/pack.h"
#include "im2col.h"
#include "kernels/dot.h"
#include "lane_sum.h"
#include "parallel.h"

// Per group g, with P = Ho*Wo output pixels and col the im2col matrix (Cg*kh*kw rows, P columns):
//   forward  Y_g  = W_g col                    (Og x P)
//   weight   dW_g = sum over images dY_g colᵀ  (Og x KK), one GEMM whose k runs over all pixels
//   input    dX_g = col2im(W_gᵀ dY_g), or for stride 1 a forward convolution of dY
// Several images share one GEMM (their pixels side by side) when the output plane is small.
// The im2col matrix is never stored: the GEMM's packers copy it panel by panel out of a
// zero-padded copy of the input (im2col.h).

namespace fastbp {
namespace {

struct GroupShape {
  int64_t Cg, Og, KK, P;  // channels in/out per group, rows of col (Cg*kh*kw), output pixels
  int64_t x_image, y_image;  // elements per image of x and y
  ConvGeometry geom;
};

GroupShape group_shape(const ConvParams& p) {
  GroupShape s;
  s.Cg = p.C / p.groups;
  s.Og = p.O / p.groups;
  s.KK = s.Cg * p.kh * p.kw;
  s.P = p.Ho * p.Wo;
  s.x_image = p.C * p.H * p.W;
  s.y_image = p.O * s.P;
  s.geom = ConvGeometry{s.Cg, p.H, p.W, p.kh, p.kw, p.sh, p.sw, p.ph, p.pw, p.dh, p.dw, p.Ho, p.Wo};
  return s;
}

// The forward writes into y, an image per GEMM, from 512 pixels per image; from 128 when the GEMM
// is shallow (k <= 64), where the copy out of a result buffer would cost a large share (measured:
// lenet 28x28 k=25 -15%, ppg k=36 -6%; 14x14 with k=800 or 2304 was 7% slower, so stays buffered).
constexpr int64_t kIntoYPixels = 512, kIntoYShallowPixels = 128, kIntoYShallowK = 64;

// Images per GEMM: enough pixels for full-width panels, `columns` of them. A banded forward
// takes twice as many, so that each band of one output row spans a few panels rather than
// straddling two (lenet-c2: 11 images, -2% at 1 thread and -5% at 2 against 6).
constexpr int64_t kGemmColumns = 1024, kBandedGemmColumns = 2048;
int64_t images_per_gemm(int64_t images, int64_t pixels_per_image, int64_t columns) {
  return std::clamp<int64_t>(ceil_div(columns, std::max<int64_t>(pixels_per_image, 1)), 1,
                             std::max<int64_t>(images, 1));
}

// Images per GEMM under the workspace limit: fewer than images_per_gemm (at least one) when a
// chunk's buffers, `per_image` elements of T for each image, would pass what is left of it
// (workspace_budget: the input gradient's swapped weights count); then spread evenly
// over that many chunks (8 images at 6 per GEMM go 4 + 4, not 6 + 2, whose short GEMM leaves
// threads idle: pw-1x1 -5% at 2 threads). How the columns of a GEMM are cut does not change its
// results, so neither does the limit.
template <typename T>
int64_t images_within_limit(int64_t images, int64_t pixels_per_image, int64_t per_image,
                            int64_t columns = kGemmColumns) {
  const int64_t budget = static_cast<int64_t>(workspace_budget() / sizeof(T));
  const int64_t most = std::clamp<int64_t>(budget / std::max<int64_t>(per_image, 1), 1,
                                           images_per_gemm(images, pixels_per_image, columns));
  return images > 0 ? ceil_div(images, ceil_div(images, most)) : most;
}

// Threads over `items` independent GEMMs of `flops` in all: one item per thread when there are
// enough items and each thread's buffers (`work` elements of T) fit the workspace limit together,
// otherwise items in turn with all threads inside each GEMM; none for tiny work.
struct Split {
  int outer, inner;
};
template <typename T>
Split split_threads(int64_t items, double flops, int64_t work) {
  const int nt = flops < kGemmMinParallelFlops ? 1 : max_threads();
  const bool fits = static_cast<double>(nt) * work * sizeof(T) <= workspace_budget();
  return items >= 2 * nt && fits ? Split{nt, 1} : Split{1, nt};
}

// Multiply-adds of one convolution pass, times two.
double conv_flops(const ConvParams& p, const GroupShape& s) {
  return 2.0 * p.N * p.O * s.P * s.KK;
}

// The im2col matrix of a run of images, KK x (images*P), read from their padded copy with kernel
// rows as lanes and pixels as k steps (B = colᵀ of the weight gradient).
template <typename T>
struct ColPacker {
  const ConvGeometry& g;
  const PaddedInput& L;
  const T* x_pad;  // first channel of the group
  kernels::gather_rows_fn<T> copy_rows = gather_rows_kernel<T>();

  void pack(int64_t lane0, int64_t lanes, int64_t k0, int64_t kc, int width, T* dst) const {
    // gather a few dozen pixels of each row contiguously, then transpose that small block into
    // the packed layout
    constexpr int64_t kChunk = 64;
    thread_local std::vector<PixelRun> runs;
    thread_local std::vector<T> rows;
    rows.resize(lanes * kChunk);
    runs.resize(kChunk);
    for (int64_t p0 = 0; p0 < kc; p0 += kChunk) {
      const int64_t pc = std::min(kChunk, kc - p0);
      const int64_t n = make_pixel_runs(g, L, k0 + p0, pc, runs.data());
      copy_rows(x_pad, L.tap.data() + lane0, lanes, runs.data(), n, rows.data(), pc);
      StridedPacker<T>{rows.data(), pc, 1}.pack(0, lanes, 0, pc, width, dst + p0 * width);
    }
    zero_lanes(lanes, kc, width, dst);
  }
};

// The im2col matrix of a run of images read from their padded copy with pixels as lanes: B of
// the forward's W col. Row q at pixel j is at.base[at.off[q] + at.pos(j)] (the pixel order's
// runs); the driver reads it there in place where the order allows, else this packs it.
template <typename T>
struct PixelColPacker {
  InPlaceB<T> at;  // base: the group's first channel
  bool in_place_ok;
  kernels::gather_rows_fn<T> copy_rows = gather_rows_kernel<T>();

  void pack(int64_t lane0, int64_t lanes, int64_t k0, int64_t kc, int width, T* dst) const {
    thread_local std::vector<PixelRun> runs;
    runs.resize(lanes);
    int64_t n = 0;
    for (int64_t out = 0; out < lanes; ++n) {  // runs cut where output rows end
      const int64_t j = lane0 + out, len = std::min(lanes - out, at.run - j % at.run);
      runs[n] = PixelRun{out, len, at.pos(j)};
      out += len;
    }
    copy_rows(at.base, at.off + k0, kc, runs.data(), n, dst, width);
    zero_lanes(lanes, kc, width, dst);
  }
  InPlaceB<T> in_place() const { return in_place_ok ? at : InPlaceB<T>{}; }
};

// With one output row (column) the stride along it plays no part; a stride of 1 there keeps the
// stride-phase layouts (im2col.h) from splitting the input into useless phases.
ConvParams normalized(ConvParams p) {
  if (p.Ho == 1) p.sh = 1;
  if (p.Wo == 1) p.sw = 1;
  return p;
}

}  // namespace

template <typename T>
const char* conv2d_forward_algorithm(const ConvParams& params) {
  const ConvParams p = normalized(params);
  return depthwise_applies(p) ? "depthwise" : winograd_applies<T>(p) ? "winograd" : "im2col";
}
template const char* conv2d_forward_algorithm<float>(const ConvParams&);
template const char* conv2d_forward_algorithm<double>(const ConvParams&);

template <typename T>
const char* conv2d_weight_grad_algorithm(const ConvParams& params) {
  const ConvParams p = normalized(params);
  return depthwise_applies(p)                    ? "depthwise"
         : winograd_weight_grad_applies<T>(p) ? "winograd"
                                                 : "gemm";
}
template const char* conv2d_weight_grad_algorithm<float>(const ConvParams&);
template const char* conv2d_weight_grad_algorithm<double>(const ConvParams&);

// Output rows whose taps reach into the padding are computed apart, without those taps, when
// that skips at least this share of the multiplies (5x5 with padding 2 on 14x14: 8.6%; 3x3
// with padding 1 on 7x7: 9.5%).
constexpr double kMinSkippedTaps = 0.05;
// ... and when each column of the GEMM has Og x KK multiply-adds of at least this: the bands'
// setup (their lists of taps, the columns' positions and vector cuts) costs per column, more
// than the taps skipped on small layers (8x8 images of 16 or 32 channels, 3x3: 4-24% slower)
// and about as much on middling ones (7x7 images, 3x3 of 64 channels, Og x KK = 18K and 37K:
// level). lenet-c2 has 64 x 800 (2% faster), c512-7x7 512 x 4608 (3.5%).
constexpr int64_t kBandedMinWork = 32768;

// The forward's bands of output rows: in runs of the same kernel rows that read the image
// (row_bands), where skipping the others pays; else one band of every row and tap.
static std::vector<RowBand> forward_bands(const ConvGeometry& g) {
  const std::vector<RowBand> bands = row_bands(g);
  double used = 0;
  for (const RowBand& b : bands) used += double(b.r1 - b.r0) * double(b.k1 - b.k0);
  if (bands.size() > 1 && used <= (1.0 - kMinSkippedTaps) * double(g.Ho * g.kh)) return bands;
  return {RowBand{0, g.Ho, 0, g.kh}};
}

template <typename T>
void conv2d_forward(const ConvParams& params, const T* x, const T* w, const T* bias, T* y,
                    bool relu) {
  const ConvParams p = normalized(params);
  if (depthwise_applies(p)) return depthwise_forward(p, x, w, bias, y, relu);
  if (winograd_applies<T>(p) && winograd_forward(p, x, w, bias, y, relu)) return;
  const GroupShape s = group_shape(p);
  int64_t run = 0;
  const GemmBlocking<T>& bk = gemm_blocking_for_rows<T>(active_capability(), s.Og);
  const bool rows_kernel = bk.rows_kernel != nullptr;
  constexpr int64_t kVec = 64 / sizeof(T);
  PixelOrder order = in_place_order(s.geom, kVec, run, rows_kernel);
  // Runs of exactly Wo drop no pixel, so the GEMM can write into y (below): for images that
  // large, that saves more than the extra segment where a vector crosses a row end costs
  // (r18-down, padded numbering before: -6% at 1 thread, -12% at 2).
  if (rows_kernel && order != PixelOrder::compact && s.P >= kIntoYPixels && p.Wo >= kVec / 2) {
    order = PixelOrder::row_runs;
    run = p.Wo;
  }
  // Runs that are not whole vectors make vectors that cross them, loaded in pieces. Where the
  // CPU merges the pieces on its FMA ports (dispatch.h), the columns are packed once instead,
  // when four or more slivers of A would merge them again (Intel, 1 thread: c512-7x7 -29%,
  // r18-down -21%, lenet-c2 -14%, lenet-c1 (32 channels) -10%; with 8 to 24 output channels the
  // merges cost less than the packing: 8 +34% (`grouped`), 16 +30%, 24 +22%, on 8x8 images).
  if (order == PixelOrder::row_runs && run % kVec != 0 && s.Og > 3 * bk.mr &&
      alu_on_fma_ports())
    order = PixelOrder::compact;
  // the pitch of output rows among the GEMM's columns (their pixels per row, dropped ones
  // included), and of images
  const int64_t Wq = ceil_div(PaddedInput::padded_cols(s.geom), p.sw);
  const int64_t row_pitch =
      order == PixelOrder::padded ? Wq : order == PixelOrder::row_runs ? run : p.Wo;
  const int64_t img_pitch = p.Ho * row_pitch;
  // When no pixel is dropped (the GEMM's columns of an image are y's pixels in order) and one
  // image is enough for a GEMM, each GEMM takes one image and writes straight into y, adding the
  // bias and applying relu as each of its tasks finishes: no result buffer and no copy.
  const bool into_y = img_pitch == s.P && (s.P >= kIntoYPixels ||
                                            (s.P >= kIntoYShallowPixels && s.KK <= kIntoYShallowK));
  // Otherwise bands of output rows that skip the taps on padding, where the GEMM reads both
  // operands in place (gemm/banded.h), results side by side in the result buffer. A band of one
  // row has runs of row_pitch pixels (Wq with padded numbering), which its vectors must load in
  // at most kMaxRunSegments pieces.
  const bool runs_fit = row_pitch * (kMaxRunSegments - 1) >= kVec - 1 || kVec % row_pitch == 0;
  const bool banded = !into_y && order != PixelOrder::compact && runs_fit &&
                      s.Og * s.KK >= kBandedMinWork && banded_gemm_applies<T>(s.Og);
  const std::vector<RowBand> bands =
      banded ? forward_bands(s.geom) : std::vector<RowBand>{RowBand{0, p.Ho, 0, p.kh}};
  // a thread's buffers: the padded images of a chunk and the GEMM's result for them
  const int64_t padded_image = s.Cg * PaddedInput::phase_image(s.geom) * p.sh * p.sw;
  const int64_t result_image = into_y ? 0 : s.Og * img_pitch;
  const int64_t nb =
      into_y ? 1
             : images_within_limit<T>(p.N, img_pitch, padded_image + result_image,
                                      bands.size() > 1 ? kBandedGemmColumns : kGemmColumns);
  const int64_t n_chunks = ceil_div(p.N, nb);
  const PaddedInput L(s.geom, nb, order, run);
  // each band's rows of col: the taps whose kernel row reads the image for its output rows
  std::vector<std::vector<int64_t>> cols(bands.size() > 1 ? bands.size() : 0);
  for (size_t i = 0; i < cols.size(); ++i)
    for (int64_t c = 0; c < s.Cg; ++c)
      for (int64_t ki = bands[i].k0; ki < bands[i].k1; ++ki)
        for (int64_t kj = 0; kj < p.kw; ++kj) cols[i].push_back((c * p.kh + ki) * p.kw + kj);
  const int64_t pad_size = round_up(L.size(), 16), work = pad_size + nb * result_image;
  const Split th = split_threads<T>(n_chunks * p.groups, conv_flops(p, s), work);
  AlignedBuffer<T> buffers(th.outer * work);
  parallel_for(n_chunks * p.groups, th.outer, [&](int64_t item, int tid) {
    const int64_t n0 = (item / p.groups) * nb, g = item % p.groups;
    const int64_t count = std::min(nb, p.N - n0), N = count * img_pitch;
    T* x_pad = buffers.data() + tid * work;
    T* c = x_pad + pad_size;
    // with all threads inside this chunk's GEMM, they share its copies in and out too, from 16K
    // elements (batch1's 50K: -7% at 2 threads; smaller copies are not worth a parallel region)
    const auto edge_threads = [&](int64_t elements) { return elements >= 16384 ? th.inner : 1; };
    parallel_for(s.Cg, edge_threads(count * s.Cg * p.H * p.W), [&](int64_t ch, int) {
      pad_input(s.geom, L, x + n0 * s.x_image + g * s.Cg * p.H * p.W, s.x_image, count, x_pad, ch,
                ch + 1);
    });
    const T* w_g = w + g * s.Og * s.KK;
    const T* bias_g = bias ? bias + g * s.Og : nullptr;
    // a band's pixels: per image `rows` runs of `run` pixels, Wq apart, or with padded
    // numbering one run of all its rows; images L.image apart
    const auto pixels = [&](int64_t r0, int64_t rows, const int64_t* tap) {
      const bool one_run = order == PixelOrder::padded;
      return InPlaceB<T>{x_pad + r0 * L.Wq, tap, one_run ? rows * Wq : row_pitch, L.Wq,
                         one_run ? 1 : rows, L.image};
    };
    if (!cols.empty()) {
      std::vector<ColumnBand<T>> column_bands;
      for (size_t i = 0; i < cols.size(); ++i) {
        const int64_t rows = bands[i].r1 - bands[i].r0;
        column_bands.push_back(ColumnBand<T>{count * rows * row_pitch, cols[i].data(),
                                             int64_t(cols[i].size()),
                                             pixels(bands[i].r0, rows, nullptr)});
      }
      banded_gemm<T>(s.Og, s.KK, w_g, s.KK, L.tap.data(), column_bands, c, N, th.inner);
    } else {
      const PixelColPacker<T> b_cols{pixels(0, p.Ho, L.tap.data()),
                                     order != PixelOrder::compact};
      if (into_y) {
        gemm_driver<T>(s.Og, N, s.KK, T(1), StridedPacker<T>{w_g, s.KK, 1}, b_cols, T(0),
                       y + n0 * s.y_image + g * s.Og * s.P, s.P, th.inner,
                       relu ? Epilogue::relu : Epilogue::none, bias_g);
        return;
      }
      gemm_driver<T>(s.Og, N, s.KK, T(1), StridedPacker<T>{w_g, s.KK, 1}, b_cols, T(0), c, N,
                     th.inner);
    }
    // y = the result without dropped pixels, plus the bias, then relu (kernels/epilogue.h), 16
    // channels of an image at a time, an output row of each per call; a band's rows that follow
    // on in the result (compact pixels) go as one run.
    constexpr int64_t kChannels = 16;
    const int64_t blocks = ceil_div(s.Og, kChannels);
    const auto bias_rows = bias_rows_kernel<T>();
    parallel_for(count * blocks, edge_threads(count * s.Og * s.P), [&](int64_t item, int) {
      const int64_t b = item / blocks, o0 = item % blocks * kChannels;
      const int64_t m = std::min(kChannels, s.Og - o0);
      for (const RowBand& band : bands) {
        const int64_t rows = band.r1 - band.r0;
        const T* src = c + o0 * N + count * band.r0 * row_pitch + b * rows * row_pitch;
        T* dst = y + (n0 + b) * s.y_image + (g * s.Og + o0) * s.P + band.r0 * p.Wo;
        if (row_pitch == p.Wo)
          bias_rows(src, N, dst, s.P, m, rows * p.Wo, bias_g ? bias_g + o0 : nullptr, relu);
        else
          for (int64_t r = 0; r < rows; ++r)
            bias_rows(src + r * row_pitch, N, dst + r * p.Wo, s.P, m, p.Wo,
                      bias_g ? bias_g + o0 : nullptr, relu);
      }
    });
  });
}

// For stride 1, dX is itself a stride-1 convolution: of dY, with each group's weights swapped
// in/out and flipped in space, and padding (k-1)*d - p on each side, when those paddings are
// not negative (returns whether they are).
static bool transposed_params(const ConvParams& p, ConvParams& t) {
  if (p.sh != 1 || p.sw != 1 || p.kh * p.kw == 1) return false;
  const int64_t ph1 = p.Ho - 1 + (p.kh - 1) * p.dh + 1 - p.H - p.ph;  // padding after
  const int64_t pw1 = p.Wo - 1 + (p.kw - 1) * p.dw + 1 - p.W - p.pw;
  t = p;
  t.C = p.O; t.H = p.Ho; t.W = p.Wo; t.O = p.C; t.Ho = p.H; t.Wo = p.W;
  t.ph = (p.kh - 1) * p.dh - p.ph;
  t.pw = (p.kw - 1) * p.dw - p.pw;
  return t.ph >= 0 && t.pw >= 0 && (p.kh - 1) * p.dh - ph1 >= 0 && (p.kw - 1) * p.dw - pw1 >= 0;
}

// Whether that convolution runs on the im2col forward path: when the GEMM rows (input
// channels) are many, or the image is read in place (padded pixel numbering); then dX needs no
// col2im.
static bool transposed_conv(const ConvParams& p, ConvParams& t) {
  const int64_t Cg = p.C / p.groups;
  if (!transposed_params(p, t)) return false;
  const ConvGeometry g{p.O / p.groups, t.H, t.W, t.kh, t.kw, 1, 1, t.ph, t.pw, t.dh, t.dw,
                       t.Ho, t.Wo};
  int64_t run;
  return Cg >= 48 || (Cg >= 8 && in_place_order(g, 16, run) != PixelOrder::compact);
}

template <typename T>
static void conv2d_backward_input(const ConvParams& p, const GroupShape& s, const T* dy,
                                  const T* w, T* dx) {
  ConvParams t;
  // by Winograd's transforms (conv_winograd.h), which read w swapped and flipped where it lies
  if (transposed_params(p, t) && winograd_applies<T>(normalized(t)) &&
      winograd_forward(normalized(t), dy, w, static_cast<const T*>(nullptr), dx, false, true))
    return;
  if (transposed_conv(p, t)) {
    AlignedBuffer<T> w_t(p.O * s.KK);
    swapped_flipped_weights(p, 0, 0, p.kh, p.kw, w, w_t.data());
    conv2d_forward(t, dy, w_t.data(), static_cast<const T*>(nullptr), dx);
    return;
  }
  if (conv2d_backward_input_phases(p, dy, w, dx)) return;
  // a thread's buffer: the column gradient of a chunk of images
  const int64_t nb = images_within_limit<T>(p.N, s.P, s.KK * s.P), n_chunks = ceil_div(p.N, nb);
  const Split th = split_threads<T>(n_chunks * p.groups, conv_flops(p, s), s.KK * nb * s.P);
  AlignedBuffer<T> cols(th.outer * s.KK * nb * s.P);
  parallel_for(n_chunks * p.groups, th.outer, [&](int64_t item, int tid) {
    const int64_t n0 = (item / p.groups) * nb, g = item % p.groups;
    const int64_t count = std::min(nb, p.N - n0), ld = count * s.P;
    T* col = cols.data() + tid * s.KK * nb * s.P;
    // colgrad = W_gᵀ dY: lanes of A are kernel rows (stride 1), k runs over output channels
    gemm_driver<T>(s.KK, ld, s.Og, T(1), StridedPacker<T>{w + g * s.Og * s.KK, 1, s.KK},
                   DyPacker<T>{dy + n0 * s.y_image + g * s.Og * s.P, s.y_image, s.P, true}, T(0),
                   col, ld, th.inner);
    for (int64_t b = 0; b < count; ++b) {
      T* dxg = dx + (n0 + b) * s.x_image + g * s.Cg * p.H * p.W;
      std::fill(dxg, dxg + s.Cg * p.H * p.W, T(0));
      col2im_2d(s.geom, col + b * s.P, ld, dxg);
    }
  });
}

template <typename T>
kernels::dot_rows_fn<T> dot_rows_kernel();
template <>
kernels::dot_rows_fn<float> dot_rows_kernel<float>() {
  namespace k = kernels;
  return for_active_path(&k::ref::sdot_rows, FASTBP_X86(k::avx2::sdot_rows),
                         FASTBP_X86(k::avx512::sdot_rows));
}
template <>
kernels::dot_rows_fn<double> dot_rows_kernel<double>() {
  namespace k = kernels;
  return for_active_path(&k::ref::ddot_rows, FASTBP_X86(k::avx2::ddot_rows),
                         FASTBP_X86(k::avx512::ddot_rows));
}

// dW without packing, when the input can be read in place: row (o, q) of dW is the dot product
// of dY's row o, spread onto the computed pixels (padded or row-run numbering, im2col.h) with
// zeros at the dropped ones, with the padded input at tap q's offset (kernels/dot.h). A zero dY
// times an inf or NaN input under a dropped pixel would make NaN, so a result that is not finite
// is left to the packed path (returns false).
constexpr int64_t kDotsMaxChannels = 16;

template <typename T>
static bool conv2d_backward_weight_dots(const ConvParams& p, const GroupShape& s, PixelOrder order,
                                        int64_t run, const T* dy, const T* x, T* dw) {
  constexpr int64_t step = kernels::kDotStep<T>;
  const int64_t image = PaddedInput::phase_image(s.geom), plane = image * p.sh * p.sw;
  const int64_t per_image = pixels_per_image(s.geom, order, run);  // k steps of one image
  const int64_t budget = static_cast<int64_t>(workspace_budget() / sizeof(T));
  const int64_t chunk = std::clamp<int64_t>(
      budget / std::max<int64_t>(p.C * plane + p.O * per_image, 1), 1, std::max<int64_t>(p.N, 1));
  const PaddedInput Lc(s.geom, chunk);
  const int64_t channel = Lc.channel_size(), row_len = round_up(chunk * per_image, step);
  const int64_t Wq = Lc.Wq;
  // zeros after the last channel: the last image's dropped pixels and the rounded-up k reach
  // past it by up to the largest tap offset within a phase plus a run and a step
  const int64_t reach = ((p.kh - 1) * p.dh / p.sh) * Wq + (p.kw - 1) * p.dw / p.sw;
  const int64_t slack = round_up(reach + run + step, 16);
  AlignedBuffer<T> x_pad(p.C * channel + slack), dy_sp(p.O * row_len);
  std::fill(x_pad.data() + p.C * channel, x_pad.data() + p.C * channel + slack, T(0));
  const ConvGeometry one_channel{1, p.H, p.W, p.kh, p.kw, p.sh, p.sw, p.ph, p.pw, p.dh, p.dw,
                                 p.Ho, p.Wo};
  std::vector<int64_t> a_off(s.Og);
  for (int64_t i = 0; i < s.Og; ++i) a_off[i] = i * row_len;
  // with row runs, where each step of k lies in the padded input
  std::vector<int64_t> k_pos;
  if (order == PixelOrder::row_runs)
    for (int64_t k = 0; k < row_len; k += step) {
      const int64_t u = k / run;
      k_pos.push_back((u / p.Ho) * image + (u % p.Ho) * Wq + k % run);
    }
  const int64_t row_pitch = order == PixelOrder::padded ? Wq : run;
  const auto dot = dot_rows_kernel<T>();
  const int nt = conv_flops(p, s) < kGemmMinParallelFlops ? 1 : max_threads();
  // column blocks of dW per group, enough for every thread; a block's results do not depend on
  // how the columns are cut
  const int64_t jb = std::max<int64_t>(4, round_up(ceil_div(s.KK * p.groups, 4 * nt), 4));
  const int64_t blocks = ceil_div(s.KK, jb);
  for (int64_t n0 = 0; n0 < p.N; n0 += chunk) {
    const int64_t count = std::min(chunk, p.N - n0);
    const int64_t K = round_up(count * per_image, step);
    parallel_for(p.C + p.O, nt, [&](int64_t r, int) {
      if (r < p.C) {
        pad_input(one_channel, Lc, x + n0 * s.x_image + r * p.H * p.W, s.x_image, count,
                  x_pad.data() + r * channel);
        return;
      }
      const int64_t o = r - p.C;
      T* row = dy_sp.data() + o * row_len;
      std::fill(row, row + row_len, T(0));
      for (int64_t b = 0; b < count; ++b)
        for (int64_t oh = 0; oh < p.Ho; ++oh) {
          const T* src = dy + (n0 + b) * s.y_image + o * s.P + oh * p.Wo;
          std::copy(src, src + p.Wo, row + b * per_image + oh * row_pitch);
        }
    });
    parallel_for(p.groups * blocks, nt, [&](int64_t item, int) {
      const int64_t g = item / blocks, j0 = (item % blocks) * jb;
      const int64_t n = std::min(jb, s.KK - j0);
      dot(K, dy_sp.data() + g * s.Og * row_len, a_off.data(), s.Og,
          x_pad.data() + g * s.Cg * channel, Lc.tap.data() + j0, n,
          k_pos.empty() ? nullptr : k_pos.data(), n0 == 0 ? T(0) : T(1),
          dw + g * s.Og * s.KK + j0, s.KK);
    });
  }
  if (p.N == 0) std::fill(dw, dw + p.O * s.KK, T(0));
  for (int64_t i = 0; i < p.O * s.KK; ++i)
    if (!std::isfinite(dw[i])) return false;
  return true;
}

// One GEMM per group whose k runs over the pixels of all images, taken as many images at a time
// as the workspace limit allows (the padded copy of all of x could be large); chunks add up
// through beta = 1. The chunking depends on the shape and the limit, never on the threads.
template <typename T>
static void conv2d_backward_weight(const ConvParams& p, const GroupShape& s, const T* dy,
                                   const T* x, T* dw) {
  if (winograd_weight_grad_applies<T>(p) && winograd_weight_grad(p, dy, x, dw)) return;
  if (weight_grad_channels_last_applies(p))
    return conv2d_backward_weight_channels_last(p, dy, x, dw);
  // few output channels per group make GEMM rows that do not pay for packing; dot products
  // need none
  int64_t run = 0;
  const PixelOrder order = in_place_order(s.geom, kernels::kDotStep<T>, run);
  const bool runs_ok = order == PixelOrder::padded ||
                       (order == PixelOrder::row_runs && run % kernels::kDotStep<T> == 0);
  if (s.Og <= kDotsMaxChannels && runs_ok &&
      conv2d_backward_weight_dots(p, s, order, run, dy, x, dw))
    return;
  const int64_t plane = PaddedInput::phase_image(s.geom) * p.sh * p.sw;  // one image, all phases
  const int64_t budget = static_cast<int64_t>(workspace_budget() / sizeof(T));
  const int64_t chunk = std::clamp<int64_t>(budget / std::max<int64_t>(p.C * plane, 1), 1,
                                            std::max<int64_t>(p.N, 1));
  const PaddedInput Lc(s.geom, chunk);  // taps of one group over `chunk` images
  const int64_t channel = Lc.channel_size();
  const ConvGeometry one_channel{1, p.H, p.W, p.kh, p.kw, p.sh, p.sw, p.ph, p.pw, p.dh, p.dw,
                                 p.Ho, p.Wo};
  AlignedBuffer<T> x_pad(p.C * channel);
  if (p.N == 0) std::fill(dw, dw + p.O * s.KK, T(0));
  for (int64_t n0 = 0; n0 < p.N; n0 += chunk) {
    const int64_t count = std::min(chunk, p.N - n0);
    parallel_for(p.C, p.C * count * plane >= 65536 ? max_threads() : 1, [&](int64_t c, int) {
      pad_input(one_channel, Lc, x + n0 * s.x_image + c * p.H * p.W, s.x_image, count,
                x_pad.data() + c * channel);
    });
    const Split th = split_threads<T>(p.groups, conv_flops(p, s), 0);
    parallel_for(p.groups, th.outer, [&](int64_t g, int) {
      gemm_driver<T>(s.Og, s.KK, count * s.P, T(1),
                     DyPacker<T>{dy + n0 * s.y_image + g * s.Og * s.P, s.y_image, s.P, false},
                     ColPacker<T>{s.geom, Lc, x_pad.data() + g * s.Cg * channel},
                     n0 == 0 ? T(0) : T(1), dw + g * s.Og * s.KK, s.KK, th.inner);
    });
  }
}

// db[o] = sum over images and pixels of dY, accumulated in double in a fixed order.
template <typename T>
static void conv2d_backward_bias(const ConvParams& p, const T* dy, T* db) {
  const int64_t P = p.Ho * p.Wo;
  parallel_for(p.O, P * p.N >= 32768 ? max_threads() : 1, [&](int64_t o, int) {
    // each plane's lane sum, then the planes in image order (as the depthwise pass sums them)
    double total = 0.0;
    for (int64_t n = 0; n < p.N; ++n) total += lane_sum(dy + (n * p.O + o) * P, P);
    db[o] = static_cast<T>(total);
  });
}

template <typename T>
void conv2d_backward(const ConvParams& params, const T* dy, const T* x, const T* w, T* dx, T* dw,
                     T* db) {
  const ConvParams p = normalized(params);
  const GroupShape s = group_shape(p);
  if (depthwise_applies(p) && (dx || dw)) return depthwise_backward(p, dy, x, w, dx, dw, db);
  if (dx) conv2d_backward_input(p, s, dy, w, dx);
  if (dw) conv2d_backward_weight(p, s, dy, x, dw);
  if (db) conv2d_backward_bias(p, dy, db);
}

template <typename T>
void conv2d_backward_input(const ConvParams& params, const T* dy, const T* w, T* dx) {
  const ConvParams p = normalized(params);
  if (depthwise_applies(p)) return depthwise_backward(p, dy, static_cast<const T*>(nullptr), w, dx,
                                                      static_cast<T*>(nullptr));
  conv2d_backward_input(p, group_shape(p), dy, w, dx);
}

template void conv2d_forward<float>(const ConvParams&, const float*, const float*, const float*,
                                    float*, bool);
template void conv2d_forward<double>(const ConvParams&, const double*, const double*,
                                     const double*, double*, bool);
template void conv2d_backward<float>(const ConvParams&, const float*, const float*, const float*,
                                     float*, float*, float*);
template void conv2d_backward<double>(const ConvParams&, const double*, const double*,
                                      const double*, double*, double*, double*);
template void conv2d_backward_input<float>(const ConvParams&, const float*, const float*, float*);
template void conv2d_backward_input<double>(const ConvParams&, const double*, const double*,
                                            double*);

}  // namespace fastbp
