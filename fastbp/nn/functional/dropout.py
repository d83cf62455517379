"""Dropout with its own generator, which fastbp.manual_seed reseeds."""
from __future__ import annotations

import numpy as np

from ...tensor import Function, Tensor
from .. import init
from ._utils import flag_arg, real_arg, tensor_arg

__all__ = ["dropout"]


class _Dropout(Function):
    def forward(self, x, p):
        if p == 1:
            self.mask = np.zeros((), x.dtype)
            return np.zeros_like(x)
        keep = init.dropout_rng().random(x.shape, dtype=np.float32) >= np.float32(p)
        self.mask = keep * x.dtype.type(1 / (1 - p))  # kept elements scaled by 1 / (1 - p)
        return x * self.mask

    def backward(self, g):
        return g * self.mask


def dropout(input, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability p and scale the rest by 1 / (1 - p) when training;
    the identity otherwise."""
    p = real_arg("dropout", "p", p)
    if not 0 <= p <= 1:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got p={p}")
    input = tensor_arg("dropout", "input", input)
    training = flag_arg("dropout", "training", training)
    flag_arg("dropout", "inplace", inplace)
    if not training or p == 0:
        return input
    if not np.issubdtype(input.dtype, np.floating):
        raise TypeError(f"dropout: input must be floating-point, got {input.dtype}")
    return _Dropout.apply(input, p=float(p))
