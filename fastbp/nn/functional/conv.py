"""Convolutions and transposed convolutions on fastbp's kernels."""
from __future__ import annotations

import numpy as np

from ... import functional as _kernels
from ...tensor import Function, Tensor

__all__ = ["conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d"]


class _ConvNd(Function):
    """A convolution, or with relu=True relu(convolution) in one pass: the kernel applies relu
    as it writes the result, and backward masks the gradient where the result is <= 0 (as
    relu's own backward does), so both give the bits of conv then relu."""
    kernel = ""  # name of the fastbp.functional op, looked up at call time

    def forward(self, x, weight, bias=None, *, stride, padding, dilation, groups, relu=False):
        self.x, self.weight, self.has_bias = x, weight, bias is not None
        self.options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        out = getattr(_kernels, self.kernel)(x, weight, bias, **self.options,
                                             activation="relu" if relu else None)
        self.passes = ~(out <= 0) if relu and any(self.needs_grad) else None
        return out

    def backward(self, g):
        if self.passes is not None:
            g = g * self.passes
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


def conv_relu(nd, input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    """relu(conv{nd}d(...)) in one pass, the same values and gradients (nn.Sequential uses it
    for a Conv1d/Conv2d followed by a ReLU)."""
    tensors = (input, weight) if bias is None else (input, weight, bias)
    op = _Conv1d if nd == 1 else _Conv2d
    return op.apply(*tensors, stride=stride, padding=padding, dilation=dilation, groups=groups,
                    relu=True)


class _ConvTransposeNd(Function):
    """Forward on the convolution's input-gradient path; backward on conv forward (input
    gradient) and the convolution's weight-gradient path."""
    kernel = ""

    def forward(self, x, weight, bias=None, *, stride, padding, output_padding, groups, dilation):
        self.options = dict(stride=stride, padding=padding, output_padding=output_padding,
                            groups=groups, dilation=dilation)
        self.x, self.weight, self.has_bias = x, weight, bias is not None
        return getattr(_kernels, self.kernel)(x, weight, bias, **self.options)

    def backward(self, g):
        needs = self.needs_grad
        gx, gw, gb = getattr(_kernels, self.kernel + "_backward")(
            g, self.x, self.weight, **self.options, input_grad=needs[0], weight_grad=needs[1],
            bias_grad=self.has_bias and needs[2])
        return (gx, gw, gb) if self.has_bias else (gx, gw)


class _ConvTranspose1d(_ConvTransposeNd):
    kernel = "conv_transpose1d"


class _ConvTranspose2d(_ConvTransposeNd):
    kernel = "conv_transpose2d"


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1) -> Tensor:
    """input (N, C_in, L), weight (C_in, C_out/groups, K); as torch.nn.functional.conv_transpose1d."""
    tensors = (input, weight) if bias is None else (input, weight, bias)
    return _ConvTranspose1d.apply(*tensors, stride=stride, padding=padding,
                                  output_padding=output_padding, groups=groups, dilation=dilation)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1) -> Tensor:
    """input (N, C_in, H, W), weight (C_in, C_out/groups, kH, kW); as torch's conv_transpose2d."""
    tensors = (input, weight) if bias is None else (input, weight, bias)
    return _ConvTranspose2d.apply(*tensors, stride=stride, padding=padding,
                                  output_padding=output_padding, groups=groups, dilation=dilation)
