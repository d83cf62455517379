"""Argument helpers shared by the functional families: each op checks its arguments with these
in its public function, and every error names the op and the argument."""
from __future__ import annotations

import math
import operator

import numpy as np

from ...functional import _MAX_ELEMENTS, _flag as flag_arg, _real as real_arg  # noqa: F401
from ...tensor import Tensor, as_tensor
from ...tensor_ops import wrap_dim  # noqa: F401  (re-exported for the families)

REDUCTIONS = ("mean", "sum", "none")
# Largest element count an op will allocate for one result.
MAX_ELEMENTS = _MAX_ELEMENTS


def tensor_arg(op: str, name: str, value, like: Tensor | None = None) -> Tensor:
    """`value` as a Tensor (python scalars take `like`'s dtype), or a TypeError naming it."""
    try:
        return as_tensor(value, like)
    except TypeError as error:
        raise TypeError(f"{op}: {name} must be a Tensor or an array of numbers, got "
                        f"{type(value).__name__} ({error})") from None


def int_arg(op: str, name: str, value, minimum: int | None = None) -> int:
    """A Python int (not a bool) >= minimum."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be an int, got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise TypeError(f"{op}: {name} must be an int, got {value!r}") from None
    if minimum is not None and v < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {v}")
    if v > MAX_ELEMENTS:
        raise ValueError(f"{op}: {name} is too large ({v} > {MAX_ELEMENTS})")
    return v


def choice_arg(op: str, name: str, value, choices: tuple) -> str:
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        error = ValueError if isinstance(value, str) else TypeError
        raise error(f"{op}: {name} must be one of {listed}, got {value!r}")
    return value


def ntuple(value, n, name, op: str = "", minimum: int | None = None) -> tuple:
    """An int or a sequence of n ints (each >= minimum) as a tuple of Python ints."""
    where = f"{op}: " if op else ""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,) * n
    if len(items) != n:
        raise ValueError(f"{where}{name} must be an int or a tuple of {n} ints, got {value!r}")
    out = []
    for v in items:
        if isinstance(v, (bool, np.bool_)):
            raise TypeError(f"{where}{name} must be an int or a tuple of {n} ints, got {value!r}")
        try:
            v = operator.index(v)
        except TypeError:
            raise TypeError(f"{where}{name} must be an int or a tuple of {n} ints, "
                            f"got {value!r}") from None
        if minimum is not None and v < minimum:
            raise ValueError(f"{where}{name} must be >= {minimum}, got {value!r}")
        if abs(v) > MAX_ELEMENTS:
            raise ValueError(f"{where}{name} is too large, got {value!r}")
        out.append(v)
    return tuple(out)


def check_size(op: str, what: str, shape) -> None:
    """ValueError before allocating a result of `shape` that no machine could hold."""
    if math.prod(int(s) for s in shape) > MAX_ELEMENTS:
        raise ValueError(f"{op}: {what} of shape {tuple(shape)} is too large to allocate")


def check_reduction(op: str, reduction: str) -> None:
    choice_arg(op, "reduction", reduction, REDUCTIONS)


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
