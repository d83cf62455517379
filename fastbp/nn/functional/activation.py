"""Activations and softmax, elementwise in numpy. Each keeps what its gradient needs (often just
the output) and matches torch's gradient at kinks and its handling of large inputs."""
from __future__ import annotations

import math

import numpy as np

from ... import _core
from ...tensor import Function, Tensor
from ._utils import check_floating, choice_arg, real_arg, tensor_arg, wrap_dim

__all__ = ["relu", "sigmoid", "tanh", "gelu", "leaky_relu", "elu", "softplus", "softmax",
           "log_softmax"]


def _select(flags, if_false, if_true, dtype):
    """Per element if_true where flags else if_false, as an array of dtype: a table lookup, which
    unlike np.where does not branch on every element of a random mask."""
    return np.array([if_false, if_true], dtype)[flags.view(np.uint8)]


class _ReLU(Function):
    """max(x, 0) that lets NaN through, as torch.relu. The gradient is masked where the result is
    <= 0, as in torch's threshold_backward: it passes where x > 0 and where x is NaN."""

    def forward(self, x):
        out = np.maximum(x, np.zeros((), x.dtype))  # NaN stays NaN
        self.passes = ~(out <= 0) if self.needs_grad[0] else None
        return out

    def backward(self, g):
        return g * self.passes


def relu(input) -> Tensor:
    return _ReLU.apply(tensor_arg("relu", "input", input))


def _sigmoid(x):
    """1 / (1 + exp(-x)) without overflow: exp only of non-positive numbers."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


class _Sigmoid(Function):
    def forward(self, x):
        check_floating("sigmoid", "input", x)
        self.out = _sigmoid(x)
        return self.out

    def backward(self, g):
        return g * self.out * (1 - self.out)


def sigmoid(input) -> Tensor:
    return _Sigmoid.apply(tensor_arg("sigmoid", "input", input))


class _Tanh(Function):
    def forward(self, x):
        check_floating("tanh", "input", x)
        self.out = np.tanh(x)
        return self.out

    def backward(self, g):
        return g * (1 - self.out * self.out)


def tanh(input) -> Tensor:
    return _Tanh.apply(tensor_arg("tanh", "input", input))


def _erf(x):
    return _core.erf(np.ascontiguousarray(x))


class _GELU(Function):
    """x * Phi(x) ('none'), or the tanh approximation ('tanh')."""

    def forward(self, x, approximate):
        check_floating("gelu", "input", x)
        self.x, self.approximate = x, approximate
        if approximate == "tanh":
            k = x.dtype.type(math.sqrt(2 / math.pi))
            self.t = np.tanh(k * (x + x.dtype.type(0.044715) * x * x * x))
            return x.dtype.type(0.5) * x * (1 + self.t)
        self.cdf = x.dtype.type(0.5) * (1 + _erf(x * x.dtype.type(1 / math.sqrt(2))))
        return x * self.cdf

    def backward(self, g):
        x, t = self.x, self.x.dtype.type
        if self.approximate == "tanh":
            k = t(math.sqrt(2 / math.pi))
            inner = k * (1 + t(3 * 0.044715) * x * x)
            return g * (t(0.5) * (1 + self.t) + t(0.5) * x * (1 - self.t * self.t) * inner)
        pdf = np.exp(t(-0.5) * x * x) * t(1 / math.sqrt(2 * math.pi))
        return g * (self.cdf + x * pdf)


def gelu(input, approximate: str = "none") -> Tensor:
    approximate = choice_arg("gelu", "approximate", approximate, ("none", "tanh"))
    return _GELU.apply(tensor_arg("gelu", "input", input), approximate=approximate)


class _LeakyReLU(Function):
    def forward(self, x, slope):
        check_floating("leaky_relu", "input", x)
        self.factor = _select(x > 0, slope, 1, x.dtype)  # torch: the slope at 0 too
        return x * self.factor

    def backward(self, g):
        return g * self.factor


def leaky_relu(input, negative_slope: float = 0.01) -> Tensor:
    return _LeakyReLU.apply(tensor_arg("leaky_relu", "input", input),
                            slope=real_arg("leaky_relu", "negative_slope", negative_slope))


class _ELU(Function):
    def forward(self, x, alpha):
        check_floating("elu", "input", x)
        self.alpha = x.dtype.type(alpha)
        self.positive = x > 0
        self.exp = np.exp(np.minimum(x, 0))
        return np.where(self.positive, x, self.alpha * (self.exp - 1))

    def backward(self, g):
        return np.where(self.positive, g, g * self.alpha * self.exp)


def elu(input, alpha: float = 1.0) -> Tensor:
    return _ELU.apply(tensor_arg("elu", "input", input), alpha=real_arg("elu", "alpha", alpha))


class _Softplus(Function):
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (as torch)."""

    def forward(self, x, beta, threshold):
        check_floating("softplus", "input", x)
        t = x.dtype.type
        bx = x * t(beta)
        self.linear = bx > threshold
        self.sig = _sigmoid(bx)
        soft = (np.maximum(bx, 0) + np.log1p(np.exp(-np.abs(bx)))) / t(beta)
        return np.where(self.linear, x, soft)

    def backward(self, g):
        return np.where(self.linear, g, g * self.sig)


def softplus(input, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    return _Softplus.apply(tensor_arg("softplus", "input", input),
                           beta=real_arg("softplus", "beta", beta),
                           threshold=real_arg("softplus", "threshold", threshold))


class _Softmax(Function):
    def forward(self, x, dim):
        check_floating("softmax", "input", x)
        self.dim = dim
        e = np.exp(x - x.max(axis=dim, keepdims=True)) if x.size else x.copy()
        self.out = e / e.sum(axis=dim, keepdims=True) if x.size else e
        return self.out

    def backward(self, g):
        gy = g * self.out
        return gy - self.out * gy.sum(axis=self.dim, keepdims=True)


def _softmax_dim(input, dim):
    nd = input.ndim
    if dim is None:  # torch's implicit choice
        dim = 0 if nd in (0, 1, 3) else 1
    return wrap_dim(dim, nd)


def softmax(input, dim=None) -> Tensor:
    """exp(x - max) normalised over dim."""
    input = tensor_arg("softmax", "input", input)
    return _Softmax.apply(input, dim=_softmax_dim(input, dim))


def _log_softmax(x, dim):
    shifted = x - x.max(axis=dim, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))


class _LogSoftmax(Function):
    def forward(self, x, dim):
        check_floating("log_softmax", "input", x)
        self.dim = dim
        self.out = _log_softmax(x, dim) if x.size else x.copy()
        return self.out

    def backward(self, g):
        return g - np.exp(self.out) * g.sum(axis=self.dim, keepdims=True)


def log_softmax(input, dim=None) -> Tensor:
    input = tensor_arg("log_softmax", "input", input)
    return _LogSoftmax.apply(input, dim=_softmax_dim(input, dim))
