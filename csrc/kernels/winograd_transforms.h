// The 1-d transforms of Winograd's F(2, r) (winograd.h gives the matrices), on n = r + 1 values
// of any type whose arithmetic X provides (X::add, X::sub, X::mul, X::splat): one lane's scalar
// (Scalar) in the portable kernels and the drivers, a vector of lanes in the AVX-512 ones. The
// 2-d transforms apply them along rows, then along columns, so every ISA computes each element
// by the same sequence.
//
// The weight gradient runs F(r, 2) on the same n points: its input transform is Bᵀ, the one
// above; `grad` takes 2 output gradients to n values (G₂, n x 2) and `weight_grad` n sums to the
// r taps (A_rᵀ, r x n).
#pragma once

namespace fastbp::kernels {

template <typename T>
struct Scalar {  // one lane's arithmetic
  using V = T;
  static T add(T a, T b) { return a + b; }
  static T sub(T a, T b) { return a - b; }
  static T mul(T a, T b) { return a * b; }
  static T splat(T x) { return x; }
};

template <class X, int R>
struct Winograd1d;

template <class X>
struct Winograd1d<X, 3> {
  using V = typename X::V;
  static void input(const V* d, V* v) {  // v = Bᵀ d
    v[0] = X::sub(d[0], d[2]);
    v[1] = X::add(d[1], d[2]);
    v[2] = X::sub(d[2], d[1]);
    v[3] = X::sub(d[1], d[3]);
  }
  static void output(const V* m, V* y) {  // y = Aᵀ m
    y[0] = X::add(X::add(m[0], m[1]), m[2]);
    y[1] = X::sub(X::sub(m[1], m[2]), m[3]);
  }
  static void weight(const V* g, V* u) {  // u = G g
    const V h = X::splat(0.5);
    u[0] = g[0];
    u[1] = X::mul(h, X::add(X::add(g[0], g[1]), g[2]));
    u[2] = X::mul(h, X::add(X::sub(g[0], g[1]), g[2]));
    u[3] = g[2];
  }
  static void grad(const V* d, V* v) {  // v = G₂ d, G₂ = [1 0; ½ ½; ½ -½; 0 -1]
    const V h = X::splat(0.5);
    v[0] = d[0];
    v[1] = X::mul(h, X::add(d[0], d[1]));
    v[2] = X::mul(h, X::sub(d[0], d[1]));
    v[3] = X::sub(X::splat(0), d[1]);
  }
  static void weight_grad(const V* m, V* w) {  // w = A_rᵀ m, A_rᵀ = [1 1 1 0; 0 1 -1 0; 0 1 1 1]
    w[0] = X::add(X::add(m[0], m[1]), m[2]);
    w[1] = X::sub(m[1], m[2]);
    w[2] = X::add(X::add(m[1], m[2]), m[3]);
  }
};

template <class X>
struct Winograd1d<X, 5> {
  using V = typename X::V;
  // Products by 2 and 4 are exact, so each row costs one rounding per add.
  static void input(const V* d, V* v) {
    const V two = X::splat(2), four = X::splat(4);
    const V d4_d2 = X::sub(d[4], d[2]), d1_d3 = X::sub(d[1], d[3]);
    v[0] = X::add(X::mul(four, X::sub(d[0], d[2])), d4_d2);         // 4d0 - 5d2 + d4
    v[1] = X::sub(X::mul(four, X::add(d[1], d[2])), X::add(d[3], d[4]));
    v[2] = X::add(X::mul(four, X::sub(d[2], d[1])), X::sub(d[3], d[4]));
    v[3] = X::sub(d4_d2, X::mul(two, d1_d3));                        // -2d1 - d2 + 2d3 + d4
    v[4] = X::add(X::mul(two, d1_d3), d4_d2);                        // 2d1 - d2 - 2d3 + d4
    v[5] = X::add(X::mul(four, d1_d3), X::sub(d[5], d[3]));          // 4d1 - 5d3 + d5
  }
  static void output(const V* m, V* y) {
    y[0] = X::add(X::add(m[0], X::add(m[1], m[2])), X::add(m[3], m[4]));
    y[1] = X::add(X::add(X::sub(m[1], m[2]), X::mul(X::splat(2), X::sub(m[3], m[4]))), m[5]);
  }
  static void weight(const V* g, V* u) {
    const V even = X::add(X::add(g[0], g[2]), g[4]), odd = X::add(g[1], g[3]);
    const V even4 = X::add(X::add(g[0], X::mul(X::splat(4), g[2])), X::mul(X::splat(16), g[4]));
    const V odd4 = X::add(X::mul(X::splat(2), g[1]), X::mul(X::splat(8), g[3]));
    const V sixth = X::splat(1.0 / 6), twentyfourth = X::splat(1.0 / 24);
    u[0] = X::mul(X::splat(0.25), g[0]);
    u[1] = X::mul(sixth, X::add(even, odd));
    u[2] = X::mul(sixth, X::sub(even, odd));
    u[3] = X::mul(twentyfourth, X::add(even4, odd4));
    u[4] = X::mul(twentyfourth, X::sub(even4, odd4));
    u[5] = g[4];
  }
  // G₂ = [¼ 0; ⅙ ⅙; ⅙ -⅙; 1/24 1/12; 1/24 -1/12; 0 1]
  static void grad(const V* d, V* v) {
    const V sixth = X::splat(1.0 / 6), twentyfourth = X::splat(1.0 / 24);
    const V twice = X::mul(X::splat(2), d[1]);
    v[0] = X::mul(X::splat(0.25), d[0]);
    v[1] = X::mul(sixth, X::add(d[0], d[1]));
    v[2] = X::mul(sixth, X::sub(d[0], d[1]));
    v[3] = X::mul(twentyfourth, X::add(d[0], twice));
    v[4] = X::mul(twentyfourth, X::sub(d[0], twice));
    v[5] = d[1];
  }
  // A_rᵀ = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 0; 0 1 1 16 16 1]
  static void weight_grad(const V* m, V* w) {
    const V p = X::add(m[1], m[2]), q = X::sub(m[1], m[2]);
    const V s = X::add(m[3], m[4]), u = X::sub(m[3], m[4]);
    w[0] = X::add(X::add(m[0], p), s);
    w[1] = X::add(q, X::mul(X::splat(2), u));
    w[2] = X::add(p, X::mul(X::splat(4), s));
    w[3] = X::add(q, X::mul(X::splat(8), u));
    w[4] = X::add(X::add(p, X::mul(X::splat(16), s)), m[5]);
  }
};

}  // namespace fastbp::kernels
