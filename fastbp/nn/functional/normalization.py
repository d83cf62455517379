"""Batch and layer normalization, each one Function with its closed-form backward
(x_hat = (x - mean) / sqrt(var + eps); dx = (g w - mean(g w) - x_hat mean(g w x_hat)) / std
over the normalised elements), which is both faster and more accurate than the composed one."""
from __future__ import annotations

import numpy as np

from ... import _core
from ...functional import _dense
from ...tensor import Function, Tensor
from ._utils import array_of, check_floating, flag_arg, int_arg, real_arg, tensor_arg

__all__ = ["batch_norm", "layer_norm"]


def _stats(x, axes):
    """Mean and biased variance over axes, accumulated in float64 for float32 input."""
    acc = np.float64 if x.dtype == np.float32 else None
    mean = x.mean(axis=axes, keepdims=True, dtype=acc)
    diff = x - mean.astype(x.dtype)
    var = np.mean(np.square(diff, dtype=acc), axis=axes, keepdims=True, dtype=acc)
    return mean, var, diff


class _BatchNorm(Function):
    """Input (N, C, ...), viewed as (N, C, M): statistics per channel C over N and M. In training
    the batch statistics normalise and update the running ones in place (unbiased variance,
    momentum). The per-channel sums and maps run in fastbp's kernels (_core.channel_*), the sums
    in double; backward reuses the sums of dW and db:
    dX = a dY - c x_hat - b with a = w / std, b = a mean(dY), c = a mean(dY x_hat)."""

    def forward(self, x, weight=None, bias=None, *, running_mean, running_var, training,
                momentum, eps):
        N, C = x.shape[:2]
        x3 = _dense(x.reshape(N, C, int(np.prod(x.shape[2:]))))
        dtype = x.dtype.type
        count = x3.shape[0] * x3.shape[2]
        if training:
            mean, var = _core.channel_moments(x3)
            if running_mean is not None:
                m = momentum
                running_mean *= 1 - m
                running_mean += (m * mean).astype(running_mean.dtype)
                running_var *= 1 - m
                running_var += (m * var * count / max(count - 1, 1)).astype(running_var.dtype)
            inv_std = (1 / np.sqrt(var + eps)).astype(x.dtype)
            center = mean
        else:
            inv_std = (1 / np.sqrt(running_var.astype(x.dtype) + dtype(eps)))
            center = running_mean.astype(np.float64)
        scale = inv_std if weight is None else (inv_std * weight).astype(x.dtype)
        # x_hat is read by backward for dX in training and for dW
        n = len(self.needs_grad)
        self.need_w, self.need_b = n > 1 and self.needs_grad[1], n > 2 and self.needs_grad[2]
        self.need_x = self.needs_grad[0]
        keep = (training and self.need_x) or self.need_w
        out, self.x_hat = _core.channel_normalize(
            x3, center, scale, None if bias is None else bias.astype(x.dtype, copy=False),
            inv_std if keep else None)
        self.training, self.count, self.scale = training, count, scale
        return out.reshape(x.shape)

    def backward(self, g):
        shape = g.shape
        g3 = _dense(g.reshape(shape[0], shape[1], int(np.prod(shape[2:]))))
        need_w, need_b = self.need_w, self.need_b
        sum_g = sum_gx = None
        if (self.training and self.need_x) or need_w or need_b:
            sum_g, sum_gx = _core.channel_grad_sums(g3, self.x_hat)
        gx = None
        if self.need_x:
            a = self.scale
            if self.training:
                assert sum_g is not None and sum_gx is not None  # x_hat is kept for dX in training
                c, b = (a * (sum_gx / self.count)).astype(g.dtype), (a * (sum_g / self.count)).astype(g.dtype)
                gx = _core.channel_grad_input(g3, self.x_hat, a, b, c)
            else:
                gx = _core.channel_grad_input(g3, None, a, None, None)
            gx = gx.reshape(shape)
        gw = sum_gx.astype(g.dtype) if need_w and sum_gx is not None else None
        gb = sum_g.astype(g.dtype) if need_b and sum_g is not None else None
        return (gx, gw, gb)[:len(self.needs_grad)]


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5) -> Tensor:
    """As torch.nn.functional.batch_norm: running_mean/var (C,) arrays or Tensors, updated in
    place when training (they may be None, then batch statistics are used in eval too)."""
    op = "batch_norm"
    input = tensor_arg(op, "input", input)
    if input.dtype not in (np.float32, np.float64):
        raise TypeError(f"batch_norm: input must be float32 or float64, got dtype {input.dtype}")
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected an input of shape (N, C, ...), got {input.shape}")
    C = input.shape[1]
    training = flag_arg(op, "training", training)
    momentum, eps = real_arg(op, "momentum", momentum), real_arg(op, "eps", eps)
    weight = None if weight is None else tensor_arg(op, "weight", weight)
    bias = None if bias is None else tensor_arg(op, "bias", bias)
    rm = rv = None
    for name, a in (("running_mean", running_mean), ("running_var", running_var)):
        if a is None:
            continue
        a = array_of(a)
        if not isinstance(a, np.ndarray) or a.dtype.kind != "f":
            raise TypeError(f"batch_norm: {name} must be a floating-point array or Tensor (updated "
                            f"in place), got {type(a).__name__}")
        if name == "running_mean":
            rm = a
        else:
            rv = a
    if (rm is None) != (rv is None):
        raise ValueError("batch_norm: running_mean and running_var must both be given or both "
                         "be None")
    for name, a in (("running_mean", rm), ("running_var", rv), ("weight", weight), ("bias", bias)):
        if a is not None and np.shape(array_of(a)) != (C,):
            raise ValueError(f"batch_norm: {name} must have shape ({C},) for input of shape "
                             f"{input.shape}, got {np.shape(array_of(a))}")
    if training and input.numel() // max(C, 1) <= 1:
        raise ValueError(f"Expected more than 1 value per channel when training, got input size "
                         f"{input.shape}")
    if not training and (rm is None or rv is None):
        training = True  # no running statistics: normalise with the batch's, as torch
        rm = rv = None
    if bias is not None and weight is None:
        weight = np.ones(C, input.dtype)
    tensors = [input] + ([weight] if weight is not None else []) + ([bias] if bias is not None else [])
    return _BatchNorm.apply(*tensors, running_mean=rm, running_var=rv, training=training,
                            momentum=momentum, eps=eps)


class _LayerNorm(Function):
    def forward(self, x, weight=None, bias=None, *, nd, eps):
        check_floating("layer_norm", "input", x)
        axes = tuple(range(x.ndim - nd, x.ndim))
        mean, var, diff = _stats(x, axes)
        self.inv_std = (1 / np.sqrt(var + eps)).astype(x.dtype)
        self.x_hat = diff * self.inv_std
        self.axes, self.weight = axes, weight
        out = self.x_hat if weight is None else self.x_hat * weight
        return out if bias is None else out + bias

    def backward(self, g):
        axes, x_hat = self.axes, self.x_hat
        lead = tuple(range(g.ndim - len(axes)))
        n = len(self.needs_grad)
        gw = (g * x_hat).sum(axis=lead) if n > 1 and self.needs_grad[1] else None
        gb = g.sum(axis=lead) if n > 2 and self.needs_grad[2] else None
        gx = None
        if self.needs_grad[0]:
            gs = g if self.weight is None else g * self.weight
            acc = np.float64 if g.dtype == np.float32 else None
            mean_g = gs.mean(axis=axes, keepdims=True, dtype=acc).astype(g.dtype)
            mean_gx = (gs * x_hat).mean(axis=axes, keepdims=True, dtype=acc).astype(g.dtype)
            gx = (gs - mean_g - x_hat * mean_gx) * self.inv_std
        return (gx, gw, gb)[:n]


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5) -> Tensor:
    """Normalise over the last len(normalized_shape) dims, as torch.nn.functional.layer_norm."""
    op = "layer_norm"
    input = tensor_arg(op, "input", input)
    check_floating(op, "input", input)
    if isinstance(normalized_shape, (tuple, list)):
        shape = tuple(int_arg(op, "normalized_shape", n, minimum=0) for n in normalized_shape)
    else:
        shape = (int_arg(op, "normalized_shape", normalized_shape, minimum=0),)
    eps = real_arg(op, "eps", eps)
    weight = None if weight is None else tensor_arg(op, "weight", weight)
    bias = None if bias is None else tensor_arg(op, "bias", bias)
    nd = len(shape)
    if input.shape[input.ndim - nd:] != shape or input.ndim < nd:
        raise ValueError(f"layer_norm: normalized_shape {list(shape)} does not match the last "
                         f"dims of input of shape {input.shape}")
    for name, a in (("weight", weight), ("bias", bias)):
        if a is not None and np.shape(array_of(a)) != shape:
            raise ValueError(f"layer_norm: {name} must have shape {shape} (normalized_shape), got "
                             f"{np.shape(array_of(a))}")
    if bias is not None and weight is None:
        weight = np.ones(shape, input.dtype)
    tensors = [input] + ([weight] if weight is not None else []) + ([bias] if bias is not None else [])
    return _LayerNorm.apply(*tensors, nd=nd, eps=eps)
