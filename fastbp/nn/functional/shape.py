"""Shape ops of nn.functional: flatten and constant padding."""
from __future__ import annotations

import math

import numpy as np

from ...tensor import Function, Tensor
from ._utils import check_size, choice_arg, ntuple, tensor_arg, wrap_dim

__all__ = ["flatten", "pad"]


def flatten(input, start_dim: int = 1, end_dim: int = -1) -> Tensor:
    input = tensor_arg("flatten", "input", input)
    nd = max(input.ndim, 1)  # a 0-d input counts as 1-d, as in torch
    start, end = wrap_dim(start_dim, nd, "start_dim"), wrap_dim(end_dim, nd, "end_dim")
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} "
                         f"for a {input.ndim}-d input")
    shape = input.shape
    if not input.ndim:
        return input.reshape(1)
    # the product, not -1, which an empty tensor leaves undetermined: (0, 16, 64) -> (0, 1024)
    return input.reshape(shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:])


class _Pad(Function):
    """Constant padding; negative amounts crop. src/dst are the slices of x and of the output
    that hold the same elements."""

    def forward(self, x, pairs, value):
        out_shape, src, dst = [], [], []
        for n, (lo, hi) in zip(x.shape, pairs):
            size = n + lo + hi
            if size < 0:
                raise ValueError(f"pad: padding {pairs} makes a dim of size {n} negative "
                                 f"(input shape {x.shape})")
            out_shape.append(size)
            src.append(slice(max(-lo, 0), n - max(-hi, 0)))
            dst.append(slice(max(lo, 0), size - max(hi, 0)))
        out = np.full(out_shape, value, x.dtype)
        self.src, self.dst, self.shape = tuple(src), tuple(dst), x.shape
        out[self.dst] = x[self.src]
        return out

    def backward(self, g):
        gx = np.zeros(self.shape, g.dtype)
        gx[self.src] = g[self.dst]
        return gx


def pad(input, pad, mode: str = "constant", value=None) -> Tensor:
    """As torch.nn.functional.pad in constant mode: pad = (last_lo, last_hi, prev_lo, prev_hi,
    ...) from the last dim backwards; causal padding of a conv1d is pad(x, ((k - 1) * d, 0))."""
    input = tensor_arg("pad", "input", input)
    choice_arg("pad", "mode", mode, ("constant",))
    if not isinstance(pad, (tuple, list)):
        raise TypeError(f"pad: pad must be a tuple of ints, got {pad!r}")
    pad = ntuple(pad, len(pad), "pad", "pad")
    if value is not None and (isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating))):
        raise TypeError(f"pad: value must be a number, got {value!r}")
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(f"pad: padding length {len(pad)} must be even and at most twice the "
                         f"number of dims ({input.ndim}, input shape {input.shape})")
    pairs = [(0, 0)] * input.ndim
    for i in range(len(pad) // 2):
        pairs[input.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    check_size("pad", "output", [max(n + lo + hi, 0) for n, (lo, hi) in zip(input.shape, pairs)])
    return _Pad.apply(input, pairs=tuple(pairs), value=0 if value is None else value)
