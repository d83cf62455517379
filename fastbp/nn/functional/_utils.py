"""Argument helpers shared by the functional families."""
from __future__ import annotations

import numpy as np

from ...tensor import Tensor
from ...tensor_ops import wrap_dim  # noqa: F401  (re-exported for the families)

REDUCTIONS = ("mean", "sum", "none")


def ntuple(value, n, name):
    t = (value,) * n if isinstance(value, (int, np.integer)) else tuple(value)
    if len(t) != n:
        raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {value!r}")
    return tuple(int(v) for v in t)


def check_reduction(op: str, reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def reduce(losses: np.ndarray, reduction: str) -> np.ndarray:
    if reduction == "none":
        return losses
    total = losses.sum()
    return np.asarray(total / losses.size if reduction == "mean" else total, losses.dtype)


def reduce_grad(g, shape, reduction: str, dtype):
    """The gradient of reduce() with respect to its per-element losses, broadcast to shape."""
    g = np.asarray(g, dtype)
    if reduction == "none":
        return g
    count = int(np.prod(shape))
    return np.broadcast_to(g / count if reduction == "mean" and count else g, shape)


def check_floating(op: str, name: str, a) -> None:
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"{op}: {name} must be a floating-point tensor, got dtype {a.dtype}")


def array_of(x):
    """The array of a Tensor; anything else as it is (numpy arrays, None)."""
    return x.data if isinstance(x, Tensor) else x
