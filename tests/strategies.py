"""Hypothesis strategies for every public op, shared by the property tests
(tests/test_properties.py) and the fuzz target (tests/fuzz_ops.py).

An op is described once, in OPS: how to draw a valid call (arrays of odd shapes in any memory
layout, geometry as ints, pairs, 'same' or 'valid'), and the kind of each argument, from which
`bad_value(kind)` draws values that the op must refuse with a TypeError or ValueError naming
that argument (or a MemoryError/OverflowError for sizes).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from hypothesis import strategies as st

import fastbp
import fastbp.nn.functional as F
from fastbp import Tensor

DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
SIZE_ERRORS = (MemoryError, OverflowError)
ALLOWED_ERRORS = (TypeError, ValueError) + SIZE_ERRORS


# --- arrays in every memory layout ------------------------------------------------------------
def _unaligned(a):
    """A copy whose data starts one byte past an aligned address."""
    raw = np.empty(a.nbytes + 1, np.uint8)
    out = raw[1:].view(a.dtype).reshape(a.shape) if a.size else np.empty(a.shape, a.dtype)
    out[...] = a
    return out


def _non_contiguous(a):
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype) if a.ndim else a.copy()
    if a.ndim:
        wide[..., ::2] = a
        return wide[..., ::2]
    return wide


def _negative_strides(a):
    flip = (slice(None, None, -1),) * a.ndim
    return a[flip].copy()[flip]


def _read_only(a):
    a = a.copy()
    a.setflags(write=False)
    return a


LAYOUTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "contiguous": lambda a: a,
    "fortran": np.asfortranarray,
    "noncontig": _non_contiguous,
    "negstride": _negative_strides,
    "readonly": _read_only,
    "unaligned": _unaligned,
}


@st.composite
def arrays(draw, shape, dtype, layout=True, low=None):
    """Standard-normal values of `shape` (|x| + low when low is given) in a drawn layout."""
    seed = draw(st.integers(0, 2**32 - 1))
    a = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    if low is not None:
        a = np.abs(a) + dtype.type(low)
    if layout:
        a = LAYOUTS[draw(st.sampled_from(sorted(LAYOUTS)))](a)
    return a


sizes = st.integers(1, 9)


def pairs(lo, hi, nd):
    """An int or an nd-tuple of ints in [lo, hi], as torch accepts both."""
    one = st.integers(lo, hi)
    return one | st.tuples(*[one] * nd) if nd > 1 else one | st.tuples(one)


# --- valid calls ------------------------------------------------------------------------------
@st.composite
def conv_calls(draw, nd, backward=False, tensors=False):
    """(args, kwargs) of a valid conv{nd}d (or its backward) call."""
    dtype = draw(st.sampled_from(DTYPES))
    groups = draw(st.integers(1, 3))
    cin, cout = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    k = draw(st.tuples(*[st.integers(1, 4)] * nd))
    dilation = draw(pairs(1, 3, nd))
    dil = (dilation,) * nd if isinstance(dilation, int) else dilation
    mode = draw(st.sampled_from(["int", "same", "valid"]))
    stride = 1 if mode == "same" else draw(pairs(1, 3, nd))
    padding = mode if mode != "int" else draw(pairs(0, 3, nd))
    pad = (0,) * nd if mode != "int" else ((padding,) * nd if isinstance(padding, int) else padding)
    # spatial sizes at least the dilated kernel minus the padding, so the output is non-empty
    spatial = tuple(max(1, d * (kk - 1) + 1 - 2 * p) + draw(st.integers(0, 6))
                    for kk, d, p in zip(k, dil, pad))
    batch = draw(st.sampled_from([None, 0, 1, 2, 3]))  # None: unbatched
    x_shape = ((batch,) if batch is not None else ()) + (cin,) + spatial
    x = draw(arrays(x_shape, dtype, layout=not tensors))
    w = draw(arrays((cout, cin // groups) + k, dtype, layout=not tensors))
    geometry = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    if backward:
        y = getattr(fastbp.reference, f"conv{nd}d")(x if batch is not None else x[None], w,
                                                    None, **geometry)
        gy = draw(arrays(y.shape if batch is not None else y.shape[1:], dtype))
        return (gy, x, w), geometry
    b = draw(st.none() | arrays((cout,), dtype, layout=not tensors))
    return (x, w, b), geometry


@st.composite
def conv_transpose_calls(draw, nd, backward=False, tensors=False):
    dtype = draw(st.sampled_from(DTYPES))
    groups = draw(st.integers(1, 3))
    cin, cout = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    k = draw(st.tuples(*[st.integers(1, 4)] * nd))
    stride = draw(st.tuples(*[st.integers(1, 3)] * nd))
    dilation = draw(st.tuples(*[st.integers(1, 2)] * nd))
    output_padding = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
    spatial = draw(st.tuples(*[st.integers(1, 6)] * nd))
    padding = tuple(draw(st.integers(0, ((n - 1) * s + d * (kk - 1) + q) // 2))
                    for n, s, d, kk, q in zip(spatial, stride, dilation, k, output_padding))
    batch = draw(st.sampled_from([0, 1, 2]))
    x = draw(arrays((batch, cin) + spatial, dtype, layout=not tensors))
    w = draw(arrays((cin, cout // groups) + k, dtype, layout=not tensors))
    geometry = dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups,
                    dilation=dilation)
    if backward:
        y = getattr(fastbp.reference, f"conv_transpose{nd}d")(x, w, None, **geometry)
        return (draw(arrays(y.shape, dtype)), x, w), geometry
    b = draw(st.none() | arrays((cout,), dtype, layout=not tensors))
    return (x, w, b), geometry


@st.composite
def linear_calls(draw, backward=False, tensors=False):
    dtype = draw(st.sampled_from(DTYPES))
    lead = draw(st.lists(st.integers(0, 4), min_size=0, max_size=2))
    i, o = draw(st.integers(0, 9)), draw(st.integers(1, 9))
    x = draw(arrays(tuple(lead) + (i,), dtype, layout=not tensors))
    w = draw(arrays((o, i), dtype, layout=not tensors))
    if backward:
        return (draw(arrays(tuple(lead) + (o,), dtype)), x, w), {}
    return (x, w, draw(st.none() | arrays((o,), dtype, layout=not tensors))), {}


@st.composite
def matmul_calls(draw):
    dtype = draw(st.sampled_from(DTYPES))
    m, n, k = (draw(st.integers(0, 9)) for _ in range(3))
    ta, tb = draw(st.booleans()), draw(st.booleans())
    a = draw(arrays((k, m) if ta else (m, k), dtype))
    b = draw(arrays((n, k) if tb else (k, n), dtype))
    kwargs: dict[str, Any] = dict(trans_a=ta, trans_b=tb, alpha=draw(st.sampled_from([1.0, -0.5, 2])))
    if draw(st.booleans()):
        kwargs["out"] = np.array(draw(arrays((m, n), dtype, layout=False)))
        kwargs["beta"] = draw(st.sampled_from([0.0, 1.0, -1.5]))
    return (a, b), kwargs


@st.composite
def batched_matmul_calls(draw, tensors=False):
    dtype = draw(st.sampled_from(DTYPES))
    m, n, k = (draw(st.integers(1, 6)) for _ in range(3))
    batch = draw(st.lists(st.integers(1, 3), max_size=2))
    a_batch = [draw(st.sampled_from([s, 1])) for s in batch]
    b_batch = [draw(st.sampled_from([s, 1])) for s in batch][draw(st.integers(0, len(batch))):]
    a_shape = (k,) if draw(st.integers(0, 5)) == 0 else tuple(a_batch) + (m, k)
    b_shape = (k,) if draw(st.integers(0, 5)) == 0 else tuple(b_batch) + (k, n)
    return (draw(arrays(a_shape, dtype, layout=not tensors)),
            draw(arrays(b_shape, dtype, layout=not tensors))), {}


# --- argument kinds and the values each must refuse -------------------------------------------
@dataclass(frozen=True)
class Arg:
    """What an argument is: 'array' (floating arrays or Tensors), 'int' (>= minimum), 'ints'
    (an int or an n-tuple), 'padding' (ints or 'same'/'valid'), 'real', 'flag', 'choice', 'dim'."""
    kind: str
    minimum: int = 0
    n: int = 1
    choices: tuple = ()
    ndims: tuple = ()        # for arrays: the numbers of dims it may have
    optional: bool = False   # None is allowed
    mismatch: tuple = ()     # for arrays: axes whose size must agree with the other arguments


def _ragged():
    return [[1.0, 2.0], [3.0]]


BAD_ARRAYS = st.sampled_from([
    None, "abc", b"xyz", {"a": 1}, object(), 1 + 2j,
]) | st.builds(_ragged) | st.sampled_from([
    np.ones((2, 3), object), np.ones((2, 3), np.complex128), np.array(["a", "b"]),
])


def bad_value(arg: Arg, numpy_level: bool):
    """Values `arg` must refuse. numpy_level ops also refuse integer and bool arrays (they take
    float32/float64 only) and arrays of the wrong number of dims."""
    if arg.kind == "array":
        options = BAD_ARRAYS.filter(lambda v: not (v is None and arg.optional))
        if numpy_level:
            options = options | st.sampled_from([np.ones((2, 3, 4), np.int32),
                                                 np.ones((2, 3, 4, 5), bool),
                                                 np.ones((2, 3), np.float16)])
            if arg.ndims:
                wrong = [d for d in range(0, 7) if d not in arg.ndims]
                options = options | st.sampled_from(wrong).map(lambda d: np.ones((2,) * d))
        return options
    if arg.kind in ("int", "ints", "padding"):
        bounded = arg.minimum > -(2**40)  # else any int is valid (ignore_index, pad)
        below = [arg.minimum - 1, -(2**40)] if bounded else []
        bad = st.sampled_from(["3", 1.5, float("nan"), True, 2**70, [], {}] + below
                              + ([] if arg.optional else [None]))
        if arg.optional:  # None and an empty sequence mean the default (pooling's stride)
            bad = bad.filter(lambda v: v != [])
        if arg.kind != "int":
            # one value too many, and sizes no drawn input has (layer_norm's normalized_shape
            # takes any length: (1, 1) would be valid for an input ending in (1, 1))
            bad = bad | st.just((99,) * (arg.n + 1))
            if bounded:
                bad = bad | st.just((arg.minimum - 1,) * arg.n)
        if arg.kind == "padding":
            bad = bad.filter(lambda v: v != "same") | st.just("full")
        return bad
    if arg.kind == "real":
        return st.sampled_from(["x", [1.0], np.ones(3), 1j] + ([] if arg.optional else [None]))
    if arg.kind == "flag":
        return st.sampled_from([np.ones(3), np.zeros(0)])
    if arg.kind == "choice":
        return st.sampled_from(["bogus", 3, b"none"] + ([] if arg.optional else [None]))
    if arg.kind == "dim":
        return st.sampled_from(["0", 1.5, 99, -99] + ([] if arg.optional else [None]))
    raise AssertionError(arg.kind)


# --- the ops ----------------------------------------------------------------------------------
@dataclass
class Op:
    name: str
    fn: Callable
    args: dict            # argument name -> Arg, in signature order
    valid: Any            # strategy of (args tuple, kwargs dict); args fill the first names
    numpy_level: bool = False
    also_named: tuple = field(default_factory=tuple)  # names a message may use instead


def _conv_args(nd, backward):
    ndims = (nd + 1, nd + 2)
    channel = -(nd + 1)
    arrays_ = {"grad_output": Arg("array", ndims=ndims, mismatch=(-1, channel))} if backward else {}
    arrays_.update(input=Arg("array", ndims=ndims, mismatch=(channel,)),
                   weight=Arg("array", ndims=(nd + 2,), mismatch=(1,)))
    if not backward:
        arrays_["bias"] = Arg("array", ndims=(1,), optional=True, mismatch=(0,))
    return dict(arrays_, stride=Arg("ints", 1, nd), padding=Arg("padding", 0, nd),
                dilation=Arg("ints", 1, nd), groups=Arg("int", 1),
                **({k: Arg("flag") for k in ("input_grad", "weight_grad", "bias_grad")}
                   if backward else {}))


def _conv_transpose_args(nd, backward):
    ndims = (nd + 1, nd + 2)
    channel = -(nd + 1)
    arrays_ = {"grad_output": Arg("array", ndims=ndims, mismatch=(-1, channel))} if backward else {}
    arrays_.update(input=Arg("array", ndims=ndims, mismatch=(channel,)),
                   weight=Arg("array", ndims=(nd + 2,), mismatch=(0,)))
    if not backward:
        arrays_["bias"] = Arg("array", ndims=(1,), optional=True, mismatch=(0,))
    return dict(arrays_, stride=Arg("ints", 1, nd), padding=Arg("ints", 0, nd),
                output_padding=Arg("ints", 0, nd), groups=Arg("int", 1),
                dilation=Arg("ints", 1, nd),
                **({k: Arg("flag") for k in ("input_grad", "weight_grad", "bias_grad")}
                   if backward else {}))


def _tensors(strategy, grad=True):
    """A strategy of numpy calls turned into one of Tensor calls (arrays -> Tensors)."""
    def convert(call):
        args, kwargs = call
        return tuple(Tensor(np.ascontiguousarray(a), requires_grad=grad and a.dtype.kind == "f")
                     if isinstance(a, np.ndarray) else a for a in args), kwargs
    return strategy.map(convert)


FLOAT_TENSOR = st.sampled_from(DTYPES).flatmap(
    lambda dt: st.lists(st.integers(1, 5), min_size=1, max_size=4).flatmap(
        lambda shape: arrays(tuple(shape), dt, layout=False)))


def _unary(extra=None):
    return FLOAT_TENSOR.map(lambda a: ((Tensor(a, requires_grad=True),), dict(extra or {})))


@st.composite
def _pool_call(draw, nd, kind):
    dtype = draw(st.sampled_from(DTYPES))
    k = draw(st.tuples(*[st.integers(1, 3)] * nd))
    stride = draw(st.none() | st.tuples(*[st.integers(1, 3)] * nd))
    padding = tuple(draw(st.integers(0, kk // 2)) for kk in k)
    extra: dict[str, Any] = {}
    dil = (1,) * nd
    if kind == "max":
        dil = draw(st.tuples(*[st.integers(1, 2)] * nd))
        extra["dilation"] = dil
    else:
        extra["ceil_mode"] = draw(st.booleans())
        extra["count_include_pad"] = draw(st.booleans())
    spatial = tuple(d * (kk - 1) + 1 + draw(st.integers(0, 5)) for kk, d in zip(k, dil))
    lead = (draw(st.integers(1, 2)), draw(st.integers(1, 3)))
    x = draw(arrays(lead + spatial, dtype, layout=False))
    return (Tensor(x, requires_grad=True), k), dict(stride=stride, padding=padding, **extra)


@st.composite
def _adaptive_call(draw, nd):
    dtype = draw(st.sampled_from(DTYPES))
    spatial = draw(st.tuples(*[st.integers(1, 7)] * nd))
    out = draw(st.tuples(*[st.integers(1, 8)] * nd))
    x = draw(arrays((2, 3) + spatial, dtype, layout=False))
    return (Tensor(x, requires_grad=True), out if nd > 1 else out[0]), {}


@st.composite
def _softmax_call(draw):
    a = draw(FLOAT_TENSOR)
    return (Tensor(a, requires_grad=True),), dict(dim=draw(st.integers(-a.ndim, a.ndim - 1)))


@st.composite
def _batch_norm_call(draw):
    dtype = draw(st.sampled_from(DTYPES))
    shape = (draw(st.integers(2, 4)), draw(st.integers(1, 4))) + tuple(
        draw(st.lists(st.integers(1, 4), max_size=2)))
    c = shape[1]
    x = draw(arrays(shape, dtype))  # any layout, unaligned too (the kernels need a dense copy)
    rm = draw(arrays((c,), dtype, layout=False))
    rv = draw(arrays((c,), dtype, layout=False, low=0.5))
    w, b = draw(arrays((c,), dtype, layout=False)), draw(arrays((c,), dtype, layout=False))
    return ((Tensor(x, requires_grad=True), rm, rv, Tensor(w, requires_grad=True),
             Tensor(b, requires_grad=True)), dict(training=draw(st.booleans())))


@st.composite
def _layer_norm_call(draw):
    dtype = draw(st.sampled_from(DTYPES))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    nd = draw(st.integers(1, len(shape)))
    x = draw(arrays(shape, dtype, layout=False))
    w, b = draw(arrays(shape[-nd:], dtype, layout=False)), draw(arrays(shape[-nd:], dtype, layout=False))
    return ((Tensor(x, requires_grad=True), shape[-nd:], Tensor(w, requires_grad=True),
             Tensor(b, requires_grad=True)), {})


@st.composite
def _pair_call(draw, positive_target=False):
    a = draw(FLOAT_TENSOR)
    t = draw(arrays(a.shape, a.dtype, layout=False))
    if positive_target:
        t = (t > 0).astype(a.dtype)
    return (Tensor(a, requires_grad=True), Tensor(t)), {}


@st.composite
def _class_call(draw, log_probs=False):
    dtype = draw(st.sampled_from(DTYPES))
    n, c = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    extra = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    x = draw(arrays((n, c) + extra, dtype, layout=False))
    seed = draw(st.integers(0, 2**32 - 1))
    target = np.random.default_rng(seed).integers(0, c, (n,) + extra)
    return (Tensor(x, requires_grad=True), target), {}


@st.composite
def _gaussian_call(draw):
    a = draw(FLOAT_TENSOR)
    t = draw(arrays(a.shape, a.dtype, layout=False))
    v = draw(arrays(a.shape, a.dtype, layout=False, low=0.1))
    return (Tensor(a, requires_grad=True), Tensor(t), Tensor(v, requires_grad=True)), {}


@st.composite
def _sdpa_call(draw):
    dtype = draw(st.sampled_from(DTYPES))
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    L, S, E, Ev = (draw(st.integers(1, 5)) for _ in range(4))
    q, k = draw(arrays(lead + (L, E), dtype, layout=False)), draw(arrays(lead + (S, E), dtype, layout=False))
    v = draw(arrays(lead + (S, Ev), dtype, layout=False))
    kwargs: dict[str, Any] = {}
    if draw(st.booleans()):
        kwargs["is_causal"] = True
    return tuple(Tensor(a, requires_grad=True) for a in (q, k, v)), kwargs


@st.composite
def _pad_call(draw):
    a = draw(FLOAT_TENSOR)
    n = draw(st.integers(1, a.ndim))
    pad = tuple(draw(st.integers(0, 3)) for _ in range(2 * n))
    return (Tensor(a, requires_grad=True), pad), dict(value=draw(st.sampled_from([0.0, 1.5])))


@st.composite
def _flatten_call(draw):
    a = draw(FLOAT_TENSOR)
    start = draw(st.integers(0, a.ndim - 1))
    end = draw(st.integers(start, a.ndim - 1))
    return (Tensor(a, requires_grad=True),), dict(start_dim=start, end_dim=end)


def _mha_call():
    def build(seed):
        rng = np.random.default_rng(seed)
        L, N, E, heads = 3, 2, 4, 2
        r = lambda *s: rng.standard_normal(s)  # noqa: E731
        return ((Tensor(r(L, N, E)), Tensor(r(L, N, E)), Tensor(r(L, N, E)), E, heads,
                 Tensor(r(3 * E, E)), Tensor(r(3 * E)), None, None, False, 0.0,
                 Tensor(r(E, E)), Tensor(r(E))), {})
    return st.integers(0, 2**32 - 1).map(build)


EPILOGUE = dict(activation=Arg("choice", choices=("relu",), optional=True))  # None or 'relu'
OPS_LINEAR_ARGS = dict(input=Arg("array", mismatch=(-1,)), weight=Arg("array", mismatch=(1,)),
                       bias=Arg("array", optional=True, mismatch=(0,)))
TENSOR = Arg("array")
OPT_TENSOR = Arg("array", optional=True)
REDUCTION = Arg("choice", choices=("mean", "sum", "none"))


def _ops() -> list[Op]:
    ops = []
    for nd in (1, 2):
        ops += [
            Op(f"conv{nd}d", getattr(fastbp, f"conv{nd}d"), dict(_conv_args(nd, False), **EPILOGUE),
               conv_calls(nd), numpy_level=True),
            Op(f"conv{nd}d_backward", getattr(fastbp, f"conv{nd}d_backward"), _conv_args(nd, True),
               conv_calls(nd, backward=True), numpy_level=True),
            Op(f"conv_transpose{nd}d", getattr(fastbp, f"conv_transpose{nd}d"),
               _conv_transpose_args(nd, False), conv_transpose_calls(nd), numpy_level=True),
            Op(f"conv_transpose{nd}d_backward", getattr(fastbp, f"conv_transpose{nd}d_backward"),
               _conv_transpose_args(nd, True), conv_transpose_calls(nd, backward=True),
               numpy_level=True),
        ]
    flags = {k: Arg("flag") for k in ("input_grad", "weight_grad", "bias_grad")}
    ops += [
        Op("linear", fastbp.linear,
           dict(input=Arg("array", ndims=(1, 2, 3, 4, 5, 6), mismatch=(-1,)),
                weight=Arg("array", ndims=(2,), mismatch=(1,)),
                bias=Arg("array", ndims=(1,), optional=True, mismatch=(0,)), **EPILOGUE),
           linear_calls(), numpy_level=True),
        Op("linear_backward", fastbp.linear_backward,
           dict(grad_output=Arg("array", ndims=(1, 2, 3, 4, 5, 6), mismatch=(-1,)),
                input=Arg("array", ndims=(1, 2, 3, 4, 5, 6), mismatch=(-1,)),
                weight=Arg("array", ndims=(2,), mismatch=(0, 1)),
                **flags), linear_calls(backward=True), numpy_level=True),
        Op("matmul", fastbp.matmul, dict(a=Arg("array", ndims=(2,)), b=Arg("array", ndims=(2,)),
                                         trans_a=Arg("flag"), trans_b=Arg("flag"),
                                         alpha=Arg("real"), beta=Arg("real")),
           matmul_calls(), numpy_level=True),
        Op("batched_matmul", fastbp.batched_matmul,
           dict(a=Arg("array", ndims=tuple(range(1, 7))), b=Arg("array", ndims=tuple(range(1, 7)))),
           batched_matmul_calls(), numpy_level=True),
    ]
    # nn.functional on Tensors
    for nd in (1, 2):
        conv = _conv_args(nd, False)
        ops.append(Op(f"F.conv{nd}d", getattr(F, f"conv{nd}d"), conv,
                      _tensors(conv_calls(nd, tensors=True))))
        convt = _conv_transpose_args(nd, False)
        ops.append(Op(f"F.conv_transpose{nd}d", getattr(F, f"conv_transpose{nd}d"), convt,
                      _tensors(conv_transpose_calls(nd, tensors=True))))
        pool_geometry = dict(kernel_size=Arg("ints", 1, nd), stride=Arg("ints", 1, nd, optional=True),
                             padding=Arg("ints", 0, nd))
        ops.append(Op(f"F.max_pool{nd}d", getattr(F, f"max_pool{nd}d"),
                      dict(input=TENSOR, **pool_geometry, dilation=Arg("ints", 1, nd)),
                      _pool_call(nd, "max")))
        ops.append(Op(f"F.avg_pool{nd}d", getattr(F, f"avg_pool{nd}d"),
                      dict(input=TENSOR, **pool_geometry, ceil_mode=Arg("flag"),
                           count_include_pad=Arg("flag")), _pool_call(nd, "avg")))
        ops.append(Op(f"F.adaptive_avg_pool{nd}d", getattr(F, f"adaptive_avg_pool{nd}d"),
                      dict(input=TENSOR, output_size=Arg("ints", 1, nd, optional=True)),
                      _adaptive_call(nd)))
    ops += [
        Op("F.linear", F.linear, dict(OPS_LINEAR_ARGS), _tensors(linear_calls(tensors=True))),
        Op("F.relu", F.relu, dict(input=TENSOR), _unary()),
        Op("F.sigmoid", F.sigmoid, dict(input=TENSOR), _unary()),
        Op("F.tanh", F.tanh, dict(input=TENSOR), _unary()),
        Op("F.gelu", F.gelu, dict(input=TENSOR, approximate=Arg("choice", choices=("none", "tanh"))),
           st.sampled_from(["none", "tanh"]).flatmap(lambda a: _unary(dict(approximate=a)))),
        Op("F.leaky_relu", F.leaky_relu, dict(input=TENSOR, negative_slope=Arg("real")),
           _unary(dict(negative_slope=0.2))),
        Op("F.elu", F.elu, dict(input=TENSOR, alpha=Arg("real")), _unary(dict(alpha=0.7))),
        Op("F.softplus", F.softplus, dict(input=TENSOR, beta=Arg("real"), threshold=Arg("real")),
           _unary(dict(beta=1.5, threshold=3.0))),
        Op("F.softmax", F.softmax, dict(input=TENSOR, dim=Arg("dim", optional=True)),
           _softmax_call()),
        Op("F.log_softmax", F.log_softmax, dict(input=TENSOR, dim=Arg("dim", optional=True)),
           _softmax_call()),
        Op("F.batch_norm", F.batch_norm,
           dict(input=TENSOR, running_mean=OPT_TENSOR, running_var=OPT_TENSOR, weight=OPT_TENSOR,
                bias=OPT_TENSOR, training=Arg("flag"), momentum=Arg("real"), eps=Arg("real")),
           _batch_norm_call()),
        Op("F.layer_norm", F.layer_norm,
           dict(input=TENSOR, normalized_shape=Arg("ints", 0, 1), weight=OPT_TENSOR,
                bias=OPT_TENSOR, eps=Arg("real")), _layer_norm_call()),
        Op("F.dropout", F.dropout, dict(input=TENSOR, p=Arg("real"), training=Arg("flag")),
           _unary(dict(p=0.0))),
        Op("F.scaled_dot_product_attention", F.scaled_dot_product_attention,
           dict(query=TENSOR, key=TENSOR, value=TENSOR, attn_mask=OPT_TENSOR,
                dropout_p=Arg("real"), is_causal=Arg("flag"), scale=Arg("real", optional=True)),
           _sdpa_call()),
        Op("F.multi_head_attention_forward", F.multi_head_attention_forward,
           dict(query=TENSOR, key=TENSOR, value=TENSOR, embed_dim_to_check=Arg("int", 1),
                num_heads=Arg("int", 1)), _mha_call()),
        Op("F.cross_entropy", F.cross_entropy, dict(input=TENSOR, target=TENSOR, reduction=REDUCTION),
           _class_call()),
        Op("F.nll_loss", F.nll_loss, dict(input=TENSOR, target=TENSOR, weight=OPT_TENSOR,
                                          ignore_index=Arg("int", -(2**40)), reduction=REDUCTION),
           _class_call(log_probs=True)),
        Op("F.mse_loss", F.mse_loss, dict(input=TENSOR, target=TENSOR, reduction=REDUCTION), _pair_call()),
        Op("F.l1_loss", F.l1_loss, dict(input=TENSOR, target=TENSOR, reduction=REDUCTION), _pair_call()),
        Op("F.smooth_l1_loss", F.smooth_l1_loss,
           dict(input=TENSOR, target=TENSOR, reduction=REDUCTION, beta=Arg("real")), _pair_call()),
        Op("F.binary_cross_entropy_with_logits", F.binary_cross_entropy_with_logits,
           dict(input=TENSOR, target=TENSOR, weight=OPT_TENSOR, reduction=REDUCTION,
                pos_weight=OPT_TENSOR), _pair_call(positive_target=True)),
        Op("F.gaussian_nll_loss", F.gaussian_nll_loss,
           dict(input=TENSOR, target=TENSOR, var=TENSOR, full=Arg("flag"), eps=Arg("real"),
                reduction=REDUCTION), _gaussian_call()),
        Op("F.flatten", F.flatten, dict(input=TENSOR, start_dim=Arg("dim"), end_dim=Arg("dim")),
           _flatten_call()),
        # pad=() pads nothing, as in torch: optional
        Op("F.pad", F.pad, dict(input=TENSOR, pad=Arg("ints", -(2**40), 2, optional=True),
                                mode=Arg("choice", choices=("constant",)),
                                value=Arg("real", optional=True)), _pad_call()),
    ]
    return ops


OPS = {op.name: op for op in _ops()}


def public_op_names() -> set[str]:
    """Every public op of fastbp and fastbp.nn.functional, named as in OPS."""
    numpy_ops = {n for n in fastbp.__all__ if callable(getattr(fastbp, n)) and
                 getattr(getattr(fastbp, n), "__module__", "") == "fastbp.functional"}
    return numpy_ops | {"F." + n for n in F.__all__}


def call(op: Op, args: tuple, kwargs: dict, replace: dict | None = None):
    """op.fn with the valid (args, kwargs) where `replace` overrides some arguments by name."""
    names = list(op.args)
    replace = dict(replace or {})
    positional = [replace.pop(names[i]) if i < len(names) and names[i] in replace else a
                  for i, a in enumerate(args)]
    return op.fn(*positional, **dict(kwargs, **replace))


@st.composite
def bad_calls(draw, ops=None):
    """(op, valid args, kwargs, name, bad value): one argument of a valid call made invalid."""
    op = OPS[draw(st.sampled_from(sorted(ops or OPS)))]
    args, kwargs = draw(op.valid)
    name = draw(st.sampled_from(sorted(op.args)))
    arg = op.args[name]
    given = dict(zip(op.args, args), **kwargs).get(name)
    if arg.mismatch and given is not None and draw(st.booleans()):
        value = _resized(given, draw(st.sampled_from(arg.mismatch)))
    else:
        value = draw(bad_value(arg, op.numpy_level))
    return op, args, kwargs, name, value


def _resized(value, axis):
    """A copy of an array (or Tensor) one longer along `axis`: a size the others disagree with."""
    a = value.data if isinstance(value, Tensor) else value
    pad = [(0, 0)] * a.ndim
    pad[axis] = (0, 1)
    out = np.pad(a, pad)
    return Tensor(out, requires_grad=value.requires_grad) if isinstance(value, Tensor) else out


def message_names(error: BaseException, name: str) -> bool:
    """Whether the message names the argument (the data argument may be called x or input)."""
    import re
    words = set(re.findall(r"[A-Za-z_][A-Za-z_0-9]*", str(error)))
    return name in words or (name == "input" and "x" in words)


def describe(value) -> str:
    r = repr(value)
    return r if len(r) < 200 else r[:200] + "..."


__all__ = ["OPS", "Op", "Arg", "bad_calls", "bad_value", "call", "message_names",
           "public_op_names", "arrays", "LAYOUTS", "ALLOWED_ERRORS", "SIZE_ERRORS", "math"]
