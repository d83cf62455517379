// Block sizes as data: one row per ISA and dtype (values in blocking.cpp).
#pragma once
#include <cstdint>

#include "../dispatch.h"
#include "../kernels/epilogue.h"
#include "../kernels/transpose.h"
#include "../kernels/ukernel.h"

namespace fastbp {

template <typename T>
struct GemmBlocking {
  int mr, nr;      // micro-tile: rows of A / columns of B per kernel call
  int64_t mc;      // rows of C per task at most (the task packs mc x kc of A)
  int64_t kc;      // depth of one packed panel; the A sliver (mr x kc) stays in L1
  int64_t nc;      // columns of C per task at most; its B block (kc x nc) stays in L2
  kernels::gemm_ukernel<T> kernel;
  kernels::gemm_ukernel_rows<T> rows_kernel = nullptr;  // B (and A) in place, where the ISA has one
  const GemmBlocking* wide = nullptr;  // an 8-row tile for M = 8k, where the ISA has one
  int64_t kc_in_place = 0;  // depth of a slice when the rows kernel reads A and B in place
};

template <typename T>
const GemmBlocking<T>& gemm_blocking(Capability c);

// The blocking for a product of M rows: the ISA's main tile, or its wide tile where that has
// fewer rows to spare (M a multiple of 8 but not of 12). Depends on M and the path only.
template <typename T>
const GemmBlocking<T>& gemm_blocking_for_rows(Capability c, int64_t M);

// The path's bias-and-relu kernel (kernels/epilogue.h): the GEMM's epilogue and the
// convolution's write-out.
template <typename T>
kernels::bias_rows_fn<T> bias_rows_kernel();

// The path's transpose kernel (kernels/transpose.h): packing of lanes that run along k, and
// the channels-last reorders.
template <typename T>
kernels::transpose_fn<T> transpose_kernel();

}  // namespace fastbp
