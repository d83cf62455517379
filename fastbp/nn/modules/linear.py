"""Linear and Identity."""
from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from ..functional.linear import linear_relu
from .. import init
from ..functional._utils import int_arg
from .module import Module, Parameter, _as_dtype

__all__ = ["Linear", "Identity"]


def init_like_torch(weight, bias, fan_in, rng):
    # torch: kaiming_uniform_(weight, a=sqrt(5)) and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    init.kaiming_uniform_(weight, a=math.sqrt(5), fan_in=fan_in, rng=rng)
    if bias is not None:
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        init.uniform_(bias, -bound, bound, rng)


class Linear(Module):
    """y = x @ weight.T + bias; weight (out_features, in_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 dtype=np.float32, rng=None):
        super().__init__()
        in_features = int_arg("Linear", "in_features", in_features, minimum=0)
        out_features = int_arg("Linear", "out_features", out_features, minimum=0)
        self.in_features, self.out_features = in_features, out_features
        dtype = _as_dtype(dtype)
        self.weight = Parameter(np.empty((out_features, in_features), dtype))
        self.bias = Parameter(np.empty(out_features, dtype)) if bias else None
        init_like_torch(self.weight, self.bias, in_features, rng)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def forward_relu(self, x):
        """relu(self(x)) in one pass (nn.Sequential's fusion)."""
        return linear_relu(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Identity(Module):
    """Returns its input; takes (and ignores) any constructor arguments, as torch."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x
