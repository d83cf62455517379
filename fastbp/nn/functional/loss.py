"""Losses with reductions 'mean', 'sum' and 'none', each one Function with its gradient."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...tensor import Function, Tensor, as_tensor, unbroadcast
from ...tensor_ops import IndexRangeError
from .activation import _log_softmax, _sigmoid
from ._utils import (array_of, check_floating, check_reduction, flag_arg, int_arg, real_arg,
                     reduce, reduce_grad, tensor_arg)

__all__ = ["cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss",
           "binary_cross_entropy_with_logits", "gaussian_nll_loss"]


def _class_axis_checks(op, scores, target, ignore_index=None):
    """Classes on axis 1 (axis 0 for a 1-d input); target holds one class per other position."""
    axis = 1 if scores.ndim > 1 else 0
    expected = scores.shape[:axis] + scores.shape[axis + 1:]
    if target.shape != expected:
        raise ValueError(f"{op}: target has shape {target.shape}, expected {expected} "
                         f"for input of shape {scores.shape}")
    classes = scores.shape[axis]
    valid = target != ignore_index if ignore_index is not None else np.ones(target.shape, bool)
    bad = valid & ((target < 0) | (target >= classes))
    if bad.any():
        raise IndexRangeError(f"{op}: target {target[bad].flat[0]} is out of bounds for {classes} classes")
    return axis, valid


class _CrossEntropy(Function):
    """Softmax cross-entropy with integer class targets; classes on axis 1 (axis 0 if 1-d)."""

    def forward(self, logits, target, reduction):
        axis, _ = _class_axis_checks("cross_entropy", logits, target)
        self.logp = _log_softmax(logits, axis) if logits.size else logits.copy()
        self.index = np.expand_dims(target.astype(np.intp), axis)
        self.axis, self.reduction = axis, reduction
        losses = -np.take_along_axis(self.logp, self.index, axis).squeeze(axis)
        if reduction == "none":
            return losses
        return losses.sum() / losses.size if reduction == "mean" else losses.sum()

    def backward(self, g):
        g = np.asarray(g)
        if self.reduction == "mean":
            g = g / max(self.index.size, 1)
        if self.reduction == "none":
            g = np.expand_dims(g, self.axis)
        grad = np.exp(self.logp)
        np.put_along_axis(grad, self.index, np.take_along_axis(grad, self.index, self.axis) - 1,
                          self.axis)
        return grad * g.astype(grad.dtype), None


def cross_entropy(input, target, reduction: str = "mean") -> Tensor:
    """input (N, C) or (N, C, d1, ...) logits; target (N,) or (N, d1, ...) class indices."""
    check_reduction("cross_entropy", reduction)
    input = tensor_arg("cross_entropy", "input", input)
    target = tensor_arg("cross_entropy", "target", target)
    check_floating("cross_entropy", "input", input)
    if not np.issubdtype(target.dtype, np.integer):
        raise TypeError(f"cross_entropy expects integer class targets, got target dtype {target.dtype}")
    if input.ndim == 0:
        raise ValueError("cross_entropy: input must have a class dim, got a 0-d input")
    return _CrossEntropy.apply(input, target, reduction=reduction)


class _NLLLoss(Function):
    """-input[target] (times the class weight); 'mean' divides by the summed weights."""

    def forward(self, logp, target, weight, ignore_index, reduction):
        axis, valid = _class_axis_checks("nll_loss", logp, target, ignore_index)
        index = np.where(valid, target, 0).astype(np.intp)
        w = np.ones((), logp.dtype) if weight is None else weight.astype(logp.dtype)[index]
        w = np.where(valid, w, np.zeros((), logp.dtype))
        picked = np.take_along_axis(logp, np.expand_dims(index, axis), axis).squeeze(axis)
        losses = -picked * w
        self.axis, self.index, self.w, self.reduction = axis, index, w, reduction
        self.shape = logp.shape
        if reduction == "none":
            return losses
        total = losses.sum()
        if reduction == "sum":
            return np.asarray(total, logp.dtype)
        self.total_weight = w.sum()
        return np.asarray(total / self.total_weight, logp.dtype)

    def backward(self, g):
        g = np.asarray(g)
        if self.reduction == "mean":
            g = g / self.total_weight
        coeff = (-self.w * g).astype(self.w.dtype)
        grad = np.zeros(self.shape, self.w.dtype)
        np.put_along_axis(grad, np.expand_dims(self.index, self.axis),
                          np.expand_dims(np.broadcast_to(coeff, self.index.shape), self.axis), self.axis)
        return grad, None


def nll_loss(input, target, weight=None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """input (N, C) or (N, C, d1, ...) log-probabilities; target class indices."""
    check_reduction("nll_loss", reduction)
    target = tensor_arg("nll_loss", "target", target)
    if not np.issubdtype(target.dtype, np.integer):
        raise TypeError(f"nll_loss expects integer class targets, got target dtype {target.dtype}")
    input = tensor_arg("nll_loss", "input", input)
    check_floating("nll_loss", "input", input)
    if input.ndim == 0:
        raise ValueError("nll_loss: input must have a class dim, got a 0-d input")
    ignore_index = int_arg("nll_loss", "ignore_index", ignore_index)
    if weight is not None:
        weight = tensor_arg("nll_loss", "weight", weight).data
        check_floating("nll_loss", "weight", weight)
        classes = input.shape[1] if input.ndim > 1 else input.shape[0]
        if weight.shape != (classes,):
            raise ValueError(f"nll_loss: weight must have shape ({classes},), got {weight.shape}")
    return _NLLLoss.apply(input, target, weight=weight, ignore_index=ignore_index,
                          reduction=reduction)


def _same_shape(op, input, target):
    input = tensor_arg(op, "input", input)
    target = tensor_arg(op, "target", target, input)
    if input.shape != target.shape:
        raise ValueError(f"{op}: input has shape {input.shape} but target has shape "
                         f"{target.shape}; reshape one of them so they match")
    check_floating(op, "input", input)
    return input, target


class _PointwiseLoss(Function):
    """A loss of d = input - target per element; subclasses give value(d) and slope(d)."""

    value: Any  # staticmethods of the subclasses: value(d, **options), slope(d, **options)
    slope: Any

    def forward(self, x, target, reduction, **options):
        d = x - target
        self.options, self.reduction = options, reduction
        self.slope_d = self.slope(d, **options)
        return reduce(self.value(d, **options), reduction)

    def backward(self, g):
        grad = self.slope_d * reduce_grad(g, self.slope_d.shape, self.reduction, self.slope_d.dtype)
        return grad, -grad


class _MSELoss(_PointwiseLoss):
    @staticmethod
    def value(d):
        return d * d

    @staticmethod
    def slope(d):
        return 2 * d


class _L1Loss(_PointwiseLoss):
    @staticmethod
    def value(d):
        return np.abs(d)

    @staticmethod
    def slope(d):
        return np.nan_to_num(np.sign(d), nan=0.0, copy=False)  # sign(NaN) = 0 as torch


class _SmoothL1Loss(_PointwiseLoss):
    @staticmethod
    def value(d, beta):
        a = np.abs(d)
        if beta == 0:
            return a
        t = d.dtype.type
        return np.where(a < beta, t(0.5) * d * d / t(beta), a - t(0.5 * beta))

    @staticmethod
    def slope(d, beta):
        if beta == 0:
            return np.sign(d)
        return np.where(np.abs(d) < beta, d / d.dtype.type(beta), np.sign(d))


def mse_loss(input, target, reduction: str = "mean") -> Tensor:
    """Mean squared error; input and target must have the same shape (no silent broadcasting)."""
    check_reduction("mse_loss", reduction)
    return _MSELoss.apply(*_same_shape("mse_loss", input, target), reduction=reduction)


def l1_loss(input, target, reduction: str = "mean") -> Tensor:
    check_reduction("l1_loss", reduction)
    return _L1Loss.apply(*_same_shape("l1_loss", input, target), reduction=reduction)


def smooth_l1_loss(input, target, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """Quadratic below beta (0.5 d^2 / beta), linear above (|d| - 0.5 beta)."""
    check_reduction("smooth_l1_loss", reduction)
    beta = real_arg("smooth_l1_loss", "beta", beta)
    if not beta >= 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    return _SmoothL1Loss.apply(*_same_shape("smooth_l1_loss", input, target),
                               reduction=reduction, beta=beta)


class _BCEWithLogits(Function):
    """(1 - t) x + (1 + (pw - 1) t) softplus(-x), times weight; softplus(-x) computed stably."""

    def forward(self, x, target, weight, pos_weight, reduction):
        sp = np.maximum(-x, 0) + np.log1p(np.exp(-np.abs(x)))  # softplus(-x)
        lw = 1 if pos_weight is None else 1 + (pos_weight - 1) * target
        losses = (1 - target) * x + lw * sp
        if weight is not None:
            losses = losses * weight
        self.x, self.target, self.sp, self.lw = x, target, sp, lw
        self.weight, self.pos_weight, self.reduction = weight, pos_weight, reduction
        return reduce(losses.astype(x.dtype, copy=False), reduction)

    def backward(self, g):
        scale = reduce_grad(g, self.x.shape, self.reduction, self.x.dtype)
        if self.weight is not None:
            scale = scale * self.weight
        gx = gt = None
        if self.needs_grad[0]:
            gx = ((1 - self.target) - self.lw * _sigmoid(-self.x)) * scale
        if self.needs_grad[1]:
            pw = 1 if self.pos_weight is None else self.pos_weight
            gt = (-self.x + (pw - 1) * self.sp) * scale
        return gx, gt


def binary_cross_entropy_with_logits(input, target, weight=None, reduction: str = "mean",
                                     pos_weight=None) -> Tensor:
    op = "binary_cross_entropy_with_logits"
    check_reduction(op, reduction)
    input = tensor_arg(op, "input", input)
    target = tensor_arg(op, "target", target, input)
    if input.shape != target.shape:
        raise ValueError(f"{op}: target size ({target.shape}) must be the same as input size "
                         f"({input.shape})")
    check_floating("binary_cross_entropy_with_logits", "input", input)
    dtype = input.dtype

    def array(name, a):
        if a is None:
            return None
        a = tensor_arg(op, name, a).data.astype(dtype, copy=False)
        try:
            np.broadcast_shapes(a.shape, input.shape)
        except ValueError:
            raise ValueError(f"binary_cross_entropy_with_logits: {name} of shape {a.shape} does "
                             f"not broadcast to input of shape {input.shape}") from None
        return a
    return _BCEWithLogits.apply(input, target, weight=array("weight", weight),
                                pos_weight=array("pos_weight", pos_weight), reduction=reduction)


class _GaussianNLL(Function):
    """0.5 (log var + (input - target)^2 / var); var clamped to eps for the value, while its
    gradient flows as if unclamped (torch clamps a copy without recording it)."""

    def forward(self, x, target, var, eps, full, reduction):
        v = np.maximum(var, np.asarray(eps, var.dtype))
        d = x - target
        t = x.dtype.type
        losses = t(0.5) * (np.log(v) + d * d / v)
        if full:
            losses = losses + t(0.5 * math.log(2 * math.pi))
        self.d, self.v, self.var_shape, self.reduction = d, v, var.shape, reduction
        return reduce(losses, reduction)

    def backward(self, g):
        scale = reduce_grad(g, self.d.shape, self.reduction, self.d.dtype)
        gx = self.d / self.v * scale
        gv = None
        if self.needs_grad[2]:
            gv = unbroadcast(self.d.dtype.type(0.5) * (1 / self.v - self.d * self.d / (self.v * self.v)) * scale,
                             self.var_shape)
        return gx, -gx, gv


def gaussian_nll_loss(input, target, var, full: bool = False, eps: float = 1e-6,
                      reduction: str = "mean") -> Tensor:
    """Gaussian negative log-likelihood of target under N(input, var), as torch: var has
    input's shape, or that shape without (or with 1 in) its last dim."""
    op = "gaussian_nll_loss"
    check_reduction(op, reduction)
    input = tensor_arg(op, "input", input)
    target = tensor_arg(op, "target", target, input)
    var = tensor_arg(op, "var", var, input)
    check_floating(op, "input", input)
    full, eps = flag_arg(op, "full", full), real_arg(op, "eps", eps)
    if input.shape != target.shape:
        raise ValueError(f"gaussian_nll_loss: input has shape {input.shape} but target has shape "
                         f"{target.shape}")
    if var.shape != input.shape:
        if input.shape[:-1] == var.shape:
            var = var.unsqueeze(-1)
        elif not (input.shape[:-1] == var.shape[:-1] and var.ndim and var.shape[-1] == 1):
            raise ValueError(f"gaussian_nll_loss: var is of incorrect size {var.shape} for input "
                             f"of shape {input.shape}")
    if np.any(var.data < 0):
        raise ValueError("gaussian_nll_loss: var has negative entry/entries")
    return _GaussianNLL.apply(input, target, var, eps=eps, full=full,
                              reduction=reduction)
