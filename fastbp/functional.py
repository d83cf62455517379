"""The numpy-level API in front of the compiled core.

Semantics and argument names follow ``torch.nn.functional``. Every function accepts numpy arrays
or array-likes (any layout: non-contiguous, Fortran-ordered, negative strides, read-only) and
returns new arrays in the inputs' dtype, float32 or float64. Bad arguments raise TypeError or
ValueError naming the argument and the sizes involved. conv and linear are checked in one C++
entry each (csrc/bind_conv.cpp, csrc/bind_linear.cpp), so that a small call costs a few
microseconds; the other ops are checked here. `_as_array` is the one conversion of non-numpy
inputs for both.
"""
from __future__ import annotations

import math
import operator

import numpy as np

from . import _core

__all__ = [
    "conv1d", "conv1d_backward", "conv2d", "conv2d_backward",
    "linear", "linear_backward", "matmul",
]

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# Largest element count fastbp will try to allocate for one array; beyond it sizes overflow.
_MAX_ELEMENTS = 2**62 // 8


def _as_array(op, name, value):
    """A numpy view of `value` without copying where possible: ndarrays (subclasses as plain
    ndarrays), DLPack producers (`__dlpack__`, e.g. torch or JAX arrays), and whatever
    np.asarray reads (the buffer protocol, `__array__`, `__array_interface__`, nested lists)."""
    if type(value) is np.ndarray:
        return value
    if isinstance(value, np.ndarray):
        return np.asarray(value)
    if hasattr(value, "__dlpack__") and not isinstance(value, np.generic):
        try:
            return np.from_dlpack(value)
        except Exception:  # e.g. a device array or a tensor that requires grad: try the others
            pass
    try:
        return np.asarray(value)
    except Exception as error:
        raise TypeError(f"{op}: {name} must be an array of float32 or float64 (a numpy array, "
                        f"or an object with __array__, __array_interface__, __dlpack__ or the "
                        f"buffer protocol), got {type(value).__name__}: {error}") from None


def _float_arrays(op, optional=("bias", "grad_output", "out"), **arrays):
    """A numpy view of each named argument; require one common float32/float64 dtype. Only the
    names in `optional` may be None (backward passes check grad_output themselves)."""
    out: dict[str, np.ndarray | None] = {}
    dtypes: dict[str, np.dtype] = {}
    for name, value in arrays.items():
        if value is None:
            if name not in optional:
                raise TypeError(f"{op}: {name} must be an array of float32 or float64, got None")
            out[name] = None
            continue
        a = _as_array(op, name, value)
        if a.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"{op}: {name} must be float32 or float64, got dtype {a.dtype}")
        out[name], dtypes[name] = a, a.dtype
    if len(set(dtypes.values())) > 1:
        listed = ", ".join(f"{n}={d}" for n, d in dtypes.items())
        raise TypeError(f"{op}: all arrays must share one dtype, got {listed}")
    return out


def _dense(a):
    """C-contiguous and aligned, copying only when needed."""
    return None if a is None else np.require(a, requirements=("C", "A"))


def _check_ndim(op, name, a, ndims, what):
    if a.ndim not in ndims:
        want = " or ".join(str(n) for n in ndims)
        raise ValueError(f"{op}: {name} must be {want}-d {what}, got shape {a.shape}")


def _check_size(op, what, shape):
    count = 1
    for s in shape:
        count *= int(s)
    if count > _MAX_ELEMENTS:
        raise ValueError(f"{op}: {what} of shape {tuple(shape)} has {count} elements, "
                         f"which overflows what fastbp can address")


def _int_tuple(op, name, value, n, minimum):
    """An int or a sequence of n ints, each >= minimum, as a tuple of n Python ints."""
    items = value if isinstance(value, (tuple, list)) else (value,) * n
    if len(items) != n:
        raise ValueError(f"{op}: {name} must be an int or a sequence of {n} ints, got {value!r}")
    result = []
    for v in items:
        if isinstance(v, (bool, np.bool_)):
            raise TypeError(f"{op}: {name} must contain ints, got {value!r}")
        try:
            v = operator.index(v)
        except TypeError:
            raise TypeError(f"{op}: {name} must contain ints, got {value!r}") from None
        if v < minimum:
            raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
        if v > _MAX_ELEMENTS:
            raise ValueError(f"{op}: {name} is too large ({v} > {_MAX_ELEMENTS}), got {value!r}")
        result.append(v)
    return tuple(result)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           activation=None):
    """2-d convolution (cross-correlation) as torch.nn.functional.conv2d.

    input (N, C_in, H, W) or (C_in, H, W); weight (C_out, C_in/groups, kH, kW); bias (C_out,).
    stride, dilation: int or pair >= 1. padding: int or pair >= 0, 'valid' or 'same'.
    activation='relu' applies relu as the result is written out (the same bits as relu after).
    """
    return _core.conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups,
                      activation)


def conv2d_backward(grad_output, input, weight, stride=1, padding=0, dilation=1, groups=1, *,
                    input_grad=True, weight_grad=True, bias_grad=True):
    """Gradients of conv2d: (grad_input | None, grad_weight | None, grad_bias | None).

    Gradients not asked for are not computed and come back as None.
    """
    return _core.conv_backward("conv2d_backward", 2, grad_output, input, weight, stride, padding,
                               dilation, groups, input_grad, weight_grad, bias_grad)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           activation=None):
    """1-d convolution as torch.nn.functional.conv1d: input (N, C_in, L) or (C_in, L).
    activation='relu' applies relu as the result is written out."""
    return _core.conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups,
                      activation)


def conv1d_backward(grad_output, input, weight, stride=1, padding=0, dilation=1, groups=1, *,
                    input_grad=True, weight_grad=True, bias_grad=True):
    """Gradients of conv1d: (grad_input | None, grad_weight | None, grad_bias | None)."""
    return _core.conv_backward("conv1d_backward", 1, grad_output, input, weight, stride, padding,
                               dilation, groups, input_grad, weight_grad, bias_grad)


def linear(input, weight, bias=None, *, activation=None):
    """input @ weight.T + bias, as torch.nn.functional.linear: input (..., in), weight (out, in).
    activation='relu' applies relu to each tile of the result as the GEMM finishes it."""
    return _core.linear(input, weight, bias, activation)


def linear_backward(grad_output, input, weight, *, input_grad=True, weight_grad=True,
                    bias_grad=True):
    """Gradients of linear: (grad_input | None, grad_weight | None, grad_bias | None)."""
    return _core.linear_backward(grad_output, input, weight, input_grad, weight_grad, bias_grad)


def _gemm_operand(a):
    """A view the core can read in place (any strides that are whole items), else a copy."""
    if a.flags.aligned and all(s % a.itemsize == 0 for s in a.strides):
        return a
    return np.require(a, requirements=("C", "A"))


def _flag(op, name, value):
    """bool(value), or a TypeError naming the argument when it has no one truth value."""
    try:
        return bool(value)
    except Exception:
        raise TypeError(f"{op}: {name} must be a bool, got {value!r}") from None


def _real(op, name, value):
    """A real number (int or float, not a bool) as a Python float."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{op}: {name} must be a real number, got {value!r}")
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"{op}: {name} is too large for a float, got {value!r}") from None


def matmul(a, b, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None):
    """alpha * op(a) @ op(b) + beta * out for 2-d a, b (op = transpose when trans_*).

    With out=None a new array is returned (beta plays no part). With out given, the result is
    written into out (same dtype, shape (M, N), writeable) and out is returned; as in BLAS,
    beta == 0 means out is not read, so NaN or inf there does not propagate.
    """
    op = "matmul"
    arrays = _float_arrays(op, a=a, b=b, out=out)
    a, b = arrays["a"], arrays["b"]
    _check_ndim(op, "a", a, (2,), "")
    _check_ndim(op, "b", b, (2,), "")
    alpha, beta = _real(op, "alpha", alpha), _real(op, "beta", beta)
    trans_a, trans_b = _flag(op, "trans_a", trans_a), _flag(op, "trans_b", trans_b)
    M, K = a.shape[::-1] if trans_a else a.shape
    Kb, N = b.shape[::-1] if trans_b else b.shape
    if K != Kb:
        raise ValueError(f"{op}: inner dimensions differ: op(a) is {M}x{K} (a shape {a.shape}, "
                         f"trans_a={trans_a}) but op(b) is {Kb}x{N} (b shape {b.shape}, "
                         f"trans_b={trans_b})")
    a, b = _gemm_operand(a), _gemm_operand(b)
    if out is None:
        c = np.empty((M, N), dtype=a.dtype)
        if c.size:
            _core.gemm(a, b, c, trans_a, trans_b, alpha, 0.0)
        return c
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{op}: out must be a numpy array, got {type(out).__name__}")
    if out.shape != (M, N):
        raise ValueError(f"{op}: out must have shape ({M}, {N}), got {out.shape}")
    if not out.flags.writeable:
        raise ValueError(f"{op}: out is read-only")
    if out.size == 0:
        return out
    direct = (out.flags.aligned and out.strides[1] == out.itemsize and out.strides[0] >= max(N, 1) * out.itemsize
              and not np.may_share_memory(out, a) and not np.may_share_memory(out, b))
    c = out if direct else np.array(out, order="C")  # a fresh aligned copy
    _core.gemm(a, b, c, trans_a, trans_b, alpha, beta)
    if c is not out:
        out[...] = c
    return out


# --- batched matmul ----------------------------------------------------------------------------
def _batch_operand(a, batch_shape):
    """a broadcast to batch_shape + its matrix shape, as a 3-d view (batch, rows, cols) the core
    reads in place: broadcast axes keep stride 0; axes that cannot merge are copied."""
    a = np.broadcast_to(a, tuple(batch_shape) + a.shape[-2:])
    a = a.reshape((math.prod(batch_shape),) + a.shape[-2:])
    if a.flags.aligned and all(s % a.itemsize == 0 for s in a.strides):
        return a
    return _dense(a)  # ascontiguousarray would keep unaligned data


def batched_matmul(a, b):
    """a @ b as numpy.matmul: the last two axes are matrices, the leading ones broadcast
    (a 1-d operand is a row or column vector). Every product runs on fastbp's GEMM; a batch of
    them is one call into the core, and a 2-d b under a batched a is one GEMM."""
    op = "batched_matmul"
    arrays = _float_arrays(op, a=a, b=b)
    a, b = arrays["a"], arrays["b"]
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"{op}: a and b need at least 1 dimension each, got shapes "
                         f"a {a.shape} and b {b.shape}")
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    (M, K), (Kb, N) = a2.shape[-2:], b2.shape[-2:]
    if K != Kb:
        raise ValueError(f"{op}: inner dimensions differ: a has shape {a.shape} ({K} columns) "
                         f"but b has shape {b.shape} ({Kb} rows)")
    try:
        batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    except ValueError:
        raise ValueError(f"{op}: batch dimensions of a {a.shape} and b {b.shape} do not "
                         f"broadcast") from None
    out_shape = tuple(batch) + (M, N)
    _check_size(op, "output", out_shape)
    out = np.empty(out_shape, dtype=a.dtype)
    if out.size:
        if b2.ndim == 2 and len(batch):  # one GEMM with the batch folded into the rows
            matmul(a2.reshape(math.prod(a2.shape[:-1]), K), b2, out=out.reshape(-1, N))
        else:
            _core.gemm_batched(_batch_operand(a2, batch), _batch_operand(b2, batch),
                               out.reshape(math.prod(batch), M, N), 1.0, 0.0)
    if b.ndim == 1:
        out = out[..., 0]
    if a.ndim == 1:
        out = out[..., 0, :] if b.ndim > 1 else out[..., 0]
    return out


# --- transposed convolution ---------------------------------------------------------------------
def _conv_transpose_args(op, nd, x, weight, bias, stride, padding, output_padding, groups,
                         dilation, grad_output=None):
    """Validate a transposed convolution; return dense 4-d arrays and the geometry of the
    convolution it is the adjoint of (its input is this op's output)."""
    arrays = _float_arrays(op, input=x, weight=weight, bias=bias, grad_output=grad_output)
    x, weight, bias, gy = (arrays[k] for k in ("input", "weight", "bias", "grad_output"))
    _check_ndim(op, "input", x, (nd + 1, nd + 2), "(batched or unbatched)")
    _check_ndim(op, "weight", weight, (nd + 2,),
                f"(in_channels, out_channels/groups, {'kH, kW' if nd == 2 else 'kW'})")
    unbatched = x.ndim == nd + 1
    if isinstance(groups, (bool, np.bool_)):
        raise TypeError(f"{op}: groups must be an int, got {groups!r}")
    try:
        groups = operator.index(groups)
    except TypeError:
        raise TypeError(f"{op}: groups must be an int, got {groups!r}") from None
    if groups < 1:
        raise ValueError(f"{op}: groups must be >= 1, got {groups}")
    xs = (1,) + x.shape if unbatched else x.shape
    N, C = xs[0], xs[1]
    if weight.shape[0] != C:
        raise ValueError(f"{op}: input has {C} channels (shape {x.shape}) but weight has "
                         f"in_channels={weight.shape[0]} (weight shape {weight.shape})")
    if C % groups:
        raise ValueError(f"{op}: groups={groups} must divide in_channels={C} "
                         f"(input shape {x.shape})")
    O = weight.shape[1] * groups
    if bias is not None and (bias.ndim != 1 or bias.shape[0] != O):
        raise ValueError(f"{op}: bias must have shape ({O},) (out_channels/groups "
                         f"{weight.shape[1]} x groups {groups}), got {bias.shape}")
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding must be an int or a tuple of {nd} ints, got {padding!r}")
    stride = _int_tuple(op, "stride", stride, nd, 1)
    dilation = _int_tuple(op, "dilation", dilation, nd, 1)
    padding = _int_tuple(op, "padding", padding, nd, 0)
    output_padding = _int_tuple(op, "output_padding", output_padding, nd, 0)
    ksize = weight.shape[2:]
    out = []
    for axis, (size, k, s, p, q, d) in enumerate(zip(xs[2:], ksize, stride, padding,
                                                    output_padding, dilation)):
        if q >= s and q >= d:
            raise ValueError(f"{op}: output_padding {output_padding} must be smaller than "
                             f"either stride {stride} or dilation {dilation}")
        n = (size - 1) * s - 2 * p + d * (k - 1) + q + 1
        if k < 1 or size < 1 or n < 1:
            raise ValueError(f"{op}: input of spatial size {tuple(xs[2:])} with kernel "
                             f"{tuple(ksize)}, stride {stride}, padding {padding}, dilation "
                             f"{dilation}, output_padding {output_padding} gives output size "
                             f"{n} on spatial axis {axis}, which must be positive")
        out.append(n)
    out_shape = (N, O, *out)
    _check_size(op, "output", out_shape)
    _check_size(op, "column buffer", (weight.shape[1] * math.prod(ksize), math.prod(xs[2:]) + 1024))
    if gy is not None:
        expect = out_shape[1:] if unbatched else out_shape
        if gy.shape != tuple(expect):
            raise ValueError(f"{op}: grad_output must have shape {tuple(expect)} (the output of "
                             f"input {x.shape} and weight {weight.shape}), got {gy.shape}")

    def as4d(a, lead):
        if a is None:
            return None
        a = a.reshape(lead + a.shape) if unbatched and lead else a
        if nd == 1:
            a = a.reshape(a.shape[:2] + (1,) + a.shape[2:])
        return _dense(a)
    if nd == 1:
        stride, dilation, padding = (1,) + stride, (1,) + dilation, (0,) + padding
        out, in_size = [1] + out, (1,) + tuple(xs[2:])
    else:
        in_size = tuple(xs[2:])
    geom = dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
                out_size=(N, O) + tuple(out), in_size=in_size)
    return as4d(x, (1,)), as4d(weight, ()), _dense(bias), as4d(gy, (1,)), geom, unbatched


def _conv_transpose_forward(op, nd, x, weight, bias, stride, padding, output_padding, groups,
                            dilation):
    x4, w4, b, _, geom, unbatched = _conv_transpose_args(op, nd, x, weight, bias, stride, padding,
                                                         output_padding, groups, dilation)
    y = _core.conv2d_backward_input(x4, w4, list(geom["out_size"]), geom["stride"],
                                    geom["padding"], geom["dilation"], geom["groups"])
    if b is not None:
        y += b.reshape(-1, 1, 1)
    if nd == 1:
        y = y.reshape(y.shape[0], y.shape[1], y.shape[3])
    return y[0] if unbatched else y


def _conv_transpose_backward(op, nd, grad_output, x, weight, stride, padding, output_padding,
                             groups, dilation, input_grad, weight_grad, bias_grad):
    if grad_output is None:
        raise TypeError(f"{op}: grad_output must be an array of float32 or float64, got None")
    x4, w4, _, gy4, geom, unbatched = _conv_transpose_args(
        op, nd, x, weight, None, stride, padding, output_padding, groups, dilation, grad_output)
    input_grad, weight_grad, bias_grad = (_flag(op, n, v) for n, v in (
        ("input_grad", input_grad), ("weight_grad", weight_grad), ("bias_grad", bias_grad)))
    args = (geom["stride"], geom["padding"], geom["dilation"], geom["groups"])
    gx: np.ndarray | None = None
    gw: np.ndarray | None = None
    gb: np.ndarray | None = None
    if input_grad:  # the convolution itself, cut to the input's size
        gx = _core.conv2d_forward(gy4, w4, None, *args, geom["in_size"]).reshape(np.shape(x))
    if weight_grad:  # the convolution's weight gradient, with this op's input as its dY
        gw = _core.conv2d_backward(x4, gy4, w4, *args, False, True, False)[1]
        assert gw is not None  # asked for
        gw = gw.reshape(np.shape(weight))
    if bias_grad:
        gb = gy4.sum(axis=(0, 2, 3))
    return gx, gw, gb


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """2-d transposed convolution as torch.nn.functional.conv_transpose2d: input (N, C_in, H, W)
    or (C_in, H, W); weight (C_in, C_out/groups, kH, kW); output size per axis
    (size - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1."""
    return _conv_transpose_forward("conv_transpose2d", 2, input, weight, bias, stride, padding,
                                   output_padding, groups, dilation)


def conv_transpose2d_backward(grad_output, input, weight, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, *, input_grad=True, weight_grad=True,
                              bias_grad=True):
    """Gradients of conv_transpose2d: (grad_input | None, grad_weight | None, grad_bias | None)."""
    return _conv_transpose_backward("conv_transpose2d_backward", 2, grad_output, input, weight,
                                    stride, padding, output_padding, groups, dilation,
                                    input_grad, weight_grad, bias_grad)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """1-d transposed convolution as torch.nn.functional.conv_transpose1d: input (N, C_in, L)."""
    return _conv_transpose_forward("conv_transpose1d", 1, input, weight, bias, stride, padding,
                                   output_padding, groups, dilation)


def conv_transpose1d_backward(grad_output, input, weight, stride=1, padding=0, output_padding=0,
                              groups=1, dilation=1, *, input_grad=True, weight_grad=True,
                              bias_grad=True):
    """Gradients of conv_transpose1d: (grad_input | None, grad_weight | None, grad_bias | None)."""
    return _conv_transpose_backward("conv_transpose1d_backward", 1, grad_output, input, weight,
                                    stride, padding, output_padding, groups, dilation,
                                    input_grad, weight_grad, bias_grad)


__all__ += ["batched_matmul", "conv_transpose1d", "conv_transpose1d_backward",
            "conv_transpose2d", "conv_transpose2d_backward"]
