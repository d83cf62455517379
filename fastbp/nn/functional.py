"""Differentiable ops on Tensors: convolution and linear on the fastbp kernels, plus the pooling,
activation and loss functions a small CNN needs. Each op is one Function with forward/backward
on ndarrays, vectorised with numpy (pooling loops over kernel offsets, never over elements)."""
from __future__ import annotations

import itertools

import numpy as np

from .. import functional as _kernels
from ..tensor import Function, Tensor, as_tensor

__all__ = ["conv1d", "conv2d", "linear", "relu", "max_pool1d", "max_pool2d", "flatten",
           "log_softmax", "cross_entropy", "mse_loss"]


# --- convolution and linear -------------------------------------------------------------------
class _ConvNd(Function):
    kernel = ""  # name of the fastbp.functional op, looked up at call time

    def forward(self, x, weight, bias=None, *, stride, padding, dilation, groups):
        self.x, self.weight, self.has_bias = x, weight, bias is not None
        self.options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        return getattr(_kernels, self.kernel)(x, weight, bias, **self.options)

    def backward(self, g):
        needs = self.needs_grad
        gx, gw, gb = getattr(_kernels, self.kernel + "_backward")(
            np.ascontiguousarray(g), self.x, self.weight, **self.options,
            input_grad=needs[0], weight_grad=needs[1], bias_grad=self.has_bias and needs[2])
        return (gx, gw, gb) if self.has_bias else (gx, gw)


class _Conv1d(_ConvNd):
    kernel = "conv1d"


class _Conv2d(_ConvNd):
    kernel = "conv2d"


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """input (N, C_in, L), weight (C_out, C_in/groups, K); as torch.nn.functional.conv1d."""
    tensors = (input, weight) if bias is None else (input, weight, bias)
    return _Conv1d.apply(*tensors, stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """input (N, C_in, H, W), weight (C_out, C_in/groups, kH, kW); as torch.nn.functional.conv2d."""
    tensors = (input, weight) if bias is None else (input, weight, bias)
    return _Conv2d.apply(*tensors, stride=stride, padding=padding, dilation=dilation, groups=groups)


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


# --- activation -------------------------------------------------------------------------------
class _ReLU(Function):
    """max(x, 0) that lets NaN through, as torch.relu. The gradient is masked where the result is
    <= 0, as in torch's threshold_backward: it passes where x > 0 and where x is NaN."""

    def forward(self, x):
        out = np.where(x < 0, np.zeros((), x.dtype), x)  # NaN < 0 is False: NaN stays
        self.blocked = out <= 0
        return out

    def backward(self, g):
        return np.where(self.blocked, np.zeros((), g.dtype), g)


def relu(input) -> Tensor:
    return _ReLU.apply(input)


# --- max pooling ------------------------------------------------------------------------------
def _tuple(value, n, name):
    t = (value,) * n if isinstance(value, (int, np.integer)) else tuple(value)
    if len(t) != n:
        raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {value!r}")
    return tuple(int(v) for v in t)


class _MaxPoolNd(Function):
    """Max over windows of the last len(kernel) axes. Ties and NaNs resolve as in PyTorch's CPU
    kernel: the first maximum in window order wins, a NaN wins over numbers."""

    def forward(self, x, *, kernel, stride, padding, dilation):
        nd = len(kernel)
        if x.ndim < nd + 1:
            raise ValueError(f"max_pool{nd}d expects at least {nd + 1} dims, got shape {x.shape}")
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"max_pool{nd}d expects a floating-point input, got {x.dtype}")
        for k, s, p, d in zip(kernel, stride, padding, dilation):
            if k < 1 or s < 1 or d < 1 or p < 0:
                raise ValueError(f"max_pool{nd}d: kernel_size {kernel}, stride {stride}, dilation "
                                 f"{dilation} must be >= 1 and padding {padding} >= 0")
            if 2 * p > k:
                raise ValueError(f"max_pool{nd}d: padding {padding} must be at most half of "
                                 f"kernel_size {kernel}")
        spatial = x.shape[-nd:]
        out = tuple((n + 2 * p - d * (k - 1) - 1) // s + 1
                    for n, k, s, p, d in zip(spatial, kernel, stride, padding, dilation))
        if min(out) < 1:
            raise ValueError(f"max_pool{nd}d: input of spatial size {spatial} is too small for "
                             f"kernel_size {kernel}, padding {padding}, dilation {dilation}")
        pad = [(0, 0)] * (x.ndim - nd) + [(p, p) for p in padding]
        xp = np.pad(x, pad, constant_values=-np.inf) if any(padding) else x

        offsets = itertools.product(*(range(k) for k in kernel))
        best = xp[self._window(next(offsets), out, stride, dilation)].copy()
        argbest = np.zeros(best.shape, np.intp)
        for i, offset in enumerate(offsets, 1):
            window = xp[self._window(offset, out, stride, dilation)]
            take = (window > best) | np.isnan(window)
            np.copyto(best, window, where=take)
            argbest[take] = i
        self.argbest, self.padded_shape, self.x_shape = argbest, xp.shape, x.shape
        self.geometry = kernel, stride, padding, dilation, out
        return best

    @staticmethod
    def _window(offset, out, stride, dilation):
        """Index of the inputs that kernel position `offset` sees, one per output element."""
        return (Ellipsis,) + tuple(slice(o * d, o * d + s * (n - 1) + 1, s)
                                   for o, n, s, d in zip(offset, out, stride, dilation))

    def backward(self, g):
        kernel, stride, padding, dilation, out = self.geometry
        gp = np.zeros(self.padded_shape, g.dtype)
        zero = np.zeros((), g.dtype)
        for i, offset in enumerate(itertools.product(*(range(k) for k in kernel))):
            # within one offset the strided slice hits distinct inputs, so += is exact
            gp[self._window(offset, out, stride, dilation)] += np.where(self.argbest == i, g, zero)
        crop = (Ellipsis,) + tuple(slice(p, p + n) for p, n in
                                   zip(padding, self.x_shape[-len(kernel):]))
        return gp[crop]


def _max_pool(input, nd, kernel_size, stride, padding, dilation):
    kernel = _tuple(kernel_size, nd, "kernel_size")
    stride = kernel if stride is None or stride == () else _tuple(stride, nd, "stride")
    return _MaxPoolNd.apply(input, kernel=kernel, stride=stride,
                            padding=_tuple(padding, nd, "padding"),
                            dilation=_tuple(dilation, nd, "dilation"))


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1) -> Tensor:
    """input (N, C, L); stride defaults to kernel_size; padding counts as -inf."""
    return _max_pool(input, 1, kernel_size, stride, padding, dilation)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1) -> Tensor:
    """input (N, C, H, W); stride defaults to kernel_size; padding counts as -inf."""
    return _max_pool(input, 2, kernel_size, stride, padding, dilation)


# --- reshaping --------------------------------------------------------------------------------
def _wrap_dim(dim: int, nd: int) -> int:
    """A dim in [-nd, nd) as a non-negative index; out of range raises IndexError like torch."""
    dim = int(dim)
    if not -nd <= dim < nd:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-nd}, {nd - 1}], "
                         f"but got {dim})")
    return dim % nd


def flatten(input, start_dim: int = 1, end_dim: int = -1) -> Tensor:
    input = as_tensor(input)
    nd = max(input.ndim, 1)  # a 0-d input counts as 1-d, as in torch
    start, end = _wrap_dim(start_dim, nd), _wrap_dim(end_dim, nd)
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} "
                         f"for a {input.ndim}-d input")
    shape = input.shape
    return input.reshape(shape[:start] + (-1,) + shape[end + 1:]) if input.ndim else input.reshape(1)


# --- softmax and losses -----------------------------------------------------------------------
def _log_softmax(x, dim):
    shifted = x - x.max(axis=dim, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))


class _LogSoftmax(Function):
    def forward(self, x, dim):
        self.dim = dim
        self.out = _log_softmax(x, dim)
        return self.out

    def backward(self, g):
        return g - np.exp(self.out) * g.sum(axis=self.dim, keepdims=True)


def log_softmax(input, dim: int = -1) -> Tensor:
    return _LogSoftmax.apply(input, dim=dim)


class _CrossEntropy(Function):
    """Softmax cross-entropy with integer class targets; classes on axis 1 (axis 0 if 1-d)."""

    def forward(self, logits, target, reduction):
        axis = 1 if logits.ndim > 1 else 0
        expected = logits.shape[:axis] + logits.shape[axis + 1:]
        if target.shape != expected:
            raise ValueError(f"cross_entropy: target has shape {target.shape}, expected {expected} "
                             f"for input of shape {logits.shape}")
        classes = logits.shape[axis]
        if target.size and (target.min() < 0 or target.max() >= classes):
            bad = target[(target < 0) | (target >= classes)].flat[0]
            raise IndexError(f"cross_entropy: target {bad} is out of bounds for {classes} classes")
        self.logp = _log_softmax(logits, axis)
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
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    target = as_tensor(target)
    if not np.issubdtype(target.dtype, np.integer):
        raise TypeError(f"cross_entropy expects integer class targets, got dtype {target.dtype}")
    return _CrossEntropy.apply(input, target, reduction=reduction)


class _MSELoss(Function):
    def forward(self, x, target, reduction):
        self.diff, self.reduction = x - target, reduction
        sq = self.diff * self.diff
        if reduction == "none":
            return sq
        return sq.sum() / sq.size if reduction == "mean" else sq.sum()

    def backward(self, g):
        grad = 2 * self.diff * g
        if self.reduction == "mean":
            grad = grad / self.diff.size
        return grad, -grad


def mse_loss(input, target, reduction: str = "mean") -> Tensor:
    """Mean squared error; input and target must have the same shape (no silent broadcasting)."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    input = as_tensor(input)
    target = as_tensor(target, input)
    if input.shape != target.shape:
        raise ValueError(f"mse_loss: input has shape {input.shape} but target has shape "
                         f"{target.shape}; reshape one of them so they match")
    return _MSELoss.apply(input, target, reduction=reduction)
