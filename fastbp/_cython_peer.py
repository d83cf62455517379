"""A benchmark peer: the convolution layer as a course teaches it, Cython im2col + numpy matmul.

forward:  cols = im2col(pad(x))  (C*kh*kw rows, one column per output pixel of every image)
          Y = W cols + b          (numpy's matmul, its BLAS threads)
backward: dW = dY colsᵀ, db = Σ dY, dX = col2im(Wᵀ dY), with the cols the forward kept

im2col/col2im are plain one-thread Cython loops (_im2col_cython.pyx), compiled on first use.
Groups 1 and dilation 1 only: the public suite needs no more.
"""
from __future__ import annotations

import os
import tempfile
from types import ModuleType

import numpy as np

from ._cython_build import CythonUnavailable, build_module

__all__ = ["conv_fns", "load", "CythonUnavailable"]

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_im2col_cython.pyx")
_loaded: dict[str, ModuleType] = {}  # build folder -> compiled module


def _default_build_dir():
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(cache, "fastbp")
    try:
        os.makedirs(path, exist_ok=True)
        return path
    except OSError:
        return os.path.join(tempfile.gettempdir(), f"fastbp-{os.getuid() if hasattr(os, 'getuid') else 'user'}")


def load(build_dir=None):
    """The compiled im2col/col2im module, compiled on first use into build_dir (by default the
    user's cache folder, ~/.cache/fastbp). Raises CythonUnavailable without Cython, setuptools or
    a C compiler."""
    build_dir = os.fspath(build_dir) if build_dir is not None else _default_build_dir()
    if build_dir not in _loaded:
        _loaded[build_dir] = build_module(SOURCE, "fastbp_im2col_cython", build_dir)
    return _loaded[build_dir]


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def conv_fns(x, weight, bias, grad_output, stride=1, padding=0, build_dir=None):
    """(forward, backward): zero-argument callables of the course layer on these arrays.

    x (N, C, H, W) with weight (O, C, kh, kw), or 1-d x (N, C, L) with weight (O, C, k); bias
    (O,) or None; grad_output the shape of the output; stride and padding ints or pairs (ints for
    1-d). forward() returns y; backward() returns (grad_input, grad_weight, grad_bias), reusing
    the column matrix that the last forward() kept, as the course layer's cache does (forward()
    runs once here, so backward() can be called first).
    """
    ext = load(build_dir)
    one_d = np.ndim(x) == 3
    x, weight, grad_output = (np.ascontiguousarray(a) for a in (x, weight, grad_output))
    if one_d:  # a 1-d convolution is a 2-d one of height 1
        x, weight, grad_output = (a[:, :, None, :] for a in (x, weight, grad_output))
        stride, padding = (1, stride), (0, padding)
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    N, C, H, W = x.shape
    O, Cw, kh, kw = weight.shape
    if Cw != C:
        raise ValueError(f"conv_fns: the course layer has no groups; input has {C} channels, "
                         f"weight expects {Cw} (weight shape {weight.shape})")
    Ho, Wo = (H + 2 * ph - kh) // sh + 1, (W + 2 * pw - kw) // sw + 1
    if grad_output.shape != (N, O, Ho, Wo):
        raise ValueError(f"conv_fns: grad_output must have shape {(N, O, Ho, Wo)}, got "
                         f"{grad_output.shape}")
    w_rows = weight.reshape(O, C * kh * kw)
    kept = {}

    def forward():
        x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        cols = np.empty((C * kh * kw, N * Ho * Wo), x.dtype)
        ext.im2col(x_pad, cols, kh, kw, sh, sw, Ho, Wo)
        kept["cols"] = cols
        y = (w_rows @ cols).reshape(O, N, Ho, Wo)
        if bias is not None:
            y += bias.reshape(O, 1, 1, 1)
        y = np.ascontiguousarray(y.transpose(1, 0, 2, 3))
        return y.reshape(N, O, Wo) if one_d else y

    def backward():
        cols = kept["cols"]
        dy = np.ascontiguousarray(grad_output.transpose(1, 0, 2, 3)).reshape(O, N * Ho * Wo)
        grad_bias = dy.sum(axis=1)
        grad_weight = (dy @ cols.T).reshape(weight.shape)
        dx_pad = np.zeros((N, C, H + 2 * ph, W + 2 * pw), x.dtype)
        ext.col2im(w_rows.T @ dy, dx_pad, kh, kw, sh, sw, Ho, Wo)
        grad_input = np.ascontiguousarray(dx_pad[:, :, ph:ph + H, pw:pw + W])
        if one_d:
            return grad_input[:, :, 0], grad_weight[:, :, 0], grad_bias
        return grad_input, grad_weight, grad_bias

    forward()
    return forward, backward
