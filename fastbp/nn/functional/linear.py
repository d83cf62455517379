"""The linear layer on fastbp's GEMM."""
from __future__ import annotations

import numpy as np

from ... import functional as _kernels
from ...tensor import Function, Tensor

__all__ = ["linear"]


class _Linear(Function):
    """linear, or with relu=True relu(linear) in one pass (as conv.py's _ConvNd)."""

    def forward(self, x, weight, bias=None, *, relu=False):
        self.x, self.weight, self.has_bias = x, weight, bias is not None
        out = _kernels.linear(x, weight, bias, activation="relu" if relu else None)
        self.passes = ~(out <= 0) if relu and any(self.needs_grad) else None
        return out

    def backward(self, g):
        if self.passes is not None:
            g = g * self.passes
        needs = self.needs_grad
        gx, gw, gb = _kernels.linear_backward(
            np.ascontiguousarray(g), self.x, self.weight, input_grad=needs[0],
            weight_grad=needs[1], bias_grad=self.has_bias and needs[2])
        return (gx, gw, gb) if self.has_bias else (gx, gw)


def linear(input, weight, bias=None) -> Tensor:
    """input (..., in), weight (out, in): input @ weight.T + bias."""
    return _Linear.apply(input, weight) if bias is None else _Linear.apply(input, weight, bias)


def linear_relu(input, weight, bias=None) -> Tensor:
    """relu(linear(...)) in one pass, the same values and gradients."""
    tensors = (input, weight) if bias is None else (input, weight, bias)
    return _Linear.apply(*tensors, relu=True)
