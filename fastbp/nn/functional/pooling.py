"""Pooling: max and average over windows (vectorised over elements, one numpy pass per kernel
offset), and adaptive average pooling."""
from __future__ import annotations

import itertools
import math

import numpy as np

from ...tensor import Function, Tensor
from ._utils import check_floating, check_size, flag_arg, int_arg, ntuple, tensor_arg

__all__ = ["max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d",
           "adaptive_avg_pool2d"]


def _windows(offset, out, stride, dilation):
    """Index of the inputs that kernel position `offset` sees, one per output element."""
    return (Ellipsis,) + tuple(slice(o * d, o * d + s * (n - 1) + 1, s)
                               for o, n, s, d in zip(offset, out, stride, dilation))


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
        # where padding is: a real element beats it even when both are -inf (torch's index);
        # only an input holding -inf can tie with the padding
        tracked = any(padding) and bool(np.isneginf(x).any())
        is_pad = np.pad(np.zeros(x.shape, bool), pad, constant_values=True) if tracked else None

        offsets = itertools.product(*(range(k) for k in kernel))
        first = _windows(next(offsets), out, stride, dilation)
        best = xp[first].copy()
        best_pad = None if is_pad is None else is_pad[first].copy()
        argbest = np.zeros(best.shape, np.intp)
        for i, offset in enumerate(offsets, 1):
            where = _windows(offset, out, stride, dilation)
            window = xp[where]
            take = (window > best) | np.isnan(window)
            if is_pad is not None and best_pad is not None:
                window_pad = is_pad[where]
                take |= best_pad & ~window_pad
                np.copyto(best_pad, window_pad, where=take)
            np.copyto(best, window, where=take)
            argbest[take] = i
        self.argbest, self.padded_shape, self.x_shape = argbest, xp.shape, x.shape
        self.geometry = kernel, stride, padding, dilation, out
        return best

    def backward(self, g):
        kernel, stride, padding, dilation, out = self.geometry
        gp = np.zeros(self.padded_shape, g.dtype)
        zero = np.zeros((), g.dtype)
        for i, offset in enumerate(itertools.product(*(range(k) for k in kernel))):
            # within one offset the strided slice hits distinct inputs, so += is exact
            gp[_windows(offset, out, stride, dilation)] += np.where(self.argbest == i, g, zero)
        crop = (Ellipsis,) + tuple(slice(p, p + n) for p, n in
                                   zip(padding, self.x_shape[-len(kernel):]))
        return gp[crop]


def _no_stride(stride) -> bool:
    """torch's default stride (the kernel size): None or an empty sequence."""
    return stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)


def _max_pool(input, nd, kernel_size, stride, padding, dilation):
    op = f"max_pool{nd}d"
    input = tensor_arg(op, "input", input)
    kernel = ntuple(kernel_size, nd, "kernel_size", op)
    stride = kernel if _no_stride(stride) else ntuple(stride, nd, "stride", op)
    return _MaxPoolNd.apply(input, kernel=kernel, stride=stride,
                            padding=ntuple(padding, nd, "padding", op),
                            dilation=ntuple(dilation, nd, "dilation", op))


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1) -> Tensor:
    """input (N, C, L); stride defaults to kernel_size; padding counts as -inf."""
    return _max_pool(input, 1, kernel_size, stride, padding, dilation)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1) -> Tensor:
    """input (N, C, H, W); stride defaults to kernel_size; padding counts as -inf."""
    return _max_pool(input, 2, kernel_size, stride, padding, dilation)


def _pool_out_size(n, k, s, p, ceil_mode):
    """torch's pooling output length: the last window must start inside the input or left padding."""
    span = n + 2 * p - k
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def _avg_divisors(n, k, s, p, out, count_include_pad):
    """Per output position: how many elements its window averages (torch's rule)."""
    start = np.arange(out) * s - p
    end = np.minimum(start + k, n + p)
    size = end - start
    if not count_include_pad:
        size = np.minimum(end, n) - np.maximum(start, 0)
    return size


class _AvgPoolNd(Function):
    def forward(self, x, *, kernel, stride, padding, ceil_mode, count_include_pad, divisor):
        nd = len(kernel)
        check_floating(f"avg_pool{nd}d", "input", x)
        if x.ndim not in (nd + 1, nd + 2):
            raise ValueError(f"avg_pool{nd}d: expected a {nd + 1}-d or {nd + 2}-d input, got shape {x.shape}")
        for k, s, p in zip(kernel, stride, padding):
            if k < 1 or s < 1 or p < 0:
                raise ValueError(f"avg_pool{nd}d: kernel_size {kernel} and stride {stride} must be "
                                 f">= 1 and padding {padding} >= 0")
            if 2 * p > k:
                raise ValueError(f"avg_pool{nd}d: padding {padding} must be at most half of "
                                 f"kernel_size {kernel}")
        spatial = x.shape[-nd:]
        out = tuple(_pool_out_size(n, k, s, p, ceil_mode)
                    for n, k, s, p in zip(spatial, kernel, stride, padding))
        if min(out) < 1:
            raise ValueError(f"avg_pool{nd}d: input of spatial size {spatial} is too small for "
                             f"kernel_size {kernel} with padding {padding}")
        # padded so that every window, ceil_mode's last one too, lies inside
        full = tuple((o - 1) * s + k for o, s, k in zip(out, stride, kernel))
        pads = [(p, max(f - n - p, 0)) for f, n, p in zip(full, spatial, padding)]
        xp = np.pad(x, [(0, 0)] * (x.ndim - nd) + pads) if any(map(sum, pads)) else x
        if divisor is not None:
            scale = np.asarray(1 / divisor, x.dtype)
        else:
            sizes = [_avg_divisors(n, k, s, p, o, count_include_pad)
                     for n, k, s, p, o in zip(spatial, kernel, stride, padding, out)]
            count = sizes[0] if nd == 1 else np.multiply.outer(sizes[0], sizes[1])
            scale = (1 / count).astype(x.dtype)
        total = None
        for offset in itertools.product(*(range(k) for k in kernel)):
            window = xp[_windows(offset, out, stride, (1,) * nd)]
            total = window.copy() if total is None else np.add(total, window, out=total)
        self.geometry = kernel, stride, out, xp.shape, pads, x.shape
        self.scale = scale
        return total * scale

    def backward(self, g):
        kernel, stride, out, padded, pads, shape = self.geometry
        nd = len(kernel)
        gs = g * self.scale
        if kernel == stride and tuple(o * k for o, k in zip(out, kernel)) == shape[-nd:] == padded[-nd:]:
            # the windows tile the input exactly
            gp = gs
            for axis, k in enumerate(kernel):
                gp = np.repeat(gp, k, axis=gp.ndim - nd + axis)
        else:
            gp = np.zeros(padded, g.dtype)
            for offset in itertools.product(*(range(k) for k in kernel)):
                gp[_windows(offset, out, stride, (1,) * nd)] += gs
        crop = (Ellipsis,) + tuple(slice(p0, p0 + n) for (p0, _), n in zip(pads, shape[-nd:]))
        return gp[crop]


def _avg_pool(nd, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    op = f"avg_pool{nd}d"
    input = tensor_arg(op, "input", input)
    kernel = ntuple(kernel_size, nd, "kernel_size", op)
    stride = kernel if _no_stride(stride) else ntuple(stride, nd, "stride", op)
    if divisor_override is not None:
        divisor_override = int_arg(op, "divisor_override", divisor_override)
        if divisor_override == 0:
            raise ValueError(f"{op}: divisor_override must be non-zero")
    return _AvgPoolNd.apply(input, kernel=kernel, stride=stride,
                            padding=ntuple(padding, nd, "padding", op),
                            ceil_mode=flag_arg(op, "ceil_mode", ceil_mode),
                            count_include_pad=flag_arg(op, "count_include_pad", count_include_pad),
                            divisor=divisor_override)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True) -> Tensor:
    """Mean over windows of the last axis; stride defaults to kernel_size."""
    return _avg_pool(1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None) -> Tensor:
    """Mean over windows of the last two axes; stride defaults to kernel_size."""
    return _avg_pool(2, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def _adaptive_bins(n, out):
    """torch's bins: [floor(i n / out), ceil((i + 1) n / out)). Built by numpy, so that an
    output too large to hold fails here at once with a MemoryError."""
    i = np.arange(out, dtype=np.int64)
    return zip(((i * n) // out).tolist(), (-((-(i + 1) * n) // out)).tolist())


class _AdaptiveAvgPoolNd(Function):
    """Each output averages its bin of the input. Equal bins are one reshape and mean; unequal
    bins (the input not a multiple of the output) one mean per bin along the axis."""

    def forward(self, x, out):
        nd = len(out)
        check_floating(f"adaptive_avg_pool{nd}d", "input", x)
        if x.ndim not in (nd + 1, nd + 2) or 0 in x.shape[-nd:]:
            raise ValueError(f"adaptive_avg_pool{nd}d: expected a {nd + 1}-d or {nd + 2}-d input "
                             f"with non-zero spatial sizes, got shape {x.shape}")
        self.shape, self.out = x.shape, out
        y = x
        for axis, o in zip(range(x.ndim - nd, x.ndim), out):
            y = self._pool_axis(y, axis, o)
        return y

    @staticmethod
    def _pool_axis(a, axis, out):
        n = a.shape[axis]
        if n % out == 0:
            shape = a.shape[:axis] + (out, n // out) + a.shape[axis + 1:]
            return a.reshape(shape).mean(axis=axis + 1)
        parts = [a[(slice(None),) * axis + (slice(lo, hi),)].mean(axis=axis, keepdims=True)
                 for lo, hi in _adaptive_bins(n, out)]
        return np.concatenate(parts, axis=axis)

    def backward(self, g):
        nd = len(self.out)
        for axis, o in zip(range(g.ndim - nd, g.ndim), self.out):
            n = self.shape[axis]
            if n % o == 0:
                g = np.repeat(g / (n // o), n // o, axis=axis)
                continue
            gx = np.zeros(g.shape[:axis] + (n,) + g.shape[axis + 1:], g.dtype)
            for i, (lo, hi) in enumerate(_adaptive_bins(n, o)):
                gx[(slice(None),) * axis + (slice(lo, hi),)] += \
                    g[(slice(None),) * axis + (slice(i, i + 1),)] / (hi - lo)
            g = gx
        return g


def _adaptive(nd, input, output_size):
    op = f"adaptive_avg_pool{nd}d"
    input = tensor_arg(op, "input", input)
    if input.ndim < nd:
        raise ValueError(f"{op}: expected a {nd + 1}-d or {nd + 2}-d input, got shape {input.shape}")
    sizes = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,) * nd
    if len(sizes) != nd:
        raise ValueError(f"{op}: output_size must be an int or a tuple of {nd}, got {output_size!r}")
    sizes = tuple(input.shape[input.ndim - nd + i] if s is None else s for i, s in enumerate(sizes))
    sizes = ntuple(sizes, nd, "output_size", op, minimum=1)
    check_size(op, "output", input.shape[:-nd] + sizes)
    return _AdaptiveAvgPoolNd.apply(input, out=sizes)


def adaptive_avg_pool1d(input, output_size) -> Tensor:
    return _adaptive(1, input, output_size)


def adaptive_avg_pool2d(input, output_size) -> Tensor:
    """output_size: an int, or a pair whose None entries keep the input's size."""
    return _adaptive(2, input, output_size)
