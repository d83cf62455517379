"""The differentiable ops behind Tensor's methods: elementwise arithmetic, reductions, shape
changes, indexing and batched matmul, one Function each with forward and backward together.
Elementwise and reduction work is numpy's; every matrix product runs on fastbp's GEMM."""
from __future__ import annotations

import operator
from collections import namedtuple
from typing import Any

import numpy as np

from . import functional as _kernels
from .tensor import (Function, Tensor, _promote, _scalar_dtype, as_tensor, unbroadcast)

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


class IndexRangeError(IndexError, ValueError):
    """An index or dim out of range: an IndexError as torch raises, and a ValueError as fastbp
    raises for every bad argument."""


def wrap_dim(dim, nd: int, name: str = "dim") -> int:
    """A dim in [-nd, nd) as a non-negative index; out of range raises IndexError like torch."""
    if isinstance(dim, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int, got {dim!r}")
    try:
        dim = operator.index(dim)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {dim!r}") from None
    n = max(nd, 1)
    if not -n <= dim < n:
        raise IndexRangeError(f"{name}: Dimension out of range (expected to be in range of "
                              f"[{-n}, {n - 1}], but got {dim})")
    return dim % n


def reduce_dims(nd: int, dim) -> tuple:
    """dim (None, an int or a sequence) as a sorted tuple of non-negative dims."""
    if dim is None:
        return tuple(range(nd))
    dims = dim if isinstance(dim, (tuple, list)) else (dim,)
    return tuple(sorted({wrap_dim(d, nd) for d in dims})) if nd else ()


# --- arithmetic -------------------------------------------------------------------------------
class Add(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        a, b = _promote(a, b)
        return a + b

    def backward(self, g):
        return unbroadcast(g, self.shapes[0]), unbroadcast(g, self.shapes[1])


class Sub(Function):
    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        a, b = _promote(a, b)
        return a - b

    def backward(self, g):
        return unbroadcast(g, self.shapes[0]), unbroadcast(-g, self.shapes[1])


class Mul(Function):
    def forward(self, a, b):
        a, b = _promote(a, b)
        self.a = a if self.needs_grad[1] else None  # keep only what a gradient needs
        self.b = b if self.needs_grad[0] else None
        self.shapes = a.shape, b.shape
        return a * b

    def backward(self, g):
        ga = unbroadcast(g * self.b, self.shapes[0]) if self.needs_grad[0] else None
        gb = unbroadcast(g * self.a, self.shapes[1]) if self.needs_grad[1] else None
        return ga, gb


class Div(Function):
    def forward(self, a, b):
        self.a, self.b = a, b = _promote(a, b, floating=True)  # true division, as in torch
        return a / b

    def backward(self, g):
        ga = unbroadcast(g / self.b, self.a.shape) if self.needs_grad[0] else None
        gb = unbroadcast(-g * self.a / (self.b * self.b), self.b.shape) if self.needs_grad[1] else None
        return ga, gb


class Neg(Function):
    def forward(self, a):
        return -a

    def backward(self, g):
        return -g


class Pow(Function):
    """a ** a python number; the exponent is a wrapped scalar for dtype purposes, so float32
    stays float32 even for a np.float64 exponent, and int ** float is float32."""

    def forward(self, a, exponent):
        dtype = _scalar_dtype(exponent, a.dtype)
        a = a.astype(dtype, copy=False)
        self.a, self.exponent = a, dtype.type(exponent)
        return a ** self.exponent

    def backward(self, g):
        if self.exponent == 0:
            return np.zeros_like(g)  # d(x**0)/dx = 0 everywhere, also at x = 0 (torch does so)
        if self.exponent == 2:
            return g * (2 * self.a)
        return g * self.exponent * self.a ** (self.exponent - 1)


class PowTensor(Function):
    """a ** b for two tensors: d/da = b a^(b-1), d/db = a^b log(a) (0 where a = 0, as torch)."""

    def forward(self, a, b):
        self.a, self.b = a, b = _promote(a, b, floating=True)
        self.out = a ** b
        return self.out

    def backward(self, g):
        a, b = self.a, self.b
        ga = unbroadcast(g * b * a ** (b - 1), a.shape) if self.needs_grad[0] else None
        gb = None
        if self.needs_grad[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                log_a = np.where(a == 0, np.zeros((), a.dtype), np.log(np.where(a == 0, 1, a)))
            gb = unbroadcast(g * self.out * log_a, b.shape)
        return ga, gb


class Exp(Function):
    def forward(self, a):
        self.out = np.exp(a)
        return self.out

    def backward(self, g):
        return g * self.out


class Log(Function):
    def forward(self, a):
        self.a = a
        return np.log(a)

    def backward(self, g):
        return g / self.a


class Sqrt(Function):
    def forward(self, a):
        self.out = np.sqrt(a)
        return self.out

    def backward(self, g):
        return g / (2 * self.out)


class Abs(Function):
    def forward(self, a):
        self.sign = np.sign(a)  # 0 at 0: torch's gradient of abs there
        return np.abs(a)

    def backward(self, g):
        return g * self.sign


class Clamp(Function):
    """The gradient passes where low <= x <= high (at the bounds too, as torch)."""

    def forward(self, a, low, high):
        out = a
        if low is not None:
            out = np.maximum(out, np.asarray(low, a.dtype))
        if high is not None:
            out = np.minimum(out, np.asarray(high, a.dtype))
        self.passes = np.ones(a.shape, bool)
        if low is not None:
            self.passes &= a >= low
        if high is not None:
            self.passes &= a <= high
        return out

    def backward(self, g):
        return np.where(self.passes, g, np.zeros((), g.dtype))


class MaskedFill(Function):
    def forward(self, a, mask, value):
        self.mask = np.broadcast_to(mask, a.shape)
        return np.where(self.mask, np.asarray(value, a.dtype), a)

    def backward(self, g):
        return np.where(self.mask, np.zeros((), g.dtype), g)


class Where(Function):
    def forward(self, a, b, condition):
        self.shapes = a.shape, b.shape
        self.condition = condition
        a, b = _promote(a, b)
        return np.where(condition, a, b)

    def backward(self, g):
        zero = np.zeros((), g.dtype)
        return (unbroadcast(np.where(self.condition, g, zero), self.shapes[0]),
                unbroadcast(np.where(self.condition, zero, g), self.shapes[1]))


def where(condition, input, other) -> Tensor:
    """input where condition holds, else other (both broadcast), as torch.where."""
    condition = np.asarray(condition.data if isinstance(condition, Tensor) else condition, bool)
    input = as_tensor(input, other if isinstance(other, Tensor) else None)
    return Where.apply(input, as_tensor(other, input), condition=condition)


class Cast(Function):
    def forward(self, a, dtype):
        self.dtype = a.dtype
        return a.astype(dtype)

    def backward(self, g):
        return g.astype(self.dtype)


# --- matmul -----------------------------------------------------------------------------------
def _matmul(a, b):
    """a @ b on fastbp's GEMM for float operands of one dtype, numpy's matmul otherwise."""
    if a.dtype in _FLOATS and a.dtype == b.dtype:
        return _kernels.batched_matmul(a, b)
    return np.matmul(a, b)


class MatMul(Function):
    """numpy.matmul semantics: 1-d operands are promoted, leading dims broadcast. Every product,
    forward and backward, is one call into fastbp's batched GEMM."""

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise RuntimeError(f"matmul: both arguments need at least 1 dimension, got shapes "
                               f"{a.shape} and {b.shape}")
        a, b = _promote(a, b)
        self.a = a if self.needs_grad[1] else None
        self.b = b if self.needs_grad[0] else None
        self.shapes = a.shape, b.shape
        return _matmul(a, b)

    def backward(self, g):
        (sa, sb), a, b = self.shapes, self.a, self.b
        # restore the unit dims that matmul dropped for 1-d operands
        if len(sb) == 1:
            g = g[..., None]
        if len(sa) == 1:
            g = g[..., None, :]
        ga = gb = None
        if b is not None:  # kept when a needs a gradient
            b2 = b[:, None] if b.ndim == 1 else b
            ga = unbroadcast(_matmul(g, np.swapaxes(b2, -1, -2)), (1,) + sa if len(sa) == 1 else sa)
            ga = ga.reshape(sa)
        if a is not None:  # kept when b needs a gradient
            a2 = a[None, :] if a.ndim == 1 else a
            sb2 = sb + (1,) if len(sb) == 1 else sb
            if len(sb2) == 2 and a2.ndim > 2:  # a 2-d b under a batch: one GEMM over all rows
                k, n = a2.shape[-1], g.shape[-1]
                gb = _kernels.matmul(a2.reshape(-1, k), g.reshape(-1, n), trans_a=True) \
                    if a2.dtype in _FLOATS else a2.reshape(-1, k).T @ g.reshape(-1, n)
            else:
                gb = unbroadcast(_matmul(np.swapaxes(a2, -1, -2), g), sb2)
            gb = gb.reshape(sb)
        return ga, gb


# --- reductions -------------------------------------------------------------------------------
class Sum(Function):
    def forward(self, a, dims, keepdim):
        self.shape, self.dims, self.keepdim = a.shape, dims, keepdim
        return np.asarray(a.sum(axis=dims, keepdims=keepdim))

    def backward(self, g):
        if not self.keepdim:
            g = np.expand_dims(g, self.dims)
        return np.broadcast_to(g, self.shape)


class Mean(Function):
    def forward(self, a, dims, keepdim):
        self.shape, self.dims, self.keepdim = a.shape, dims, keepdim
        if not np.issubdtype(a.dtype, np.floating):
            raise RuntimeError(f"mean: expected a floating-point tensor, got {a.dtype}")
        self.count = int(np.prod([a.shape[d] for d in dims]))
        return np.asarray(a.mean(axis=dims, keepdims=keepdim))

    def backward(self, g):
        if not self.keepdim:
            g = np.expand_dims(g, self.dims)
        return np.broadcast_to(g / max(self.count, 1), self.shape)


class _Extreme(Function):
    """Max or min along one dim at the given indices; the gradient goes to those positions."""

    def forward(self, a, index, dim, keepdim):
        self.index, self.dim, self.keepdim, self.shape = index, dim, keepdim, a.shape
        values = np.take_along_axis(a, index, dim)
        return values if keepdim else values.squeeze(dim)

    def backward(self, g):
        if not self.keepdim:
            g = np.expand_dims(g, self.dim)
        out = np.zeros(self.shape, g.dtype)
        np.put_along_axis(out, self.index, g, self.dim)
        return out


class _ExtremeAll(Function):
    """Max or min of all elements; the gradient is shared evenly by the tied extremes (torch)."""

    def forward(self, a, largest):
        if a.size == 0:
            raise RuntimeError(f"{'max' if largest else 'min'}(): expected a non-empty tensor; "
                               f"pass a dim for an empty one (shape {a.shape})")
        value = (np.max if largest else np.min)(a)
        self.hits = np.isnan(a) if np.isnan(value) else a == value
        return np.asarray(value)

    def backward(self, g):
        return self.hits * (g / np.count_nonzero(self.hits)).astype(g.dtype)


_MaxResult = namedtuple("max", ["values", "indices"])  # type: ignore[name-match]
_MinResult = namedtuple("min", ["values", "indices"])  # type: ignore[name-match]
values_indices: dict[bool, Any] = {True: _MaxResult, False: _MinResult}


def extreme(t: Tensor, dim, keepdim: bool, largest: bool):
    """t.max() / t.min(): without dim the extreme element, with dim (values, indices)."""
    if dim is None:
        return _ExtremeAll.apply(t, largest=largest)
    dim = wrap_dim(dim, t.ndim)
    index = _arg_index(t.data, dim, largest)
    values = _Extreme.apply(t, index=index, dim=dim, keepdim=keepdim)
    return values_indices[largest](values, Tensor(index if keepdim else index.squeeze(dim)))


def _arg_index(a, dim, largest):
    """Index of the first extreme along dim (a NaN counts as the extreme, as in torch), kept dim."""
    if a.ndim and a.shape[dim] == 0:
        raise IndexError(f"cannot take the {'max' if largest else 'min'} over dim {dim} of size 0 "
                         f"(shape {a.shape})")
    return (np.argmax if largest else np.argmin)(a, axis=dim, keepdims=True).astype(np.int64)


def arg_extreme(t: Tensor, dim, keepdim: bool, largest: bool) -> Tensor:
    if dim is None:
        if t.data.size == 0:
            raise RuntimeError(f"argmax(): expected a non-empty tensor (shape {t.shape})")
        i = (np.argmax if largest else np.argmin)(t.data)
        return Tensor(np.array(i, np.int64).reshape((1,) * t.ndim if keepdim else ()))
    dim = wrap_dim(dim, t.ndim)
    index = _arg_index(t.data, dim, largest)
    return Tensor(index if keepdim or not t.ndim else index.squeeze(dim))


# --- shape --------------------------------------------------------------------------------------
class Reshape(Function):
    def forward(self, a, shape):
        self.shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise RuntimeError(f"shape {list(shape)} is invalid for input of size {a.size} "
                               f"(shape {a.shape})") from None

    def backward(self, g):
        return g.reshape(self.shape)


class Permute(Function):
    def forward(self, a, dims):
        self.dims = dims
        return np.transpose(a, dims)

    def backward(self, g):
        return np.transpose(g, np.argsort(self.dims))


class Expand(Function):
    def forward(self, a, shape):
        self.shape = a.shape
        return np.broadcast_to(a, shape)

    def backward(self, g):
        return unbroadcast(g, self.shape)


def expand(t: Tensor, sizes) -> Tensor:
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < t.ndim:
        raise RuntimeError(f"expand: the number of sizes provided ({len(sizes)}) must be greater "
                           f"or equal to the number of dimensions in the tensor ({t.ndim})")
    lead = len(sizes) - t.ndim
    shape = []
    for i, s in enumerate(sizes):
        own = t.shape[i - lead] if i >= lead else None
        if s == -1:
            if own is None:
                raise RuntimeError(f"expand: -1 is not allowed in a leading, new dimension ({sizes})")
            s = own
        if own is not None and own != 1 and own != s:
            raise RuntimeError(f"expand: the expanded size {s} must match the existing size {own} "
                               f"at non-singleton dimension {i}; target sizes {list(sizes)}, "
                               f"tensor shape {t.shape}")
        shape.append(s)
    return Expand.apply(t, shape=tuple(shape))


def plain_index(index):
    """An index with Tensors replaced by their arrays and lists by integer/boolean arrays."""
    items = index if isinstance(index, tuple) else (index,)
    out = []
    for item in items:
        if isinstance(item, Tensor):
            item = item.data
        elif isinstance(item, list):
            item = np.asarray(item)
        if isinstance(item, np.ndarray) and item.dtype.kind not in "biu":
            raise IndexError(f"tensors used as indices must be long, int or bool, got {item.dtype}")
        out.append(item)
    return tuple(out)


class Index(Function):
    """x[index]: basic slicing gives a view; integer-array and boolean-mask indexing a copy.
    The gradient goes back to the positions read (summed where an index repeats)."""

    def forward(self, a, index):
        self.shape, self.index = a.shape, index
        self.advanced = any(isinstance(i, np.ndarray) for i in index)
        try:
            return a[index]
        except IndexError as e:
            raise IndexError(f"index {index!r} is out of range for a tensor of shape {a.shape}: {e}") from None

    def backward(self, g):
        out = np.zeros(self.shape, g.dtype)
        if self.advanced:
            np.add.at(out, self.index, g)
        else:
            out[self.index] = g
        return out


class Cat(Function):
    def forward(self, *arrays, dim):
        self.dim, self.sizes = dim, [a.shape[dim] for a in arrays]
        return np.concatenate(arrays, axis=dim)

    def backward(self, g):
        cuts = np.cumsum(self.sizes)[:-1]
        return tuple(np.split(g, cuts, axis=self.dim))


def _tensor_list(name, tensors):
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise RuntimeError(f"{name}: expected a non-empty list of Tensors")
    return tensors


def cat(tensors, dim: int = 0) -> Tensor:
    """Join tensors along an existing dim (torch.cat); shapes must agree elsewhere."""
    tensors = _tensor_list("cat", tensors)
    nd = tensors[0].ndim
    d = wrap_dim(dim, nd)
    for i, t in enumerate(tensors):
        if t.ndim != nd or t.shape[:d] + t.shape[d + 1:] != tensors[0].shape[:d] + tensors[0].shape[d + 1:]:
            raise RuntimeError(f"cat: sizes of tensors must match except in dimension {d}; tensor 0 "
                               f"has shape {tensors[0].shape}, tensor {i} has shape {t.shape}")
    dtype = np.result_type(*[t.dtype for t in tensors])
    tensors = [t if t.dtype == dtype else t.to(dtype) for t in tensors]
    return Cat.apply(*tensors, dim=d)


def stack(tensors, dim: int = 0) -> Tensor:
    """Join tensors of one shape along a new dim (torch.stack)."""
    tensors = _tensor_list("stack", tensors)
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got "
                               f"{tensors[0].shape} at entry 0 and {t.shape} at entry {i}")
    d = wrap_dim(dim, tensors[0].ndim + 1)
    return cat([t.unsqueeze(d) for t in tensors], d)
