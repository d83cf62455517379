"""Convolutions and transposed convolutions."""
from __future__ import annotations

import numpy as np

from .. import functional as F
from ..functional._utils import int_arg
from ..functional.conv import conv_relu
from .linear import init_like_torch
from .module import Module, Parameter, _as_dtype

__all__ = ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"]


def _check_channels(in_channels, out_channels, groups):
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        int_arg("conv", name, value, minimum=1)
    int_arg("conv", "groups", groups, minimum=1)
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"in_channels ({in_channels}) and out_channels ({out_channels}) "
                         f"must both be divisible by groups ({groups})")


class _ConvNd(Module):
    nd = 0

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, dtype=np.float32, rng=None):
        super().__init__()
        nd = self.nd
        _check_channels(in_channels, out_channels, groups)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        op = type(self).__name__
        self.kernel_size = F._tuple(kernel_size, nd, "kernel_size", op, minimum=1)
        self.stride = F._tuple(stride, nd, "stride", op, minimum=1)
        self.dilation = F._tuple(dilation, nd, "dilation", op, minimum=1)
        self.padding = padding if isinstance(padding, str) else F._tuple(padding, nd, "padding",
                                                                         op, minimum=0)
        if isinstance(self.padding, str):
            if self.padding not in ("same", "valid"):
                raise ValueError(f"padding must be 'same', 'valid' or ints, got {padding!r}")
            if self.padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
        dtype = _as_dtype(dtype)
        shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(np.empty(shape, dtype))
        self.bias = Parameter(np.empty(out_channels, dtype)) if bias else None
        init_like_torch(self.weight, self.bias, int(np.prod(shape[1:])), rng)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * self.nd:
            s += f", padding={self.padding!r}"
        if self.dilation != (1,) * self.nd:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s

    def _options(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups)


class Conv1d(_ConvNd):
    """Input (N, C_in, L); weight (C_out, C_in/groups, K)."""

    nd = 1

    def forward(self, x):
        return F.conv1d(x, self.weight, self.bias, **self._options())

    def forward_relu(self, x):
        """relu(self(x)) in one pass (nn.Sequential's fusion)."""
        return conv_relu(1, x, self.weight, self.bias, **self._options())


class Conv2d(_ConvNd):
    """Input (N, C_in, H, W); weight (C_out, C_in/groups, kH, kW)."""

    nd = 2

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, **self._options())

    def forward_relu(self, x):
        """relu(self(x)) in one pass (nn.Sequential's fusion)."""
        return conv_relu(2, x, self.weight, self.bias, **self._options())


class _ConvTransposeNd(Module):
    nd = 0

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 dtype=np.float32, rng=None):
        super().__init__()
        nd = self.nd
        if padding_mode != "zeros":
            raise ValueError(f"only padding_mode='zeros' is supported for transposed "
                             f"convolutions, got {padding_mode!r}")
        _check_channels(in_channels, out_channels, groups)
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        op = type(self).__name__
        self.kernel_size = F._tuple(kernel_size, nd, "kernel_size", op, minimum=1)
        self.stride = F._tuple(stride, nd, "stride", op, minimum=1)
        self.padding = F._tuple(padding, nd, "padding", op, minimum=0)
        self.output_padding = F._tuple(output_padding, nd, "output_padding", op, minimum=0)
        self.dilation = F._tuple(dilation, nd, "dilation", op, minimum=1)
        dtype = _as_dtype(dtype)
        shape = (in_channels, out_channels // groups) + self.kernel_size
        self.weight = Parameter(np.empty(shape, dtype))
        self.bias = Parameter(np.empty(out_channels, dtype)) if bias else None
        # torch computes fan_in from weight.shape[1:] here too: out_channels/groups * kernel
        init_like_torch(self.weight, self.bias, int(np.prod(shape[1:])), rng)

    def _output_padding(self, x, output_size):
        if output_size is None:
            return self.output_padding
        nd = self.nd
        size = tuple(output_size)[-nd:]
        pads = []
        for i in range(nd):
            n = x.shape[x.ndim - nd + i]
            smallest = (n - 1) * self.stride[i] - 2 * self.padding[i] + \
                self.dilation[i] * (self.kernel_size[i] - 1) + 1
            if not smallest <= size[i] < smallest + self.stride[i]:
                raise ValueError(f"requested an output size of {size}, but valid sizes range "
                                 f"from {smallest} to {smallest + self.stride[i] - 1} on dim {i}")
            pads.append(size[i] - smallest)
        return tuple(pads)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, output_padding={self.output_padding}")

    def _call(self, fn, x, output_size):
        return fn(x, self.weight, self.bias, self.stride, self.padding,
                  self._output_padding(x, output_size), self.groups, self.dilation)


class ConvTranspose1d(_ConvTransposeNd):
    """Input (N, C_in, L); weight (C_in, C_out/groups, K)."""

    nd = 1

    def forward(self, x, output_size=None):
        return self._call(F.conv_transpose1d, x, output_size)


class ConvTranspose2d(_ConvTransposeNd):
    """Input (N, C_in, H, W); weight (C_in, C_out/groups, kH, kW)."""

    nd = 2

    def forward(self, x, output_size=None):
        return self._call(F.conv_transpose2d, x, output_size)
