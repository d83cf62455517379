// A strided batch of GEMMs in one call: for b < batch,
//   C_b = alpha * A_b B_b + beta * C_b,  A_b = A + b*bs_a (M x K, element strides rs_a, cs_a),
//   B_b = B + b*bs_b (K x N, rs_b, cs_b), C_b = C + b*bs_c (M x N, row stride ldc, unit columns).
// A batch stride of 0 broadcasts one matrix over the batch; negative strides are fine.
#pragma once
#include <cstdint>

#include "../parallel.h"

namespace fastbp {

template <typename T>
void gemm_batched(int64_t batch, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                  int64_t bs_a, int64_t rs_a, int64_t cs_a, const T* B, int64_t bs_b,
                  int64_t rs_b, int64_t cs_b, T beta, T* C, int64_t bs_c, int64_t ldc,
                  int nthreads = max_threads());

}  // namespace fastbp
