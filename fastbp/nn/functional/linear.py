"""The linear layer on fastbp's GEMM."""
from __future__ import annotations

import numpy as np

from ... import functional as _kernels
from ...tensor import Function, Tensor

__all__ = ["linear"]


class _Linear(Function):
    def forward(self, x, weight, bias=None):
        self.x, self.weight, self.has_bias = x, weight, bias is not None
        return _kernels.linear(x, weight, bias)

    def backward(self, g):
        needs = self.needs_grad
        gx, gw, gb = _kernels.linear_backward(
            np.ascontiguousarray(g), self.x, self.weight, input_grad=needs[0],
            weight_grad=needs[1], bias_grad=self.has_bias and needs[2])
        return (gx, gw, gb) if self.has_bias else (gx, gw)


def linear(input, weight, bias=None) -> Tensor:
    """input (..., in), weight (out, in): input @ weight.T + bias."""
    return _Linear.apply(input, weight) if bias is None else _Linear.apply(input, weight, bias)
