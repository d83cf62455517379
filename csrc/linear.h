// Linear layer, Y = X W^T + b, with X (B x I), W (O x I), Y (B x O), dense row-major:
// dX = dY W, dW = dY^T X, db = column sums of dY. Gradients passed as null are skipped.
#pragma once
#include <cstdint>

namespace fastbp {

// With relu, Y = relu(X W^T + b), applied as each tile of Y is finished.
template <typename T>
void linear_forward(int64_t B, int64_t I, int64_t O, const T* x, const T* w, const T* bias, T* y,
                    bool relu = false);

template <typename T>
void linear_backward(int64_t B, int64_t I, int64_t O, const T* dy, const T* x, const T* w, T* dx,
                     T* dw, T* db);

}  // namespace fastbp
