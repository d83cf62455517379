// Portable depthwise kernel bodies (contract: depthwise.h) on GCC/Clang vector types as wide as
// the registers of the ISA flags each kernel file is built with: one zmm (64 bytes), one ymm
// (32) or one xmm (16; NEON on ARM). Wider types than the registers cost far more than their
// width: GCC kept 64-byte accumulators on the stack under AVX2 flags and moved them through
// general registers on every tap (AVX2 ran slower than ref).
// Include only inside an anonymous namespace, as generic_ukernel.h.
#pragma once
// Vectors are passed by value between these inline helpers, all inside one kernel file; GCC's
// note that this ABI differs between ISAs concerns calls across files only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
#include <cstdint>

#if defined(__AVX512F__)
constexpr int kDepthwiseVectorBytes = 64;
#elif defined(__AVX__)
constexpr int kDepthwiseVectorBytes = 32;
#else
constexpr int kDepthwiseVectorBytes = 16;
#endif

template <typename T>
struct Vec {
  static constexpr int B = kDepthwiseVectorBytes;
  typedef T type __attribute__((vector_size(B)));
  // the same vector at any element-aligned address (plain vector moves, no memcpy call)
  typedef T unaligned __attribute__((vector_size(B), aligned(alignof(T)), may_alias));
  static constexpr int L = B / sizeof(T);
  static type load(const T* p) { return *reinterpret_cast<const unaligned*>(p); }
  static void store(T* p, type v) { *reinterpret_cast<unaligned*>(p) = v; }
  static type splat(T x) { return type{} + x; }
};

// One vector of outputs [i, i + L).
template <typename T>
inline typename Vec<T>::type row_vector(const T* __restrict src, const int64_t* off,
                                        const T* w, int64_t taps, T init, int64_t i) {
  using V = Vec<T>;
  typename V::type a = V::splat(init);
  for (int64_t t = 0; t < taps; ++t) a += V::splat(w[t]) * V::load(src + off[t] + i);
  return a;
}

// relu of a vector as a select: negatives to zero, NaN and -0.0 kept (as torch)
template <typename T>
inline typename Vec<T>::type relu_vector(typename Vec<T>::type a) {
  const typename Vec<T>::type zero = Vec<T>::splat(T(0));
  return a < zero ? zero : a;
}

// Rows of a plane with K taps known at compile time, unrolled, their weights and offsets held
// in registers across the rows. Each output is the same chain as row's (init, then the taps in
// order), so the bits are the same.
template <typename T, int K>
void depthwise_rows_fixed(const T* __restrict src, int64_t src_pitch, const int64_t* off_,
                          const T* w, T init, bool relu, T* __restrict dst, int64_t dst_pitch,
                          int64_t n, int64_t rows) {
  using V = Vec<T>;
  using v = typename V::type;
  constexpr int L = V::L;
  v wt[K];
  int64_t off[K];
  for (int t = 0; t < K; ++t) {
    wt[t] = V::splat(w[t]);
    off[t] = off_[t];
  }
  const auto out = [relu](v a) { return relu ? relu_vector<T>(a) : a; };
  const auto one = [&](const T* s, int64_t i) {
    v a = V::splat(init);
#pragma GCC unroll 32
    for (int t = 0; t < K; ++t) a += wt[t] * V::load(s + off[t] + i);
    return a;
  };
  for (int64_t r = 0; r < rows; ++r) {
    const T* s = src + r * src_pitch;
    T* d = dst + r * dst_pitch;
    int64_t i = 0;
    for (; i + 2 * L <= n; i += 2 * L) {  // two vectors of outputs at a time
      v a0 = V::splat(init), a1 = a0;
#pragma GCC unroll 32
      for (int t = 0; t < K; ++t) {
        a0 += wt[t] * V::load(s + off[t] + i);
        a1 += wt[t] * V::load(s + off[t] + i + L);
      }
      V::store(d + i, out(a0));
      V::store(d + i + L, out(a1));
    }
    for (; i + L <= n; i += L) V::store(d + i, out(one(s, i)));
    if (i < n) V::store(d + n - L, out(one(s, n - L)));  // overlaps, as in row
  }
}

template <typename T>
void depthwise_row(const T* __restrict src, const int64_t* off, const T* w, int64_t taps, T init,
                   bool relu, T* __restrict dst, int64_t n) {
  using V = Vec<T>;
  using v = typename V::type;
  constexpr int L = V::L;
  const auto out = [relu](v a) { return relu ? relu_vector<T>(a) : a; };
  if (n < L) {  // one vector computed, n values stored
    const v a = out(row_vector(src, off, w, taps, init, 0));
    for (int64_t i = 0; i < n; ++i) dst[i] = a[i];
    return;
  }
  int64_t i = 0;
  for (; i + 4 * L <= n; i += 4 * L) {  // four vectors of outputs stay in registers
    v a0 = V::splat(init), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t t = 0; t < taps; ++t) {
      const v wt = V::splat(w[t]);
      const T* s = src + off[t] + i;
      a0 += wt * V::load(s);
      a1 += wt * V::load(s + L);
      a2 += wt * V::load(s + 2 * L);
      a3 += wt * V::load(s + 3 * L);
    }
    V::store(dst + i, out(a0));
    V::store(dst + i + L, out(a1));
    V::store(dst + i + 2 * L, out(a2));
    V::store(dst + i + 3 * L, out(a3));
  }
  for (; i + L <= n; i += L) V::store(dst + i, out(row_vector(src, off, w, taps, init, i)));
  // the last vector overlaps the previous one: its outputs are computed again, identically
  if (i < n) V::store(dst + n - L, out(row_vector(src, off, w, taps, init, n - L)));
}

template <typename T>
void depthwise_wgrad(const T* __restrict src, const int64_t* off, int64_t taps,
                     const T* __restrict dy, int64_t n, T* acc) {
  using V = Vec<T>;
  using v = typename V::type;
  constexpr int L = V::L;
  for (int64_t t = 0; t < taps; ++t) {
    const T* s = src + off[t];
    v p0{}, p1{};
    int64_t i = 0;
    for (; i + 2 * L <= n; i += 2 * L) {
      p0 += V::load(dy + i) * V::load(s + i);
      p1 += V::load(dy + i + L) * V::load(s + i + L);
    }
    if (i < n) p0 += V::load(dy + i) * V::load(s + i);
    p0 += p1;
    T sum = 0;
    for (int l = 0; l < L; ++l) sum += p0[l];  // a fixed order
    acc[t] += sum;
  }
}

template <typename T>
void depthwise_xgrad(T* __restrict dst, const int64_t* off, const T* w, int64_t taps,
                     const T* __restrict dy, int64_t n) {
  using V = Vec<T>;
  constexpr int L = V::L;
  for (int64_t t = 0; t < taps; ++t) {
    const auto wt = V::splat(w[t]);
    T* d = dst + off[t];
    for (int64_t i = 0; i < n; i += L) V::store(d + i, V::load(d + i) + wt * V::load(dy + i));
  }
}

// rows (depthwise.h): 3x3 and 5x5, the common depthwise kernels, unrolled; others row by row.
template <typename T>
void depthwise_rows(const T* src, int64_t src_pitch, const int64_t* off, const T* w, int64_t taps,
                    T init, bool relu, T* dst, int64_t dst_pitch, int64_t n, int64_t rows) {
  constexpr int64_t L = Vec<T>::L;
  if (taps == 9 && n >= L)
    return depthwise_rows_fixed<T, 9>(src, src_pitch, off, w, init, relu, dst, dst_pitch, n, rows);
  if (taps == 25 && n >= L)
    return depthwise_rows_fixed<T, 25>(src, src_pitch, off, w, init, relu, dst, dst_pitch, n, rows);
  for (int64_t r = 0; r < rows; ++r)
    depthwise_row(src + r * src_pitch, off, w, taps, init, relu, dst + r * dst_pitch, n);
}

template <typename T>
constexpr fastbp::kernels::DepthwiseKernels<T> generic_depthwise_kernels() {
  return {depthwise_row<T>, depthwise_rows<T>, depthwise_wgrad<T>, depthwise_xgrad<T>};
}
