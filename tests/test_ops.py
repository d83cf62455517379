"""fastbp's numpy-level ops against fastbp.reference (values and float64 finite differences), plus
bad inputs, memory layouts, thread-count determinism, torch agreement, CPU paths, fork and threads."""

import contextlib
import itertools
import os
import platform
import signal
import subprocess
import sys
import textwrap
import time
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastbp
from fastbp import _core, reference
import strategies
from strategies import _negative_strides, _non_contiguous, _read_only

DTYPES = [np.float32, np.float64]
DTYPE_IDS = ["f32", "f64"]
# normwise tolerance: |got - want| <= RTOL * (1 + max|want|)
RTOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}


@pytest.fixture
def rng(request):
    """A generator seeded by the test's id, so every test is reproducible on its own."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


@pytest.fixture
def restore_threads():
    saved = fastbp.get_num_threads()
    yield
    fastbp.set_num_threads(saved)


@pytest.fixture(params=[True, False], ids=["packed", "in-place"])
def crossing(request):
    """Both ways of a GEMM whose vectors of pixels cross output rows: packed (the default on
    Intel's CPUs, where ALU work shares the FMA ports) and read in place (elsewhere); on paths
    without a rows kernel (AVX2, ref) both pack."""
    saved = _core.alu_on_fma_ports()
    _core.set_alu_on_fma_ports(request.param)
    yield request.param
    _core.set_alu_on_fma_ports(saved)


@contextlib.contextmanager
def workspace_limit(nbytes):
    """fastbp's workspace limit set to nbytes inside the block, restored after it."""
    saved = fastbp.get_workspace_limit()
    fastbp.set_workspace_limit(nbytes)
    try:
        yield
    finally:
        fastbp.set_workspace_limit(saved)


def randn(rng, shape, dtype=np.float64):
    return rng.standard_normal(shape).astype(dtype)


def ones(*shape, dtype=np.float64):
    return np.ones(shape, dtype=dtype)


def assert_close(got, want, what="result"):
    if want is None:
        assert got is None, f"{what}: expected None, got {type(got).__name__}"
        return
    assert isinstance(got, np.ndarray), f"{what}: expected ndarray, got {type(got).__name__}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, expected {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    if want.size == 0:
        return
    tol = RTOL[want.dtype] * (1.0 + np.max(np.abs(want)))
    err = np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)))
    assert err <= tol, f"{what}: max abs error {err:.3g} > tolerance {tol:.3g}"


def check_op(name, *args, **kwargs):
    """Run fastbp.<name> and reference.<name> on the same inputs and compare every output."""
    ref_kwargs = dict(kwargs)
    if kwargs.get("out") is not None:
        ref_kwargs["out"] = kwargs["out"].copy()  # each side writes into its own out
    got = getattr(fastbp, name)(*args, **kwargs)
    want = getattr(reference, name)(*args, **ref_kwargs)
    if kwargs.get("out") is not None:
        assert got is kwargs["out"], f"{name}: result is not the out array"
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want), f"{name}: returned {got!r}"
        for g, w, label in zip(got, want, ("grad_input", "grad_weight", "grad_bias")):
            assert_close(g, w, f"{name} {label}")
    else:
        assert_close(got, want, name)
    return got


def check_numerical_grads(forward, backward, inputs, grad_output):
    """backward(grad_output, *inputs) returns the gradients of sum(forward(*inputs) * grad_output)
    with respect to each input (or None); compare them with central differences of forward."""
    grads = backward(grad_output, *inputs)
    assert len(grads) == len(inputs)
    for position, (value, grad) in enumerate(zip(inputs, grads)):
        if grad is None or value is None:
            continue

        def forward_at(v, position=position):
            args = list(inputs)
            args[position] = v
            return forward(*args)

        numeric = reference.numerical_grad(forward_at, value, grad_output)
        scale = 1.0 + np.max(np.abs(numeric), initial=0.0)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-6 * scale,
                                   err_msg=f"gradient of input {position}")


def _id(value):
    return str(value).replace(" ", "").replace("'", "")


# ---------------------------------------------------------------------------------------------
# value grids against the reference

def _conv_grid(paddings):
    grid = []
    for stride, padding, dilation, groups in itertools.product([1, 2], paddings, [1, 2], [1, 2, 3]):
        if padding == "same" and stride != 1:
            continue
        grid.append(pytest.param(stride, padding, dilation, groups,
                                 id=f"s{stride}-p{_id(padding)}-d{dilation}-g{groups}"))
    return grid


CONV2D_GRID = _conv_grid([0, 1, (1, 2), "same", "valid"])
CONV1D_GRID = _conv_grid([0, 1, (2,), "same", "valid"])
BATCHES = pytest.mark.parametrize("batch", [0, 1, 3], ids=lambda n: f"n{n}")
WITH_BIAS = pytest.mark.parametrize("with_bias", [False, True], ids=["nobias", "bias"])
DTYPE = pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)


@pytest.mark.parametrize("stride,padding,dilation,groups", CONV2D_GRID)
@DTYPE
@BATCHES
@WITH_BIAS
def test_conv2d_matches_reference(rng, stride, padding, dilation, groups, dtype, batch, with_bias):
    # 6 input and 18 output channels divide by every group count; 7x9 image, 3x2 (even) kernel
    x = randn(rng, (batch, 6, 7, 9), dtype)
    weight = randn(rng, (18, 6 // groups, 3, 2), dtype)
    bias = randn(rng, (18,), dtype) if with_bias else None
    geometry = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    y = check_op("conv2d", x, weight, bias, **geometry)
    grad_output = randn(rng, y.shape, dtype)
    check_op("conv2d_backward", grad_output, x, weight, **geometry, bias_grad=with_bias)


@pytest.mark.parametrize("stride,padding,dilation,groups", CONV1D_GRID)
@DTYPE
@BATCHES
@WITH_BIAS
def test_conv1d_matches_reference(rng, stride, padding, dilation, groups, dtype, batch, with_bias):
    x = randn(rng, (batch, 6, 13), dtype)
    weight = randn(rng, (18, 6 // groups, 4), dtype)
    bias = randn(rng, (18,), dtype) if with_bias else None
    geometry = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    y = check_op("conv1d", x, weight, bias, **geometry)
    grad_output = randn(rng, y.shape, dtype)
    check_op("conv1d_backward", grad_output, x, weight, **geometry, bias_grad=with_bias)


# shapes that cross tile and block edges: (x shape, weight shape, stride, padding, dilation, groups)
CONV2D_SHAPES = [
    ((2, 3, 13, 11), (13, 3, 1, 1), 1, 0, 1, 1),        # 1x1 kernel
    ((1, 1, 33, 7), (7, 1, 5, 5), 1, 2, 1, 1),          # single input channel
    ((3, 33, 9, 10), (13, 33, 3, 3), 2, 1, 1, 1),       # odd K = 297
    ((2, 50, 8, 9), (37, 50, 3, 3), 1, "same", 1, 1),   # K = 450, beyond a typical KC
    ((2, 8, 12, 12), (8, 1, 3, 3), 1, 1, 1, 8),         # depthwise
    # depthwise straight into y: 3x3 and 5x5 taps unrolled (rows of 1-4 vectors, the last
    # overlapping), other kernels row by row
    ((2, 3, 11, 50), (6, 1, 3, 3), 1, 1, 1, 3),
    ((1, 2, 7, 21), (2, 1, 5, 5), 1, 2, 1, 2),
    ((1, 2, 6, 40), (2, 1, 5, 5), 1, (0, 2), (1, 2), 2),
    ((1, 3, 5, 17), (3, 1, 2, 3), 1, 0, 1, 3),
    ((2, 4, 5, 5), (3, 4, 5, 5), 1, 0, 1, 1),           # kernel covers the whole image
    ((1, 2, 40, 3), (5, 2, 3, 1), (3, 1), (0, 1), (2, 1), 1),
    ((2, 6, 7, 7), (6, 2, 4, 4), 1, "same", 2, 3),      # even kernel, dilation 2, 'same'
    ((1, 3, 6, 6), (4, 3, 2, 2), 3, 0, 1, 1),           # stride leaves unused input rows
    ((1, 3, 10, 10), (2, 3, 3, 3), 2**40, 1, 1, 1),     # huge stride: a 1x1 output
    ((1, 3, 10, 10), (2, 3, 1, 1), 1, 0, 2**40, 1),     # huge dilation with a 1x1 kernel
    # whole tiles of output channels (16: the 8-row tile, 24: the 12-row tile, 2 groups of 16),
    # where the AVX-512 kernels read the weights in place
    ((2, 16, 9, 10), (16, 16, 3, 3), 1, 1, 1, 1),
    ((2, 8, 9, 10), (24, 8, 3, 3), 1, 1, 1, 1),
    ((2, 8, 9, 10), (32, 4, 3, 3), 1, "same", 1, 2),
    # images of 512+ pixels, none dropped: the GEMM writes into y (row runs of Wo, compact, grouped)
    ((2, 3, 24, 25), (19, 3, 3, 3), 1, 1, 1, 1),
    ((2, 5, 23, 25), (17, 5, 1, 1), 1, 0, 1, 1),
    ((2, 6, 24, 25), (9, 2, 3, 3), 1, 1, 1, 3),
    ((2, 3, 48, 47), (16, 3, 3, 3), 2, 1, 1, 1),         # stride 2, runs of exactly Wo = 24
    # stride 2: the input split into column phases, rows past two vectors wide, even and odd
    # widths and paddings
    ((2, 3, 9, 71), (5, 3, 3, 3), 2, (1, 3), 1, 1),
    ((1, 2, 6, 64), (4, 2, 5, 5), (1, 2), (2, 2), 1, 1),
    ((1, 2, 5, 33), (4, 2, 3, 3), 2, (0, 0), 1, 1),
    # inputs narrower than the padding on either side, split into column phases
    ((1, 2, 5, 1), (3, 2, 3, 3), 2, 3, 1, 1),
    ((2, 3, 4, 2), (3, 3, 2, 3), (1, 2), (1, 3), (1, 2), 1),
]


CONV1D_SHAPES = [
    ((3, 1, 100), (33, 1, 9), 1, 4, 1, 1),
    ((2, 32, 37), (13, 32, 9), 1, "same", 1, 1),
    ((2, 6, 20), (6, 1, 2), 2, 1, 3, 6),
    ((1, 4, 9), (7, 4, 9), 1, "valid", 1, 1),
    ((3, 4, 160), (21, 4, 9), 1, 4, 1, 1),             # shallow (k = 36): the GEMM writes into y
]
SHAPE_CASES = [("conv2d", *c) for c in CONV2D_SHAPES] + [("conv1d", *c) for c in CONV1D_SHAPES]


@pytest.mark.parametrize("op,x_shape,w_shape,stride,padding,dilation,groups", SHAPE_CASES,
                         ids=[f"{c[0]}-{_id(c[1])}-{_id(c[2])}" for c in SHAPE_CASES])
@DTYPE
def test_conv_shapes(rng, crossing, op, x_shape, w_shape, stride, padding, dilation, groups,
                     dtype):
    x, weight, bias = randn(rng, x_shape, dtype), randn(rng, w_shape, dtype), randn(rng, w_shape[:1], dtype)
    geometry = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    y = check_op(op, x, weight, bias, **geometry)
    check_op(op + "_backward", randn(rng, y.shape, dtype), x, weight, **geometry)


@pytest.mark.parametrize("x_shape", [(0, 13), (1, 13), (7, 13), (3, 5, 13), (2, 0, 13), (13,)], ids=_id)
@pytest.mark.parametrize("out_features", [1, 33])
@DTYPE
@WITH_BIAS
def test_linear_matches_reference(rng, x_shape, out_features, dtype, with_bias):
    x = randn(rng, x_shape, dtype)
    weight = randn(rng, (out_features, 13), dtype)
    bias = randn(rng, (out_features,), dtype) if with_bias else None
    y = check_op("linear", x, weight, bias)
    check_op("linear_backward", randn(rng, y.shape, dtype), x, weight, bias_grad=with_bias)


@DTYPE
def test_linear_large_and_empty_features(rng, dtype):
    x, weight, bias = randn(rng, (67, 401), dtype), randn(rng, (129, 401), dtype), randn(rng, (129,), dtype)
    y = check_op("linear", x, weight, bias)
    check_op("linear_backward", randn(rng, y.shape, dtype), x, weight)
    # no input features: y is the bias, grad_input is empty
    x, weight = randn(rng, (4, 0), dtype), randn(rng, (5, 0), dtype)
    y = check_op("linear", x, weight, bias[:5])
    check_op("linear_backward", randn(rng, y.shape, dtype), x, weight)


@DTYPE
@pytest.mark.parametrize("batch,out_features", [(3, 1056), (256, 1000), (257, 1000), (5, 1003)])
def test_linear_with_weights_beyond_the_caches(rng, dtype, batch, out_features):
    """Weights of 8 MiB and more against a batch of up to 256 rows are read in place and the result
    comes transposed (on paths with a rows kernel, out_features whole tiles): the same bits as the
    GEMM x @ weight.T, bias and relu included, on any number of threads."""
    in_features = (8 << 20) // (out_features * np.dtype(dtype).itemsize) + 17
    x = randn(rng, (batch, in_features), dtype)
    weight = randn(rng, (out_features, in_features), dtype)
    bias = randn(rng, (out_features,), dtype)
    y = check_op("linear", x, weight, bias)
    want = fastbp.matmul(x, weight, trans_b=True, beta=1.0, out=np.tile(bias, (batch, 1)))
    assert np.array_equal(y, want)
    with fastbp.threads(1):
        relu = fastbp.linear(x, weight, bias, activation="relu")
    assert np.array_equal(relu, np.maximum(want, 0))
    assert np.array_equal(fastbp.linear(x, weight), fastbp.matmul(x, weight, trans_b=True))


# (alpha, beta, use_out); beta without out is ignored; beta 0 with out must not read out
MATMUL_SCALARS = [(1.0, 0.0, False), (2.5, 3.0, False), (-1.5, 0.5, True), (1.0, 0.0, True), (0.0, 2.0, True)]
MATMUL_GRID = [
    pytest.param(m, n, k, alpha, beta, use_out, id=f"{m}x{n}x{k}-a{alpha}-b{beta}-{'out' if use_out else 'new'}")
    for (m, n, k), (alpha, beta, use_out) in itertools.product(
        [(1, 1, 1), (7, 13, 33), (33, 7, 13), (13, 33, 1), (0, 5, 3), (5, 0, 3), (5, 3, 0)], MATMUL_SCALARS)
] + [pytest.param(97, 515, 401, -1.5, 0.5, True, id="97x515x401")]  # crosses cache blocks


@pytest.mark.parametrize("m,n,k,alpha,beta,use_out", MATMUL_GRID)
@pytest.mark.parametrize("trans_a,trans_b", list(itertools.product([False, True], repeat=2)),
                         ids=["NN", "NT", "TN", "TT"])
@DTYPE
def test_matmul_matches_reference(rng, m, n, k, trans_a, trans_b, alpha, beta, use_out, dtype):
    a = randn(rng, (k, m) if trans_a else (m, k), dtype)
    b = randn(rng, (n, k) if trans_b else (k, n), dtype)
    out = None
    if use_out:
        out = randn(rng, (m, n), dtype) if beta != 0 else np.full((m, n), np.nan, dtype)
    check_op("matmul", a, b, trans_a=trans_a, trans_b=trans_b, alpha=alpha, beta=beta, out=out)


FLAG_SUBSETS = list(itertools.product([True, False], repeat=3))


@pytest.mark.parametrize("input_grad,weight_grad,bias_grad", FLAG_SUBSETS,
                         ids=["".join("xwb"[i] if f else "-" for i, f in enumerate(s)) for s in FLAG_SUBSETS])
@DTYPE
def test_backward_grad_subsets(rng, input_grad, weight_grad, bias_grad, dtype):
    flags = dict(input_grad=input_grad, weight_grad=weight_grad, bias_grad=bias_grad)
    x, w = randn(rng, (2, 4, 7, 6), dtype), randn(rng, (6, 2, 3, 3), dtype)
    grads = check_op("conv2d_backward", randn(rng, (2, 6, 4, 3), dtype), x, w, stride=2, padding=1,
                     groups=2, **flags)
    assert [g is None for g in grads] == [not f for f in flags.values()]
    x, w = randn(rng, (3, 4, 11), dtype), randn(rng, (5, 4, 3), dtype)
    grads = check_op("conv1d_backward", randn(rng, (3, 5, 11), dtype), x, w, padding="same", **flags)
    assert [g is None for g in grads] == [not f for f in flags.values()]
    x, w = randn(rng, (2, 3, 7), dtype), randn(rng, (5, 7), dtype)
    grads = check_op("linear_backward", randn(rng, (2, 3, 5), dtype), x, w, **flags)
    assert [g is None for g in grads] == [not f for f in flags.values()]


@DTYPE
def test_unbatched_conv_inputs(rng, dtype):
    """As torch: an input without its batch axis gives the batch-of-one result without it."""
    x, w, b = randn(rng, (4, 7, 6), dtype), randn(rng, (6, 2, 3, 2), dtype), randn(rng, (6,), dtype)
    y = check_op("conv2d", x[None], w, b, padding="same", groups=2)[0]
    assert_close(fastbp.conv2d(x, w, b, padding="same", groups=2), y, "unbatched conv2d")
    grads = fastbp.conv2d_backward(np.ones_like(y), x, w, padding="same", groups=2)
    want = reference.conv2d_backward(np.ones_like(y)[None], x[None], w, padding="same", groups=2)
    for got, expected in zip(grads, (want[0][0], want[1], want[2])):
        assert_close(got, expected, "unbatched conv2d_backward")
    y1 = fastbp.conv1d(x[:, 0], w[:, :, 0], b, stride=2, groups=2)
    assert_close(y1, reference.conv1d(x[None, :, 0], w[:, :, 0], b, stride=2, groups=2)[0], "unbatched conv1d")


def test_array_likes_accepted(rng):
    x, w, b = randn(rng, (1, 2, 4, 4)), randn(rng, (3, 2, 2, 2)), randn(rng, (3,))
    assert_close(fastbp.conv2d(x.tolist(), w.tolist(), b.tolist()), reference.conv2d(x, w, b))
    xl, wl = x.reshape(2, 16), randn(rng, (3, 16))
    assert_close(fastbp.linear(xl.tolist(), wl.tolist()), reference.linear(xl, wl))


# ---------------------------------------------------------------------------------------------
# finite differences (float64, small shapes): backward is the derivative of fastbp's forward

NUMERICAL_CONV = [  # (op, x shape, weight shape, stride, padding, dilation, groups)
    ("conv2d", (2, 2, 5, 6), (3, 2, 3, 2), 1, 0, 1, 1),
    ("conv2d", (1, 4, 6, 5), (4, 2, 3, 3), 2, (1, 2), 1, 2),
    ("conv2d", (2, 3, 6, 6), (3, 1, 2, 2), 1, "same", 2, 3),
    ("conv2d", (1, 2, 7, 5), (2, 2, 2, 3), (2, 1), "valid", (1, 2), 1),
    ("conv2d", (1, 32, 3, 27), (32, 32, 3, 3), 1, 1, 1, 1),  # Winograd forward and dX
    ("conv1d", (2, 2, 9), (3, 2, 3), 1, 1, 1, 1),
    ("conv1d", (1, 4, 10), (6, 2, 2), 2, 0, 2, 2),
    ("conv1d", (2, 3, 8), (3, 1, 4), 1, "same", 1, 3),
]


@pytest.mark.parametrize("op,x_shape,w_shape,stride,padding,dilation,groups", NUMERICAL_CONV,
                         ids=[f"{c[0]}-{_id(c[1])}-{_id(c[2])}" for c in NUMERICAL_CONV])
def test_conv_numerical_grads(rng, op, x_shape, w_shape, stride, padding, dilation, groups):
    forward, backward = getattr(fastbp, op), getattr(fastbp, op + "_backward")
    geometry = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    inputs = (randn(rng, x_shape), randn(rng, w_shape), randn(rng, w_shape[:1]))
    grad_output = randn(rng, forward(*inputs, **geometry).shape)
    check_numerical_grads(lambda x, w, b: forward(x, w, b, **geometry),
                          lambda gy, x, w, b: backward(gy, x, w, **geometry),
                          inputs, grad_output)


@pytest.mark.parametrize("x_shape", [(4, 7), (2, 3, 7)], ids=_id)
def test_linear_numerical_grads(rng, x_shape):
    inputs = (randn(rng, x_shape), randn(rng, (5, 7)), randn(rng, (5,)))
    grad_output = randn(rng, x_shape[:-1] + (5,))
    check_numerical_grads(fastbp.linear, lambda gy, x, w, b: fastbp.linear_backward(gy, x, w),
                          inputs, grad_output)


# ---------------------------------------------------------------------------------------------
# bad inputs: the right exception, naming the argument (and the sizes where there are some)

def mentions(*alternatives, sizes=()):
    """A regex matching a message that names one of the alternatives and every size.

    DESIGN.md calls the data argument x, torch calls it input: a message may use either name.
    """
    name = r"(?=.*\b(" + "|".join(alternatives) + r")\b)"
    return "(?s)" + name + "".join(rf"(?=.*\b{s}\b)" for s in sizes)


X, W, B = (2, 4, 7, 9), (6, 4, 3, 3), (6,)   # conv2d: y is (2, 6, 5, 7)
GY = (2, 6, 5, 7)
X1, W1 = (2, 4, 9), (6, 4, 3)               # conv1d: y is (2, 6, 7)
GY1 = (2, 6, 7)
f32, i32, i64 = np.float32, np.int32, np.int64

BAD_CALLS = [
    # conv2d: shapes
    ("conv2d-x-ndim2", lambda: fastbp.conv2d(ones(4, 7), ones(*W)), ValueError, mentions("x", "input")),
    ("conv2d-x-ndim5", lambda: fastbp.conv2d(ones(1, *X), ones(*W)), ValueError, mentions("x", "input")),
    ("conv2d-weight-ndim3", lambda: fastbp.conv2d(ones(*X), ones(6, 4, 3)), ValueError, mentions("weight")),
    ("conv2d-bias-ndim2", lambda: fastbp.conv2d(ones(*X), ones(*W), ones(6, 1)), ValueError, mentions("bias")),
    ("conv2d-bias-size", lambda: fastbp.conv2d(ones(*X), ones(*W), ones(5)), ValueError,
     mentions("bias", sizes=(5,))),
    ("conv2d-channels", lambda: fastbp.conv2d(ones(2, 5, 7, 9), ones(*W)), ValueError,
     mentions("x", "input", "weight", sizes=(5,))),
    ("conv2d-channels-groups", lambda: fastbp.conv2d(ones(*X), ones(6, 4, 3, 3), groups=2), ValueError,
     mentions("x", "input", "weight", "groups")),
    ("conv2d-groups-cout", lambda: fastbp.conv2d(ones(*X), ones(6, 1, 3, 3), groups=4), ValueError,
     mentions("groups", "weight")),
    ("conv2d-groups-cin", lambda: fastbp.conv2d(ones(2, 5, 7, 9), ones(6, 1, 3, 3), groups=3), ValueError,
     mentions("groups", "x", "input", "weight")),
    ("conv2d-groups0", lambda: fastbp.conv2d(ones(*X), ones(*W), groups=0), ValueError, mentions("groups")),
    ("conv2d-groups-neg", lambda: fastbp.conv2d(ones(*X), ones(*W), groups=-1), ValueError, mentions("groups")),
    # conv2d: geometry
    ("conv2d-stride0", lambda: fastbp.conv2d(ones(*X), ones(*W), stride=0), ValueError, mentions("stride")),
    ("conv2d-stride-neg", lambda: fastbp.conv2d(ones(*X), ones(*W), stride=-1), ValueError, mentions("stride")),
    ("conv2d-stride-pair0", lambda: fastbp.conv2d(ones(*X), ones(*W), stride=(1, 0)), ValueError,
     mentions("stride")),
    ("conv2d-stride-len3", lambda: fastbp.conv2d(ones(*X), ones(*W), stride=(1, 1, 1)), ValueError,
     mentions("stride")),
    ("conv2d-dilation0", lambda: fastbp.conv2d(ones(*X), ones(*W), dilation=0), ValueError,
     mentions("dilation")),
    ("conv2d-dilation-neg", lambda: fastbp.conv2d(ones(*X), ones(*W), dilation=(1, -2)), ValueError,
     mentions("dilation")),
    ("conv2d-padding-neg", lambda: fastbp.conv2d(ones(*X), ones(*W), padding=-1), ValueError,
     mentions("padding")),
    ("conv2d-padding-pair-neg", lambda: fastbp.conv2d(ones(*X), ones(*W), padding=(0, -1)), ValueError,
     mentions("padding")),
    ("conv2d-padding-len3", lambda: fastbp.conv2d(ones(*X), ones(*W), padding=(1, 1, 1)), ValueError,
     mentions("padding")),
    ("conv2d-same-stride2", lambda: fastbp.conv2d(ones(*X), ones(*W), stride=2, padding="same"), ValueError,
     mentions("padding", "stride")),
    ("conv2d-padding-bogus", lambda: fastbp.conv2d(ones(*X), ones(*W), padding="bogus"), ValueError,
     mentions("padding")),
    ("conv2d-kernel-too-large", lambda: fastbp.conv2d(ones(2, 4, 3, 3), ones(6, 4, 5, 5)), ValueError,
     mentions("kernel", "weight", "x", "input", "padding")),
    ("conv2d-dilated-kernel-too-large", lambda: fastbp.conv2d(ones(*X), ones(*W), dilation=5), ValueError,
     mentions("kernel", "weight", "x", "input", "padding", "dilation")),
    # conv2d: dtypes
    ("conv2d-x-int32", lambda: fastbp.conv2d(ones(*X, dtype=i32), ones(*W)), TypeError, mentions("x", "input")),
    ("conv2d-weight-int64", lambda: fastbp.conv2d(ones(*X), ones(*W, dtype=i64)), TypeError,
     mentions("weight")),
    ("conv2d-x-complex", lambda: fastbp.conv2d(ones(*X, dtype=complex), ones(*W)), TypeError,
     mentions("x", "input")),
    ("conv2d-x-object", lambda: fastbp.conv2d(ones(*X, dtype=object), ones(*W)), TypeError, mentions("x", "input")),
    ("conv2d-x-bool", lambda: fastbp.conv2d(ones(*X, dtype=bool), ones(*W)), TypeError, mentions("x", "input")),
    ("conv2d-bias-int", lambda: fastbp.conv2d(ones(*X), ones(*W), ones(*B, dtype=i64)), TypeError,
     mentions("bias")),
    ("conv2d-mixed", lambda: fastbp.conv2d(ones(*X, dtype=f32), ones(*W)), TypeError,
     mentions("x", "input", "weight", sizes=("float32", "float64"))),
    ("conv2d-mixed-bias", lambda: fastbp.conv2d(ones(*X), ones(*W), ones(*B, dtype=f32)), TypeError,
     mentions("bias", sizes=("float32", "float64"))),
    # conv2d_backward
    ("conv2d_backward-grad_output-ndim", lambda: fastbp.conv2d_backward(ones(2, 6, 5), ones(*X), ones(*W)),
     ValueError, mentions("grad_output")),
    ("conv2d_backward-grad_output-spatial",
     lambda: fastbp.conv2d_backward(ones(2, 6, 5, 8), ones(*X), ones(*W)), ValueError,
     mentions("grad_output", sizes=(8,))),
    ("conv2d_backward-grad_output-channels",
     lambda: fastbp.conv2d_backward(ones(2, 5, 5, 7), ones(*X), ones(*W)), ValueError,
     mentions("grad_output")),
    ("conv2d_backward-grad_output-batch",
     lambda: fastbp.conv2d_backward(ones(3, 6, 5, 7), ones(*X), ones(*W)), ValueError,
     mentions("grad_output")),
    ("conv2d_backward-x-ndim", lambda: fastbp.conv2d_backward(ones(*GY), ones(7, 9), ones(*W)),
     ValueError, mentions("x", "input")),
    ("conv2d_backward-channels", lambda: fastbp.conv2d_backward(ones(*GY), ones(2, 5, 7, 9), ones(*W)),
     ValueError, mentions("x", "input", "weight")),
    ("conv2d_backward-grad_output-int",
     lambda: fastbp.conv2d_backward(ones(*GY, dtype=i32), ones(*X), ones(*W)), TypeError,
     mentions("grad_output")),
    ("conv2d_backward-grad_output-f32",
     lambda: fastbp.conv2d_backward(ones(*GY, dtype=f32), ones(*X), ones(*W)), TypeError,
     mentions("grad_output", sizes=("float32", "float64"))),
    ("conv2d_backward-same-stride2",
     lambda: fastbp.conv2d_backward(ones(*GY), ones(*X), ones(*W), stride=2, padding="same"), ValueError,
     mentions("padding", "stride")),
    # conv1d / conv1d_backward
    ("conv1d-x-ndim4", lambda: fastbp.conv1d(ones(*X), ones(*W1)), ValueError, mentions("x", "input")),
    ("conv1d-x-ndim1", lambda: fastbp.conv1d(ones(9), ones(*W1)), ValueError, mentions("x", "input")),
    ("conv1d-weight-ndim4", lambda: fastbp.conv1d(ones(*X1), ones(*W)), ValueError, mentions("weight")),
    ("conv1d-channels", lambda: fastbp.conv1d(ones(2, 3, 9), ones(*W1)), ValueError,
     mentions("x", "input", "weight", sizes=(3,))),
    ("conv1d-groups", lambda: fastbp.conv1d(ones(*X1), ones(5, 2, 3), groups=2), ValueError,
     mentions("groups", "weight")),
    ("conv1d-stride-pair", lambda: fastbp.conv1d(ones(*X1), ones(*W1), stride=(1, 1)), ValueError,
     mentions("stride")),
    ("conv1d-stride0", lambda: fastbp.conv1d(ones(*X1), ones(*W1), stride=0), ValueError, mentions("stride")),
    ("conv1d-padding-pair", lambda: fastbp.conv1d(ones(*X1), ones(*W1), padding=(1, 1)), ValueError,
     mentions("padding")),
    ("conv1d-padding-neg", lambda: fastbp.conv1d(ones(*X1), ones(*W1), padding=-1), ValueError,
     mentions("padding")),
    ("conv1d-same-stride2", lambda: fastbp.conv1d(ones(*X1), ones(*W1), stride=2, padding="same"),
     ValueError, mentions("padding", "stride")),
    ("conv1d-padding-bogus", lambda: fastbp.conv1d(ones(*X1), ones(*W1), padding="full"), ValueError,
     mentions("padding")),
    ("conv1d-dilation0", lambda: fastbp.conv1d(ones(*X1), ones(*W1), dilation=0), ValueError,
     mentions("dilation")),
    ("conv1d-kernel-too-large", lambda: fastbp.conv1d(ones(2, 4, 2), ones(*W1)), ValueError,
     mentions("kernel", "weight", "x", "input", "padding")),
    ("conv1d-bias-size", lambda: fastbp.conv1d(ones(*X1), ones(*W1), ones(7)), ValueError, mentions("bias")),
    ("conv1d-x-int", lambda: fastbp.conv1d(ones(*X1, dtype=i64), ones(*W1)), TypeError, mentions("x", "input")),
    ("conv1d-mixed", lambda: fastbp.conv1d(ones(*X1), ones(*W1, dtype=f32)), TypeError,
     mentions("x", "input", "weight", sizes=("float32", "float64"))),
    ("conv1d_backward-grad_output-shape",
     lambda: fastbp.conv1d_backward(ones(2, 6, 8), ones(*X1), ones(*W1)), ValueError,
     mentions("grad_output", sizes=(8,))),
    ("conv1d_backward-grad_output-ndim",
     lambda: fastbp.conv1d_backward(ones(*GY), ones(*X1), ones(*W1)), ValueError, mentions("grad_output")),
    ("conv1d_backward-grad_output-bool",
     lambda: fastbp.conv1d_backward(ones(*GY1, dtype=bool), ones(*X1), ones(*W1)), TypeError,
     mentions("grad_output")),
    # linear / linear_backward
    ("linear-in-features", lambda: fastbp.linear(ones(3, 5), ones(4, 6)), ValueError,
     mentions("x", "input", "weight", sizes=(5, 6))),
    ("linear-x-scalar", lambda: fastbp.linear(np.float64(1.0), ones(4, 1)), ValueError, mentions("x", "input")),
    ("linear-weight-ndim1", lambda: fastbp.linear(ones(3, 5), ones(5)), ValueError, mentions("weight")),
    ("linear-weight-ndim3", lambda: fastbp.linear(ones(3, 5), ones(1, 4, 5)), ValueError, mentions("weight")),
    ("linear-bias-size", lambda: fastbp.linear(ones(3, 5), ones(4, 5), ones(5)), ValueError,
     mentions("bias", sizes=(5,))),
    ("linear-bias-ndim", lambda: fastbp.linear(ones(3, 5), ones(4, 5), ones(1, 4)), ValueError,
     mentions("bias")),
    ("linear-x-int", lambda: fastbp.linear(ones(3, 5, dtype=i32), ones(4, 5)), TypeError, mentions("x", "input")),
    ("linear-x-complex", lambda: fastbp.linear(ones(3, 5, dtype=np.complex64), ones(4, 5)), TypeError,
     mentions("x", "input")),
    ("linear-mixed", lambda: fastbp.linear(ones(3, 5, dtype=f32), ones(4, 5)), TypeError,
     mentions("x", "input", "weight", sizes=("float32", "float64"))),
    ("linear_backward-grad_output-features",
     lambda: fastbp.linear_backward(ones(3, 5), ones(3, 5), ones(4, 5)), ValueError,
     mentions("grad_output")),
    ("linear_backward-grad_output-rows",
     lambda: fastbp.linear_backward(ones(2, 4), ones(3, 5), ones(4, 5)), ValueError, mentions("grad_output")),
    ("linear_backward-grad_output-object",
     lambda: fastbp.linear_backward(ones(3, 4, dtype=object), ones(3, 5), ones(4, 5)), TypeError,
     mentions("grad_output")),
    # matmul
    ("matmul-a-ndim1", lambda: fastbp.matmul(ones(3), ones(3, 4)), ValueError, mentions("a")),
    ("matmul-b-ndim3", lambda: fastbp.matmul(ones(3, 4), ones(1, 4, 2)), ValueError, mentions("b")),
    ("matmul-inner", lambda: fastbp.matmul(ones(3, 4), ones(5, 6)), ValueError,
     mentions("a", "b", sizes=(4, 5))),
    ("matmul-inner-trans", lambda: fastbp.matmul(ones(4, 3), ones(6, 5), trans_a=True, trans_b=True),
     ValueError, mentions("a", "b", sizes=(4, 5))),
    ("matmul-out-shape", lambda: fastbp.matmul(ones(3, 4), ones(4, 5), out=ones(5, 3)), ValueError,
     mentions("out")),
    ("matmul-out-dtype", lambda: fastbp.matmul(ones(3, 4), ones(4, 5), out=ones(3, 5, dtype=f32)), TypeError,
     mentions("out")),
    ("matmul-out-int", lambda: fastbp.matmul(ones(3, 4), ones(4, 5), out=ones(3, 5, dtype=i64)), TypeError,
     mentions("out")),
    ("matmul-out-readonly", lambda: fastbp.matmul(ones(3, 4), ones(4, 5), out=np.broadcast_to(1.0, (3, 5))),
     ValueError, mentions("out")),
    ("matmul-a-int", lambda: fastbp.matmul(ones(3, 4, dtype=i64), ones(4, 5)), TypeError, mentions("a")),
    ("matmul-mixed", lambda: fastbp.matmul(ones(3, 4), ones(4, 5, dtype=f32)), TypeError,
     mentions("a", "b", sizes=("float32", "float64"))),
    ("flush-denormal-str", lambda: fastbp.set_flush_denormal("yes"), TypeError, mentions("mode")),
    ("flush-denormal-int", lambda: fastbp.set_flush_denormal(1), TypeError, mentions("mode")),
]


@pytest.mark.parametrize("call,exception,pattern", [c[1:] for c in BAD_CALLS], ids=[c[0] for c in BAD_CALLS])
def test_bad_input(call, exception, pattern):
    with pytest.raises(exception, match=pattern):
        call()


SIZE_ERRORS = (ValueError, OverflowError, MemoryError)
HUGE = 2**30  # a zero-stride (2**30, 2**30) view costs no memory


OVERSIZED_CALLS = [
    ("conv2d-padding-2**62", lambda: fastbp.conv2d(ones(*X), ones(*W), padding=2**62)),
    ("conv2d-padding-pair-2**62", lambda: fastbp.conv2d(ones(*X), ones(*W), padding=(2**62, 2**62))),
    ("conv2d-padding-2**63", lambda: fastbp.conv2d(ones(*X), ones(*W), padding=2**63)),
    ("conv2d-padding-2**31", lambda: fastbp.conv2d(ones(*X), ones(*W), padding=2**31)),
    ("conv2d-dilation-2**62", lambda: fastbp.conv2d(ones(*X), ones(*W), dilation=2**62)),
    ("conv2d-stride-2**64", lambda: fastbp.conv2d(ones(*X), ones(*W), stride=2**64)),
    ("conv1d-padding-2**62", lambda: fastbp.conv1d(ones(*X1), ones(*W1), padding=2**62)),
    ("conv1d-padding-2**40", lambda: fastbp.conv1d(ones(*X1), ones(*W1), padding=2**40)),
    ("conv2d_backward-padding-2**62", lambda: fastbp.conv2d_backward(ones(*GY), ones(*X), ones(*W),
                                                                     padding=2**62)),
    ("linear-huge", lambda: fastbp.linear(np.broadcast_to(1.0, (HUGE, 2)), np.broadcast_to(1.0, (HUGE, 2)))),
    ("matmul-huge", lambda: fastbp.matmul(np.broadcast_to(1.0, (HUGE, 1)), np.broadcast_to(1.0, (1, HUGE)))),
]


@pytest.mark.parametrize("call", [c[1] for c in OVERSIZED_CALLS], ids=[c[0] for c in OVERSIZED_CALLS])
def test_oversized_arguments_raise(call):
    with pytest.raises(SIZE_ERRORS):
        call()


# ---------------------------------------------------------------------------------------------
# memory layouts: every array argument in an unusual layout gives the contiguous result

LAYOUTS = {
    "noncontig": _non_contiguous,
    "fortran": np.asfortranarray,
    "negstride": _negative_strides,
    "readonly": _read_only,
}


def _layout_cases(rng, dtype):
    """(name, function, array args, other kwargs) for every op."""
    x, w, b = randn(rng, (3, 6, 9, 8), dtype), randn(rng, (10, 3, 3, 2), dtype), randn(rng, (10,), dtype)
    conv2d_geometry = dict(stride=(2, 1), padding=(1, 0), groups=2)
    gy = randn(rng, reference.conv2d(x, w, b, **conv2d_geometry).shape, dtype)
    x1, w1 = randn(rng, (3, 6, 17), dtype), randn(rng, (4, 6, 3), dtype)
    gy1 = randn(rng, (3, 4, 17), dtype)
    xl, wl, gl = randn(rng, (5, 3, 13), dtype), randn(rng, (7, 13), dtype), randn(rng, (5, 3, 7), dtype)
    a, bm, c = randn(rng, (13, 17), dtype), randn(rng, (17, 11), dtype), randn(rng, (13, 11), dtype)
    return [
        ("conv2d", fastbp.conv2d, (x, w, b), conv2d_geometry),
        ("conv2d_backward", fastbp.conv2d_backward, (gy, x, w), conv2d_geometry),
        ("conv1d", fastbp.conv1d, (x1, w1, b[:4]), dict(padding="same")),
        ("conv1d_backward", fastbp.conv1d_backward, (gy1, x1, w1), dict(padding="same")),
        ("linear", fastbp.linear, (xl, wl, b[:7]), {}),
        ("linear_backward", fastbp.linear_backward, (gl, xl, wl), {}),
        ("matmul", fastbp.matmul, (a, bm), dict(alpha=0.5)),
        ("matmul_tt", fastbp.matmul, (a.T.copy(), bm.T.copy()), dict(trans_a=True, trans_b=True)),
        ("matmul_out", lambda a, b, c: fastbp.matmul(a, b, beta=2.0, out=c.copy()), (a, bm, c), {}),
    ]


@pytest.mark.parametrize("layout", list(LAYOUTS))
@DTYPE
def test_input_layouts(rng, layout, dtype):
    for name, fn, arrays, kwargs in _layout_cases(rng, dtype):
        expected = fn(*arrays, **kwargs)
        moved = [LAYOUTS[layout](a) for a in arrays]
        assert all(np.array_equal(m, a) for m, a in zip(moved, arrays))
        got = fn(*moved, **kwargs)
        for g, e in zip(got if isinstance(got, tuple) else (got,), expected if isinstance(expected, tuple)
                        else (expected,)):
            assert_close(g, e, f"{name} with {layout} inputs")
        for m, a in zip(moved, arrays):  # inputs are not modified
            assert np.array_equal(m, a), f"{name} modified an input"


@DTYPE
def test_matmul_out_strided(rng, dtype):
    """A non-contiguous out is either filled correctly or refused with a ValueError naming out."""
    a, b = randn(rng, (9, 5), dtype), randn(rng, (5, 7), dtype)
    storage = randn(rng, (9, 14), dtype)
    out = storage[:, ::2]
    expected = reference.matmul(a, b, beta=1.0, out=out.copy())
    try:
        result = fastbp.matmul(a, b, beta=1.0, out=out)
    except ValueError as error:
        assert "out" in str(error)
        return
    assert result is out
    assert_close(out, expected, "matmul into a strided out")


@DTYPE
def test_zero_size_results(dtype):
    y = fastbp.conv2d(np.zeros((0, 4, 7, 9), dtype), np.ones((6, 2, 3, 3), dtype), groups=2, padding=1)
    assert y.shape == (0, 6, 7, 9) and y.dtype == dtype
    gx, gw, gb = fastbp.conv2d_backward(np.zeros((0, 6, 7, 9), dtype), np.zeros((0, 4, 7, 9), dtype),
                                        np.ones((6, 2, 3, 3), dtype), groups=2, padding=1)
    assert gx.shape == (0, 4, 7, 9) and gw.shape == (6, 2, 3, 3) and gb.shape == (6,)
    assert not gw.any() and not gb.any() and gw.dtype == gb.dtype == gx.dtype == dtype
    gx, gw, gb = fastbp.conv1d_backward(np.zeros((0, 6, 5), dtype), np.zeros((0, 4, 7), dtype),
                                        np.ones((6, 4, 3), dtype))
    assert gx.shape == (0, 4, 7) and gw.shape == (6, 4, 3) and not gw.any() and not gb.any()
    gx, gw, gb = fastbp.linear_backward(np.zeros((0, 3), dtype), np.zeros((0, 5), dtype), np.ones((3, 5), dtype))
    assert gx.shape == (0, 5) and gw.shape == (3, 5) and gb.shape == (3,) and not gw.any() and not gb.any()
    # no input channels: the bias alone, also where rows would skip the taps on padding
    for shape in [(2, 0, 7, 7), (2, 0, 30, 30)]:
        y = fastbp.conv2d(np.zeros(shape, dtype), np.ones((16, 0, 3, 3), dtype),
                          np.arange(16, dtype=dtype), padding=1, activation="relu")
        assert (y == np.arange(16, dtype=dtype)[:, None, None]).all()
    out = np.full((4, 3), 2.0, dtype)
    assert fastbp.matmul(np.ones((4, 0), dtype), np.ones((0, 3), dtype), beta=0.5, out=out) is out
    assert np.array_equal(out, np.ones((4, 3), dtype))


# ---------------------------------------------------------------------------------------------
# threads: results are bitwise independent of the thread count and of concurrent callers

def _threaded_workload(rng, dtype):
    x, w, b = randn(rng, (4, 16, 20, 23), dtype), randn(rng, (24, 16, 3, 3), dtype), randn(rng, (24,), dtype)
    y = fastbp.conv2d(x, w, b, padding=1)
    gy = randn(rng, y.shape, dtype)
    xl, wl = randn(rng, (67, 300), dtype), randn(rng, (129, 300), dtype)
    gl = randn(rng, (67, 129), dtype)
    a, bm = randn(rng, (300, 257), dtype), randn(rng, (257, 311), dtype)
    # 600-pixel images: the GEMMs write into y, an image per thread or the threads in one image
    xy, wy = randn(rng, (3, 32, 24, 25), dtype), randn(rng, (24, 32, 3, 3), dtype)
    # weights large enough that their reorders (dX's flipped kernel, dW's tap order) run threaded
    xw, ww = randn(rng, (2, 96, 6, 7), dtype), randn(rng, (96, 96, 3, 3), dtype)
    gw = randn(rng, (2, 96, 6, 7), dtype)
    return [
        lambda: fastbp.conv2d_backward(gw, xw, ww, padding=1),
        lambda: fastbp.conv2d(x, w, b, padding=1),
        lambda: fastbp.conv2d(xy, wy, b, padding=1, activation="relu"),
        lambda: fastbp.conv2d(xy[:1], wy, b, padding=1),
        lambda: fastbp.conv2d_backward(gy, x, w, padding=1),
        lambda: fastbp.conv1d(x[:, :, 0], w[:, :, 0], b, padding=1),
        lambda: fastbp.conv1d_backward(gy[:, :, 0], x[:, :, 0], w[:, :, 0], padding=1),
        lambda: fastbp.linear(xl, wl),
        lambda: fastbp.linear_backward(gl, xl, wl),
        lambda: fastbp.matmul(a, bm),
        lambda: fastbp.matmul(bm, a, trans_a=True, trans_b=True, alpha=0.5),
    ]


def _as_tuple(result):
    return result if isinstance(result, tuple) else (result,)


def assert_bitwise_equal(got, want, what):
    for g, w in zip(_as_tuple(got), _as_tuple(want)):
        assert np.array_equal(g, w), f"{what}: results differ"


@DTYPE
def test_bitwise_equal_across_thread_counts(rng, restore_threads, dtype):
    workload = _threaded_workload(rng, dtype)
    fastbp.set_num_threads(1)
    assert fastbp.get_num_threads() == 1
    serial = [op() for op in workload]
    fastbp.set_num_threads(2)
    assert fastbp.get_num_threads() == 2
    for i, op in enumerate(workload):
        assert_bitwise_equal(op(), serial[i], f"op {i} at 2 threads")


@pytest.mark.parametrize("stride,kernel,padding,groups", [
    ((2, 2), (5, 5), (2, 2), 1), ((2, 3), (4, 6), (1, 0), 2), ((3, 2), (7, 4), (3, 1), 1),
    ((2, 1), (4, 3), (0, 1), 1), ((3, 3), (6, 6), (5, 5), 1)])
def test_input_grad_of_strided_conv_by_phases(rng, restore_threads, stride, kernel, padding, groups):
    """Strided layers whose kernel spans at least two strides get dX as one stride-1 convolution
    per stride phase: every element written once, as the reference, the same bits on 1 and 2
    threads."""
    x, w = randn(rng, (3, 16, 17, 15)), randn(rng, (12, 16 // groups, *kernel))
    gy = randn(rng, fastbp.conv2d(x, w, stride=stride, padding=padding, groups=groups).shape)
    got = fastbp.conv2d_backward(gy, x, w, stride=stride, padding=padding, groups=groups)[0]
    want = reference.conv2d_backward(gy, x, w, stride=stride, padding=padding, groups=groups)[0]
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    x32 = randn(rng, (12, 16, 33, 31), np.float32)  # big enough to run threaded
    w32 = w.astype(np.float32)
    gy32 = randn(rng, fastbp.conv2d(x32, w32, stride=stride, padding=padding, groups=groups).shape,
                 np.float32)
    run = lambda: fastbp.conv2d_backward(gy32, x32, w32, stride=stride, padding=padding,
                                         groups=groups, weight_grad=False, bias_grad=False)[0]
    fastbp.set_num_threads(1)
    serial = run()
    fastbp.set_num_threads(2)
    assert np.array_equal(run(), serial)


# each input-gradient path: the forward of dY (stride 1), col2im (a 3x3 kernel of stride 2, and
# a dilated 5x5 whose column gradient of one image nearly fills the limit), stride phases (5x5
# of stride 2)
@pytest.mark.parametrize("stride,kernel,dilation,groups",
                         [(1, 3, 1, 1), (2, 3, 1, 1), (1, 3, 1, 4), (2, 5, 1, 1), (2, 5, 2, 1)])
@pytest.mark.parametrize("threads", [1, 2, 4])
def test_workspace_limit_bounds_scratch_not_results(rng, stride, kernel, dilation, groups, threads):
    """Under a 1 MiB workspace limit a conv takes its batch a few images at a time, on any number
    of threads: its extra memory stays near the limit, whatever the batch. y and dx are the same bits as the unlimited call; dw and db agree
    within rounding (their sums over images are cut into chunks)."""
    from fastbp import _core
    x = randn(rng, (48, 32, 33, 31), np.float32)
    w = randn(rng, (24, 32 // groups, kernel, kernel), np.float32)
    args = dict(stride=stride, padding=kernel // 2 * dilation, dilation=dilation, groups=groups)
    gy = randn(rng, fastbp.conv2d(x, w, **args).shape, np.float32)

    def run(n):
        return fastbp.conv2d(x[:n], w, **args), *fastbp.conv2d_backward(gy[:n], x[:n], w, **args)
    peaks = {}
    with fastbp.threads(threads):
        want = run(48)
        with workspace_limit(1 << 20):
            for n in (24, 48):
                _core.reset_scratch_peak()
                got = run(n)
                peaks[n] = _core.scratch_peak()
    # beyond the limit: each thread's packed GEMM panels, under 1 MiB (x alone is 6 MiB)
    assert max(peaks.values()) <= (1 << 20) + threads * (1 << 20), peaks
    np.testing.assert_array_equal(got[0], want[0], err_msg="y")
    np.testing.assert_array_equal(got[1], want[1], err_msg="dx")
    for g, w_, name in zip(got[2:], want[2:], ("dw", "db")):
        np.testing.assert_allclose(g, w_, rtol=1e-4, atol=1e-4 * np.abs(w_).max(), err_msg=name)


# weight gradients that take a 2 MiB batch in chunks under 1 MiB: 32 and 8 output channels
# (the latter by dot products), stride 2, groups
@pytest.mark.parametrize("out,stride,kernel,groups",
                         [(32, 1, 3, 1), (8, 1, 3, 1), (32, 2, 5, 1), (32, 1, 3, 4)])
def test_workspace_limit_gradients_same_bits_on_any_threads(rng, restore_threads, out, stride,
                                                             kernel, groups):
    """Under a workspace limit the weight and bias gradients sum over chunks of images, cut by
    the shapes alone: the same bits on 1, 2 and 3 threads."""
    x = randn(rng, (40, 32, 21, 19), np.float32)
    w = randn(rng, (out, 32 // groups, kernel, kernel), np.float32)
    args = dict(stride=stride, padding=kernel // 2, groups=groups)
    gy = randn(rng, fastbp.conv2d(x, w, **args).shape, np.float32)
    with workspace_limit(1 << 20):
        runs = []
        for threads in (1, 2, 3):
            fastbp.set_num_threads(threads)
            runs.append(fastbp.conv2d_backward(gy, x, w, **args))
    for got in runs[1:]:
        for a, b in zip(got, runs[0]):
            assert np.array_equal(a, b)


# weights of 4.5-9 MiB against limits of 12-16 MiB: dX of stride 1 through the forward of dY with
# swapped weights (banded), Winograd's transformed weights, dX of stride 2 by phases
@pytest.mark.parametrize("x_shape,w_shape,stride,limit_mib", [
    ((64, 512, 7, 7), (512, 512, 3, 3), 1, 16),
    ((40, 256, 14, 14), (256, 256, 3, 3), 1, 12),
    ((24, 384, 13, 13), (384, 384, 3, 3), 2, 12),
], ids=_id)
@pytest.mark.parametrize("threads", [1, 2])
def test_workspace_limit_counts_weight_sized_buffers(rng, x_shape, w_shape, stride, limit_mib,
                                                     threads):
    """A pass's buffers the size of its weights (swapped, transformed, accumulated) count against
    the workspace limit before its batch is cut into chunks: with large weights the scratch still
    stays near the limit. y and dx are the same bits as the unlimited call."""
    from fastbp import _core
    x, w = randn(rng, x_shape, np.float32), randn(rng, w_shape, np.float32)
    args = dict(stride=stride, padding=1)
    gy = randn(rng, fastbp.conv2d(x, w, **args).shape, np.float32)
    with fastbp.threads(threads):
        want = fastbp.conv2d(x, w, **args), *fastbp.conv2d_backward(gy, x, w, **args)
        with workspace_limit(limit_mib << 20):
            peaks, got = [], []
            for call in (lambda: fastbp.conv2d(x, w, **args),
                         lambda: fastbp.conv2d_backward(gy, x, w, **args, weight_grad=False)[0],
                         lambda: fastbp.conv2d_backward(gy, x, w, **args, input_grad=False)[1]):
                _core.reset_scratch_peak()
                got.append(call())
                peaks.append(_core.scratch_peak())
    # beyond the limit: each thread's packed GEMM panels, kc x (its rows + its columns): under
    # 1.5 MiB for 512 rows (kc 384, 480 columns)
    assert max(peaks) <= (limit_mib << 20) + threads * (3 << 19), [p / 2**20 for p in peaks]
    np.testing.assert_array_equal(got[0], want[0], err_msg="y")
    np.testing.assert_array_equal(got[1], want[1], err_msg="dx")
    np.testing.assert_allclose(got[2], want[2], rtol=1e-4, atol=1e-4 * np.abs(want[2]).max())


@pytest.mark.parametrize("width", [16, 17, 30, 33])
@pytest.mark.parametrize("padding", [0, 1, 2])
@DTYPE
def test_stride_two_columns_split_into_phases(rng, width, padding, dtype):
    """A stride-2 input is copied into its two column phases a vector at a time: every row
    length and parity of padding against the reference, forward and backward."""
    for op, x_shape, w_shape, stride in [("conv2d", (2, 3, 5, width), (4, 3, 3, 5), (1, 2)),
                                         ("conv2d", (2, 3, 6, width), (4, 3, 4, 4), 2),
                                         ("conv1d", (2, 3, width), (4, 3, 5), 2)]:
        x, w = randn(rng, x_shape, dtype), randn(rng, w_shape, dtype)
        y = check_op(op, x, w, None, stride=stride, padding=padding)
        check_op(op + "_backward", randn(rng, y.shape, dtype), x, w, stride=stride, padding=padding)


# 3x3 and 5x5 convolutions of stride 1 with enough channels for their image width run by
# Winograd's F(2x2, 3x3) and F(2x2, 5x5): odd and even output sizes (a last tile row or column
# half outside), every padding, channel counts off the GEMM tiles, batches whose tiles fill
# several blocks that cross images; dilated ones as dh x dw undilated phase images, some with
# fewer outputs than others or none
WINOGRAD = [  # (x shape, output channels, padding, dilation), 3x3
    ((2, 33, 5, 29), 37, 1, 1),
    ((2, 32, 4, 30), 40, 0, 1),
    ((1, 40, 6, 26), 32, 2, 1),
    ((5, 32, 13, 27), 50, "same", 1),
    ((2, 64, 10, 14), 70, 1, 1),
    ((3, 128, 7, 7), 130, 1, 1),
    ((2, 32, 29, 61), 36, 3, (1, 2)),
    ((2, 130, 7, 9), 128, 2, 2),
    ((1, 128, 5, 5), 128, 4, 4),
    ((2, 128, 9, 8), 128, "same", 3),
    ((1, 128, 3, 3), 128, 4, 4),
]
WINOGRAD_5X5 = [  # (x shape, output channels, padding, dilation), 5x5
    ((2, 17, 5, 29), 19, 2, 1),
    ((2, 24, 6, 18), 26, 0, 1),
    ((1, 32, 13, 14), 32, "same", 1),
    ((3, 24, 9, 15), 40, (1, 3), 1),
    ((5, 24, 14, 14), 32, 2, 1),
    ((2, 24, 17, 40), 24, 4, 2),
    ((1, 96, 7, 7), 100, 2, 1),
    ((2, 16, 33, 28), 16, (3, 2), 1),
]


def forward_algorithm(x, w, op="conv2d", stride=1, padding=0, dilation=1, groups=1):
    """The algorithm fastbp's forward runs for these arguments."""
    return fastbp._core.conv_algorithm(op, x.ndim - 2, x, w, stride, padding, dilation, groups)


def weight_grad_algorithm(x, w, stride=1, padding=0, dilation=1, groups=1):
    """The algorithm fastbp's conv2d_backward runs for dW with these arguments."""
    return fastbp._core.conv_algorithm("conv2d", 2, x, w, stride, padding, dilation, groups,
                                       weight_grad=True)


def test_winograd_choice():
    """The cost model: channels enough for the image width, a 3x3 kernel of stride 1 without
    groups, and at most 8 MiB of transformed weights; the rest runs on im2col."""
    def algorithm(x_shape, w_shape, dtype=np.float32, **geometry):
        return forward_algorithm(np.zeros(x_shape, dtype), np.zeros(w_shape, dtype), **geometry)
    assert algorithm((1, 32, 56, 56), (32, 32, 3, 3), padding=1) == "winograd"
    assert algorithm((1, 32, 14, 14), (32, 32, 3, 3), padding=1) == "im2col"  # 14x14: 64+
    assert algorithm((1, 64, 14, 14), (64, 64, 3, 3), padding=1) == "winograd"
    assert algorithm((1, 64, 7, 7), (64, 64, 3, 3), padding=1) == "im2col"  # 7x7: 128+
    assert algorithm((1, 32, 56, 56), (32, 32, 3, 3), stride=2, padding=1) == "im2col"
    assert algorithm((1, 64, 56, 56), (64, 32, 3, 3), padding=1, groups=2) == "im2col"
    # 5x5: 16+ channels at 28+ columns, 24+ at 14+, 96+ below
    assert algorithm((1, 16, 28, 28), (16, 16, 5, 5), padding=2) == "winograd"
    assert algorithm((1, 15, 56, 56), (16, 15, 5, 5), padding=2) == "im2col"
    assert algorithm((1, 32, 14, 14), (64, 32, 5, 5), padding=2) == "winograd"  # lenet-c2
    assert algorithm((1, 16, 14, 14), (64, 16, 5, 5), padding=2) == "im2col"
    assert algorithm((1, 96, 7, 7), (96, 96, 5, 5), padding=2) == "winograd"
    assert algorithm((1, 64, 7, 7), (64, 64, 5, 5), padding=2) == "im2col"
    assert algorithm((1, 64, 28, 28), (64, 64, 5, 3), padding=2) == "im2col"
    assert algorithm((1, 64, 28, 28), (64, 64, 7, 7), padding=3) == "im2col"
    # 36 transformed copies: 8 MiB at 241 x 241 floats
    assert algorithm((1, 241, 14, 14), (241, 241, 5, 5), padding=2) == "winograd"
    assert algorithm((1, 242, 14, 14), (242, 242, 5, 5), padding=2) == "im2col"
    assert algorithm((1, 64, 56, 56), (64, 1, 3, 3), padding=1, groups=64) == "depthwise"
    # 16 transformed copies of the weights: 8 MiB at 256 x 256 doubles or 362 x 362 floats
    assert algorithm((1, 256, 14, 14), (256, 256, 3, 3), np.float64, padding=1) == "winograd"
    assert algorithm((1, 257, 14, 14), (256, 257, 3, 3), np.float64, padding=1) == "im2col"
    assert algorithm((1, 362, 14, 14), (362, 362, 3, 3), padding=1) == "winograd"
    assert algorithm((1, 512, 7, 7), (512, 512, 3, 3), padding=1) == "im2col"


@pytest.mark.parametrize("x_shape,out_channels,padding,dilation,k",
                         [c + (3,) for c in WINOGRAD] + [c + (5,) for c in WINOGRAD_5X5], ids=_id)
@DTYPE
def test_winograd_against_reference(rng, restore_threads, x_shape, out_channels, padding,
                                    dilation, k, dtype):
    """Forward (bias, and relu in the write-out) and backward against the reference, the same
    bits on 1 and 2 threads."""
    x = randn(rng, x_shape, dtype)
    w = randn(rng, (out_channels, x_shape[1], k, k), dtype)
    b = randn(rng, (out_channels,), dtype)
    geometry = dict(padding=padding, dilation=dilation)
    assert forward_algorithm(x, w, **geometry) == "winograd"
    y = check_op("conv2d", x, w, b, **geometry)
    relu = fastbp.conv2d(x, w, b, **geometry, activation="relu")
    assert np.array_equal(relu, np.maximum(y, 0))
    gy = randn(rng, y.shape, dtype)
    grads = check_op("conv2d_backward", gy, x, w, **geometry)
    fastbp.set_num_threads(1)
    assert np.array_equal(fastbp.conv2d(x, w, b, **geometry), y)
    for got, want in zip(fastbp.conv2d_backward(gy, x, w, **geometry), grads):
        assert np.array_equal(got, want)


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("k", [3, 5])
@DTYPE
def test_winograd_keeps_the_direct_sums_infinities(rng, value, k, dtype):
    """Winograd's transforms add and subtract inputs before multiplying, so inf inputs could give
    NaN where the direct sum gives inf: such a call is recomputed the direct way, and inf and
    NaN land where the reference puts them."""
    x = randn(rng, (2, 32, 8, 28), dtype)
    w = randn(rng, (32, 32, k, k), dtype)
    padding = k // 2
    assert forward_algorithm(x, w, padding=padding) == "winograd"
    x[0, 3, 2, 2] = x[1, 4, 3, 3] = value
    x[1, 4, 3, 4] = -value
    w[0, 3] = 0  # a zero kernel times inf: NaN in the direct sum too
    got = fastbp.conv2d(x, w, padding=padding)
    with np.errstate(invalid="ignore"):
        want = reference.conv2d(x, w, padding=padding)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(want))
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(want))
    finite = np.isfinite(want)
    assert_close(got[finite], want[finite])
    # dX carries dY back through the same transforms
    gy = randn(rng, got.shape, dtype)
    gy[0, 3, 2, 2] = gy[1, 4, 3, 3] = value
    gy[1, 4, 3, 4] = -value
    got = fastbp.conv2d_backward(gy, x, w, padding=padding, weight_grad=False,
                                 bias_grad=False)[0]
    with np.errstate(invalid="ignore"):
        want = reference.conv2d_backward(gy, x, w, padding=padding)[0]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isposinf(got), np.isposinf(want))
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(want))


@pytest.mark.parametrize("k", [3, 5])
@DTYPE
def test_winograd_never_overflows_where_the_direct_sum_does_not(rng, k, dtype):
    """Inputs of opposite sign two columns apart, each 3/4 of the largest float: their Winograd
    transform (their difference) overflows, the direct sum with small weights does not. The
    call is recomputed the direct way: finite and right."""
    x = randn(rng, (2, 32, 8, 28), dtype)
    w = randn(rng, (32, 32, k, k), dtype) * dtype(0.1)
    padding = k // 2
    assert forward_algorithm(x, w, padding=padding) == "winograd"
    big = np.finfo(dtype).max * dtype(0.75)
    x[1, 4, 2, 2], x[1, 4, 2, 4] = big, -big
    got = fastbp.conv2d(x, w, padding=padding)
    assert np.isfinite(got).all()
    assert_close(got, reference.conv2d(x, w, padding=padding).astype(dtype))


def check_directional_grads(rng, x, w, b, geometry, directions):
    """float64 central differences of sum(conv2d(x, w, b) * dy) along random directions v of x
    and of w against <dx, v> and <dw, v> from conv2d_backward. The convolution is linear in x
    and in w, so the differences are exact up to rounding."""
    dy = randn(rng, fastbp.conv2d(x, w, b, **geometry).shape)
    dx, dw, _ = fastbp.conv2d_backward(dy, x, w, **geometry)
    for _ in range(directions):
        vx, vw = randn(rng, x.shape), randn(rng, w.shape)
        along_x = reference.numerical_grad(
            lambda t: fastbp.conv2d(x + t[0] * vx, w, b, **geometry), np.zeros(1), dy)[0]
        along_w = reference.numerical_grad(
            lambda t: fastbp.conv2d(x, w + t[0] * vw, b, **geometry), np.zeros(1), dy)[0]
        np.testing.assert_allclose(along_x, np.sum(dx * vx), rtol=1e-7)
        np.testing.assert_allclose(along_w, np.sum(dw * vw), rtol=1e-7)


@pytest.mark.parametrize("k,channels", [(3, 64), (5, 32)])
def test_winograd_numerical_grads(rng, k, channels):
    """float64 central differences where the forward, the input gradient and the weight
    gradient all run by Winograd's transforms (384 tiles)."""
    x = randn(rng, (4, channels, 12, 32))
    w, b = randn(rng, (channels, channels, k, k)), randn(rng, (channels,))
    geometry = dict(padding=k // 2)
    assert forward_algorithm(x, w, **geometry) == "winograd"
    assert weight_grad_algorithm(x, w, **geometry) == "winograd"
    check_directional_grads(rng, x, w, b, geometry, 2)


# Weight gradients by Winograd's F(r x r, 2x2): 384+ tiles (2x2 blocks of dY) and 64+ channels
# (3x3) or 32+ (5x5); odd output sizes (half tiles of zeros), channel counts off the GEMM tiles,
# every padding, dilated ones as phase images
WINOGRAD_WEIGHT_GRAD = [  # (x shape, output channels, kernel size, padding, dilation)
    ((8, 64, 14, 14), 64, 3, 1, 1),
    ((3, 64, 27, 21), 70, 3, 1, 1),
    ((2, 64, 29, 30), 66, 3, 2, 2),
    ((8, 32, 14, 14), 48, 5, 2, 1),
    ((2, 40, 33, 30), 36, 5, (1, 3), 1),
    ((3, 32, 24, 26), 33, 5, 4, 2),
]


def test_winograd_weight_grad_choice():
    """Winograd's dW where the forward's choice allows it, from 384 tiles and 64 channels (3x3)
    or 32 (5x5); else the GEMM."""
    def algorithm(x_shape, w_shape, **geometry):
        return weight_grad_algorithm(np.zeros(x_shape, np.float32),
                                     np.zeros(w_shape, np.float32), **geometry)
    assert algorithm((8, 64, 14, 14), (64, 64, 3, 3), padding=1) == "winograd"  # 392 tiles
    assert algorithm((7, 64, 14, 14), (64, 64, 3, 3), padding=1) == "gemm"      # 343
    assert algorithm((4, 32, 28, 28), (32, 32, 3, 3), padding=1) == "gemm"      # 32 channels
    assert algorithm((8, 32, 14, 14), (48, 32, 5, 5), padding=2) == "winograd"
    assert algorithm((8, 32, 14, 14), (16, 32, 5, 5), padding=2) == "gemm"
    assert algorithm((8, 64, 28, 28), (64, 64, 3, 3), stride=2, padding=1) == "gemm"
    assert algorithm((8, 64, 14, 14), (64, 1, 3, 3), padding=1, groups=64) == "depthwise"


@pytest.mark.parametrize("x_shape,out_channels,k,padding,dilation", WINOGRAD_WEIGHT_GRAD,
                         ids=_id)
@DTYPE
def test_winograd_weight_grad_against_reference(rng, restore_threads, x_shape, out_channels, k,
                                                padding, dilation, dtype):
    """dW against the reference, alone and with dx and db; the same bits on 1 and 2 threads."""
    x = randn(rng, x_shape, dtype)
    w = randn(rng, (out_channels, x_shape[1], k, k), dtype)
    geometry = dict(padding=padding, dilation=dilation)
    assert weight_grad_algorithm(x, w, **geometry) == "winograd"
    gy = randn(rng, fastbp.conv2d(x, w, **geometry).shape, dtype)
    grads = check_op("conv2d_backward", gy, x, w, **geometry)
    alone = fastbp.conv2d_backward(gy, x, w, **geometry, input_grad=False, bias_grad=False)[1]
    assert np.array_equal(alone, grads[1])
    fastbp.set_num_threads(1)
    assert np.array_equal(fastbp.conv2d_backward(gy, x, w, **geometry)[1], grads[1])


@pytest.mark.parametrize("value", [np.inf, np.nan])
def test_winograd_weight_grad_keeps_the_direct_sums_infinities(rng, value):
    """An inf or NaN input multiplies the zeros of half tiles and mixes into its tile's
    transform: such a dW is recomputed the direct way, and inf and NaN land where the reference
    puts them."""
    x = randn(rng, (8, 64, 13, 14), np.float32)
    w = randn(rng, (64, 64, 3, 3), np.float32)
    assert weight_grad_algorithm(x, w, padding=1) == "winograd"
    x[0, 3, 12, 5] = value  # the last row: its tiles' second row of dY is zero
    gy = randn(rng, fastbp.conv2d(x, w, padding=1).shape, np.float32)
    got = fastbp.conv2d_backward(gy, x, w, padding=1, input_grad=False, bias_grad=False)[1]
    with np.errstate(invalid="ignore"):
        want = reference.conv2d_backward(gy, x, w, padding=1)[1]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    finite = np.isfinite(want)
    assert_close(got[finite], want[finite])


@pytest.mark.parametrize("limit_mib", [8, 1])
def test_winograd_weight_grad_under_the_workspace_limit(rng, restore_threads, limit_mib):
    """Under an 8 MiB limit Winograd's dW takes the batch (8 MiB of channels-last copies) in
    chunks after its 2.6 MiB of weight-sized buffers; under 1 MiB those buffers do not fit and dW
    runs the direct way. Right either way, and the same bits on 1 and 2 threads."""
    from fastbp import _core
    x = randn(rng, (96, 64, 9, 14), np.float32)
    w = randn(rng, (64, 64, 3, 3), np.float32)
    assert weight_grad_algorithm(x, w, padding=1) == "winograd"
    gy = randn(rng, fastbp.conv2d(x, w, padding=1).shape, np.float32)
    want = reference.conv2d_backward(gy, x, w, padding=1)[1]
    with workspace_limit(limit_mib << 20):
        got = []
        for threads in (2, 1):
            fastbp.set_num_threads(threads)
            _core.reset_scratch_peak()
            got.append(fastbp.conv2d_backward(gy, x, w, padding=1, input_grad=False)[1])
            assert _core.scratch_peak() <= (limit_mib << 20) + (2 << 20), _core.scratch_peak()
    assert_close(got[0], want)
    assert np.array_equal(got[0], got[1])


def test_winograd_under_the_workspace_limit(rng, restore_threads):
    """Under a 1 MiB limit the Winograd forward takes a few images at a time: the same bits, and
    its scratch stays near the limit."""
    from fastbp import _core
    x = randn(rng, (48, 32, 9, 28), np.float32)
    w = randn(rng, (32, 32, 3, 3), np.float32)
    assert forward_algorithm(x, w, padding=1) == "winograd"
    want = fastbp.conv2d(x, w, padding=1)
    with workspace_limit(1 << 20):
        for threads in (1, 2):
            fastbp.set_num_threads(threads)
            _core.reset_scratch_peak()
            assert np.array_equal(fastbp.conv2d(x, w, padding=1), want)
            assert _core.scratch_peak() <= (1 << 20) + threads * (1 << 20), _core.scratch_peak()


# Output rows whose taps reach into the padding are computed without those taps on AVX-512
# (whole tiles of output channels, 32K+ multiply-adds per pixel): bands of rows 0 | 1 | 2..11 |
# 12 | 13 for 5x5 with padding 2, the 12-row tile, padding past the kernel's reach (rows of
# bias alone), stride 2, dilation 2, wide rows, rows of runs a vector crosses, and padded pixel
# numbering.
PADDING_BANDS = [  # (x shape, weight shape, stride, padding, dilation)
    ((3, 16, 14, 14), (128, 16, 5, 5), 1, 2, 1),  # too few input channels for Winograd
    ((2, 128, 7, 7), (48, 128, 3, 3), 1, 1, 1),
    ((2, 64, 7, 9), (64, 64, 5, 3), 1, (5, 1), 1),
    ((2, 64, 9, 7), (64, 64, 5, 3), 2, (2, 1), 1),
    ((2, 64, 11, 10), (64, 64, 5, 3), 1, (4, 2), 2),
    ((1, 64, 5, 30), (64, 64, 5, 3), 1, (2, 1), 1),
    ((2, 64, 3, 10), (64, 64, 3, 5), 1, (1, 2), 1),
    ((2, 64, 16, 6), (128, 64, 5, 1), 1, (2, 0), 1),
]


@pytest.mark.parametrize("x_shape,w_shape,stride,padding,dilation", PADDING_BANDS, ids=_id)
@DTYPE
def test_padding_taps_skipped_change_nothing(rng, restore_threads, crossing, x_shape, w_shape,
                                             stride, padding, dilation, dtype):
    """Against the reference, and the same bits as the convolution of the input padded by hand
    (no padding, so no tap skipped: a skipped tap would only have added a zero), for 1 and 2
    threads, with relu in the write-out; the input gradient runs through the same forward."""
    x, w, b = randn(rng, x_shape, dtype), randn(rng, w_shape, dtype), randn(rng, w_shape[:1], dtype)
    geometry = dict(stride=stride, padding=padding, dilation=dilation)
    y = check_op("conv2d", x, w, b, **geometry)
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    by_hand = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    assert np.array_equal(fastbp.conv2d(by_hand, w, b, stride=stride, dilation=dilation), y)
    assert np.array_equal(fastbp.conv2d(x, w, b, **geometry, activation="relu"), np.maximum(y, 0))
    check_op("conv2d_backward", randn(rng, y.shape, dtype), x, w, **geometry)
    fastbp.set_num_threads(1)
    assert np.array_equal(fastbp.conv2d(x, w, b, **geometry), y)


def test_padding_bands_numerical_grads(rng):
    """float64 central differences where the forward and the input gradient run in bands
    (36K multiply-adds per pixel, 11% of the taps on padding)."""
    x, w, b = randn(rng, (2, 128, 6, 5)), randn(rng, (32, 128, 3, 3)), randn(rng, (32,))
    check_directional_grads(rng, x, w, b, dict(stride=1, padding=1), 3)


def test_inf_weight_on_padding(rng, crossing):
    """A kernel row that meets only padding multiplies its zeros (NaN with an inf weight, as in
    the reference), or is skipped where the rows are computed in bands (AVX-512 reading the
    pixels in place, for whole panels of such rows): then the row is as if the weight were
    zero, as in torch's direct kernels. Never another value."""
    x, w = randn(rng, (6, 64, 7, 7), np.float32), randn(rng, (64, 64, 3, 3), np.float32)
    w[:, :, 0, :] = np.inf  # the top kernel row: on padding for output row 0 only
    y = fastbp.conv2d(x, w, padding=1)
    assert np.isnan(y[:, :, 1:]).all()
    top = y[:, :, 0]
    want = fastbp.conv2d(x, np.where(np.isinf(w), 0, w).astype(np.float32), padding=1)[:, :, 0]
    finite = np.isfinite(top)
    np.testing.assert_array_equal(top[finite], want[finite])
    assert np.isnan(top[~finite]).all()
    assert finite.all() == (fastbp.cpu_capability() == "avx512" and not crossing)


@pytest.mark.parametrize("multiplier", [1, 2])
@DTYPE
def test_depthwise_backward_in_one_pass(rng, restore_threads, multiplier, dtype):
    """A depthwise layer's dx, dw and db come from one pass over its planes: asking for any of
    them alone (db alone takes the generic sum, in the same order) or changing the thread count
    gives the same bits; all match the reference; an empty batch gives zero gradients."""
    x = randn(rng, (5, 6, 13, 11), dtype)
    w = randn(rng, (6 * multiplier, 1, 3, 3), dtype)
    args = dict(stride=(1, 2), padding=1, groups=6)
    gy = randn(rng, fastbp.conv2d(x, w, **args).shape, dtype)
    dx, dw, db = check_op("conv2d_backward", gy, x, w, **args)
    assert np.array_equal(fastbp.conv2d_backward(gy, x, w, **args, weight_grad=False)[0], dx)
    assert np.array_equal(fastbp.conv2d_backward(gy, x, w, **args, input_grad=False)[1], dw)
    db_alone = fastbp.conv2d_backward(gy, x, w, **args, input_grad=False, weight_grad=False)[2]
    assert np.array_equal(db_alone, db)
    # an empty batch: zero weight and bias gradients, an empty input gradient
    empty = fastbp.conv2d_backward(gy[:0], x[:0], w, **args)
    assert empty[0].shape == x[:0].shape and not empty[1].any() and not empty[2].any()
    fastbp.set_num_threads(1)
    for a, b in zip(fastbp.conv2d_backward(gy, x, w, **args), (dx, dw, db)):
        assert np.array_equal(a, b)


def test_depthwise_weight_grad_under_workspace_limit(rng):
    """dw's (and db's) per-image sums of a wide depthwise layer (3000 channels x 49 taps: 0.6 MiB
    per image) are kept one image at a time under a 1 MiB limit and added in image order, as
    without it: the same bits."""
    x = randn(rng, (4, 3000, 9, 8), np.float32)
    w = randn(rng, (3000, 1, 7, 7), np.float32)
    gy = randn(rng, (4, 3000, 9, 8), np.float32)
    want = fastbp.conv2d_backward(gy, x, w, padding=3, groups=3000)
    with workspace_limit(1 << 20):
        got = fastbp.conv2d_backward(gy, x, w, padding=3, groups=3000)
    for a, b in zip(got, want):
        assert np.array_equal(a, b)


def test_concurrent_python_threads(rng):
    inputs = [(randn(rng, (2, 8, 15, 14)), randn(rng, (12, 4, 3, 3))) for _ in range(6)]
    serial = [fastbp.conv2d(x, w, padding=1, groups=2) for x, w in inputs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(3):
            results = list(pool.map(lambda xw: fastbp.conv2d(*xw, padding=1, groups=2), inputs))
            for got, want in zip(results, serial):
                assert np.array_equal(got, want)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_ops_work_after_fork(rng, restore_threads):
    fastbp.set_num_threads(2)
    x, w = randn(rng, (4, 16, 24, 24)), randn(rng, (16, 16, 3, 3))
    expected = fastbp.conv2d(x, w, padding=1)  # the thread pool is now running in the parent
    a, b = randn(rng, (200, 150)), randn(rng, (150, 170))
    expected_mm = fastbp.matmul(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "process is multi-threaded" (3.12+)
        pid = os.fork()
    if pid == 0:
        ok = False
        try:
            ok = (np.array_equal(fastbp.conv2d(x, w, padding=1), expected)
                  and np.array_equal(fastbp.matmul(a, b), expected_mm))
        finally:
            os._exit(0 if ok else 1)
    deadline = time.monotonic() + 30
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("op in a forked child hung")
        time.sleep(0.05)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"child failed: status {status}"
    assert np.array_equal(fastbp.conv2d(x, w, padding=1), expected)  # parent still works


# ---------------------------------------------------------------------------------------------
# every CPU path the host supports, chosen by FASTBP_CPU_CAPABILITY at import time

ALL_CAPABILITIES = ["ref", "avx2", "avx512"]

CAPABILITY_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import fastbp
    from fastbp import reference

    assert fastbp.cpu_capability() == sys.argv[1], fastbp.cpu_capability()
    rng = np.random.default_rng(0)
    tol = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-10}

    def check(got, want, what):
        for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
            assert g.dtype == w.dtype and g.shape == w.shape, (what, g.dtype, g.shape, w.shape)
            if w.size:
                err = np.max(np.abs(g.astype(np.float64) - w))
                assert err <= tol[w.dtype] * (1 + np.max(np.abs(w))), (what, err)

    def run(name, *args, **kwargs):
        check(getattr(fastbp, name)(*args, **kwargs), getattr(reference, name)(*args, **kwargs), name)

    for dtype in (np.float32, np.float64):
        r = lambda *shape: rng.standard_normal(shape).astype(dtype)
        for xs, ws, geometry in [
                ((3, 6, 13, 11), (18, 3, 3, 2), dict(stride=2, padding=(1, 2), groups=2)),
                ((2, 33, 9, 10), (13, 33, 3, 3), dict(padding="same", dilation=2)),
                ((2, 50, 7, 9), (37, 50, 3, 3), dict(padding=1)),
                ((2, 9, 6, 7), (24, 3, 1, 1), dict(groups=3))]:
            x, w, b = r(*xs), r(*ws), r(ws[0])
            run("conv2d", x, w, b, **geometry)
            gy = r(*reference.conv2d(x, w, b, **geometry).shape)
            run("conv2d_backward", gy, x, w, **geometry)
        x, w = r(3, 7, 31), r(13, 7, 4)
        run("conv1d", x, w, r(13), padding="same")
        run("conv1d_backward", r(3, 13, 31), x, w, padding="same")
        x, w = r(5, 3, 97), r(33, 97)
        run("linear", x, w, r(33))
        run("linear_backward", r(5, 3, 33), x, w)
        for m, n, k in [(1, 1, 1), (7, 13, 33), (97, 515, 401), (13, 33, 0)]:
            for ta in (False, True):
                for tb in (False, True):
                    a = r(k, m) if ta else r(m, k)
                    bm = r(n, k) if tb else r(k, n)
                    out = r(m, n)
                    got = fastbp.matmul(a, bm, trans_a=ta, trans_b=tb, alpha=1.5, beta=-0.5, out=out.copy())
                    want = reference.matmul(a, bm, trans_a=ta, trans_b=tb, alpha=1.5, beta=-0.5, out=out.copy())
                    check(got, want, ("matmul", m, n, k, ta, tb))
        x, w, gy, a = r(4, 16, 20, 23), r(24, 16, 3, 3), r(4, 24, 20, 23), r(300, 257)
        xw, ww = r(3, 40, 5, 29), r(36, 40, 3, 3)  # Winograd
        run("conv2d", xw, ww, r(36), padding=1)
        by_threads = []
        for threads in (1, 2):
            fastbp.set_num_threads(threads)
            by_threads.append(fastbp.conv2d_backward(gy, x, w, padding=1) + (fastbp.matmul(a, a.T),)
                              + (fastbp.conv2d(xw, ww, padding=1),))
        assert all(np.array_equal(g1, g2) for g1, g2 in zip(*by_threads)), "thread count changed bits"
    print("OK")
""")


def _run_python(code, *args, capability):
    env = dict(os.environ, FASTBP_CPU_CAPABILITY=capability)
    # run outside the source tree so that the installed package (with _core) is imported
    return subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=os.path.dirname(sys.executable),
                          capture_output=True, text=True, timeout=120)


def test_cpu_capability_reports_a_supported_path():
    supported = list(fastbp._core.supported_capabilities())
    assert "ref" in supported and set(supported) <= set(ALL_CAPABILITIES)
    assert fastbp.cpu_capability() in supported


@pytest.mark.parametrize("capability", ALL_CAPABILITIES)
def test_every_supported_cpu_path(capability):
    if capability not in fastbp._core.supported_capabilities():
        pytest.skip(f"{capability} is not supported on this CPU")
    result = _run_python(CAPABILITY_SCRIPT, capability, capability=capability)
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-3000:]


FAILED_IMPORT_SCRIPT = textwrap.dedent("""
    try:
        import fastbp
    except (ValueError, RuntimeError) as error:
        print(type(error).__name__, error)
        raise SystemExit(0 if "FASTBP_CPU_CAPABILITY" in str(error) else 2)
    raise SystemExit(1)
""")


def test_unknown_cpu_capability_fails_import():
    result = _run_python(FAILED_IMPORT_SCRIPT, capability="sse9000")
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr[-3000:])


def test_unsupported_cpu_capability_fails_import():
    unsupported = [c for c in ALL_CAPABILITIES if c not in fastbp._core.supported_capabilities()]
    if not unsupported:
        pytest.skip("this CPU supports every capability")
    result = _run_python(FAILED_IMPORT_SCRIPT, capability=unsupported[0])
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr[-3000:])


# ---------------------------------------------------------------------------------------------
# agreement with torch (float64, autograd gradients)

def _torch():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pytest.importorskip("torch")


TORCH_CONV2D = [  # (x shape, weight shape, stride, padding, dilation, groups)
    ((2, 4, 9, 8), (6, 4, 3, 3), 1, 1, 1, 1),
    ((2, 6, 11, 10), (9, 2, 2, 4), (2, 1), (1, 2), (1, 2), 3),
    ((1, 4, 8, 8), (4, 2, 2, 2), 1, "same", 1, 2),
    ((3, 3, 7, 9), (5, 3, 4, 3), 1, "same", 2, 1),
    ((2, 4, 6, 6), (4, 1, 3, 3), 2, "valid", 1, 4),
]
TORCH_CONV1D = [
    ((2, 4, 17), (6, 4, 3), 1, 1, 1, 1),
    ((2, 6, 20), (9, 2, 4), 2, 3, 2, 3),
    ((3, 4, 12), (4, 2, 4), 1, "same", 1, 2),
    ((1, 3, 15), (5, 3, 2), 1, "same", 3, 1),
]


def _compare_conv_with_torch(ours, ours_backward, theirs, x_shape, w_shape, geometry):
    torch = _torch()
    rng = np.random.default_rng(zlib.crc32(repr((x_shape, w_shape, geometry)).encode()))
    x, w, b = randn(rng, x_shape), randn(rng, w_shape), randn(rng, w_shape[:1])
    xt, wt, bt = (torch.tensor(v, requires_grad=True) for v in (x, w, b))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about 'same' with even kernels
        yt = theirs(xt, wt, bt, **geometry)
        gy = randn(rng, tuple(yt.shape))
        yt.backward(torch.tensor(gy))
    np.testing.assert_allclose(ours(x, w, b, **geometry), yt.detach().numpy(), rtol=1e-9, atol=1e-9)
    for got, want in zip(ours_backward(gy, x, w, **geometry), (xt.grad, wt.grad, bt.grad)):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("x_shape,w_shape,stride,padding,dilation,groups", TORCH_CONV2D,
                         ids=[f"{_id(c[0])}-{_id(c[1])}" for c in TORCH_CONV2D])
def test_conv2d_matches_torch(x_shape, w_shape, stride, padding, dilation, groups):
    torch = _torch()
    _compare_conv_with_torch(fastbp.conv2d, fastbp.conv2d_backward, torch.nn.functional.conv2d, x_shape,
                             w_shape, dict(stride=stride, padding=padding, dilation=dilation, groups=groups))


@pytest.mark.parametrize("x_shape,w_shape,stride,padding,dilation,groups", TORCH_CONV1D,
                         ids=[f"{_id(c[0])}-{_id(c[1])}" for c in TORCH_CONV1D])
def test_conv1d_matches_torch(x_shape, w_shape, stride, padding, dilation, groups):
    torch = _torch()
    _compare_conv_with_torch(fastbp.conv1d, fastbp.conv1d_backward, torch.nn.functional.conv1d, x_shape,
                             w_shape, dict(stride=stride, padding=padding, dilation=dilation, groups=groups))


@pytest.mark.parametrize("x_shape", [(5, 7), (2, 3, 7), (7,)], ids=_id)
def test_linear_matches_torch(x_shape):
    torch = _torch()
    rng = np.random.default_rng(len(x_shape))
    x, w, b = randn(rng, x_shape), randn(rng, (4, 7)), randn(rng, (4,))
    xt, wt, bt = (torch.tensor(v, requires_grad=True) for v in (x, w, b))
    yt = torch.nn.functional.linear(xt, wt, bt)
    gy = randn(rng, tuple(yt.shape))
    yt.backward(torch.tensor(gy))
    np.testing.assert_allclose(fastbp.linear(x, w, b), yt.detach().numpy(), rtol=1e-9, atol=1e-9)
    for got, want in zip(fastbp.linear_backward(gy, x, w), (xt.grad, wt.grad, bt.grad)):
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-9, atol=1e-9)


def _unaligned(shape, dtype):
    """A C-contiguous array of random values whose data does not start on an item boundary."""
    return strategies._unaligned(np.random.default_rng(9).standard_normal(shape).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_unaligned_inputs(dtype):
    x, w, b = _unaligned((2, 3, 6, 7), dtype), _unaligned((4, 3, 3, 3), dtype), _unaligned((4,), dtype)
    assert not x.flags.aligned
    np.testing.assert_allclose(fastbp.conv2d(x, w, b, padding=1),
                               reference.conv2d(x.copy(), w.copy(), b.copy(), padding=1), rtol=1e-5, atol=1e-5)
    a = _unaligned((5, 9), dtype)
    np.testing.assert_allclose(fastbp.matmul(a, a.T), a.copy() @ a.copy().T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fastbp.linear(a, a), a.copy() @ a.copy().T, rtol=1e-5, atol=1e-5)


def test_set_num_threads_rejects_out_of_range():
    for bad in (0, -1, 2**40):
        with pytest.raises(ValueError, match="set_num_threads"):
            fastbp.set_num_threads(bad)
    with pytest.raises(TypeError):
        fastbp.set_num_threads(2.0)


# Larger stride-1 shapes: these take the zero-padded-image forward path and, with enough input
# channels, the transposed-convolution path for the input gradient.
PADDED_CASES = [
    # x shape, weight shape, padding, dilation, groups
    ((2, 5, 44, 40), (6, 5, 3, 3), 1, 1, 1),
    ((1, 48, 44, 40), (6, 48, 3, 3), 1, 1, 1),
    ((2, 6, 53, 49), (4, 3, 3, 2), "same", (2, 1), 2),
    ((1, 50, 45, 61), (7, 50, 3, 3), (2, 1), 1, 1),
    ((1, 96, 70, 66), (8, 48, 3, 3), 2, 2, 2),
    ((3, 4, 200), (5, 4, 9), 4, 1, 1),
    ((2, 64, 130), (6, 64, 8), "same", 2, 1),
    ((2, 49, 77), (7, 7, 5), 1, 1, 7),
]


@pytest.mark.parametrize("xs,ws,padding,dilation,groups", PADDED_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_padded_image_paths(xs, ws, padding, dilation, groups, dtype):
    rng = np.random.default_rng(21)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    one_d = len(xs) == 3
    op, op_bwd = (fastbp.conv1d, fastbp.conv1d_backward) if one_d else (fastbp.conv2d, fastbp.conv2d_backward)
    ref, ref_bwd = (reference.conv1d, reference.conv1d_backward) if one_d else (reference.conv2d, reference.conv2d_backward)
    kw = dict(padding=padding, dilation=dilation, groups=groups)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    y = op(x, w, b, **kw)
    np.testing.assert_allclose(y, ref(x, w, b, **kw), **tol)
    dy = rng.standard_normal(y.shape).astype(dtype)
    threads = fastbp.get_num_threads()
    try:
        fastbp.set_num_threads(1)
        one = op_bwd(dy, x, w, **kw)
        fastbp.set_num_threads(2)
        two = op_bwd(dy, x, w, **kw)
    finally:
        fastbp.set_num_threads(threads)
    for got, got2, want in zip(one, two, ref_bwd(dy, x, w, **kw)):
        # a gradient summed over thousands of pixels: its error scales with its largest entries
        np.testing.assert_allclose(got, want, rtol=tol["rtol"],
                                   atol=tol["atol"] * max(1.0, float(np.abs(want).max())))
        assert np.array_equal(got, got2)


# ---------------------------------------------------------------------------------------------
# transposed convolution: forward on the conv input-gradient path, backward on conv forward and
# the conv weight-gradient path

CONV_TRANSPOSE_CASES = [  # (op, x shape, weight shape, stride, padding, output_padding, groups, dilation)
    ("conv_transpose2d", (2, 6, 5, 4), (6, 2, 3, 2), (2, 1), (1, 0), (1, 0), 3, (1, 2)),
    ("conv_transpose2d", (1, 3, 7, 6), (3, 5, 3, 3), 1, 1, 0, 1, 1),
    ("conv_transpose2d", (2, 4, 5, 5), (4, 3, 3, 3), 2, 0, 2, 1, 3),   # output_padding >= stride
    ("conv_transpose2d", (3, 50, 6, 7), (50, 7, 3, 3), 1, 1, 0, 1, 1),  # wide: the padded paths
    ("conv_transpose2d", (0, 4, 5, 5), (4, 3, 2, 2), 2, 0, 1, 1, 1),
    ("conv_transpose1d", (3, 4, 7), (4, 5, 3), 3, 2, 1, 1, 2),
    ("conv_transpose1d", (1, 6, 13), (6, 1, 4), 2, 1, 1, 6, 1),
    ("conv_transpose1d", (2, 64, 33), (64, 32, 9), 2, 4, 1, 1, 1),    # a decoder layer
]


@pytest.mark.parametrize("op,x_shape,w_shape,stride,padding,output_padding,groups,dilation",
                         CONV_TRANSPOSE_CASES,
                         ids=[f"{c[0]}-{_id(c[1])}-{_id(c[2])}" for c in CONV_TRANSPOSE_CASES])
@DTYPE
@WITH_BIAS
def test_conv_transpose_matches_reference(rng, op, x_shape, w_shape, stride, padding,
                                          output_padding, groups, dilation, dtype, with_bias):
    x, weight = randn(rng, x_shape, dtype), randn(rng, w_shape, dtype)
    bias = randn(rng, (w_shape[1] * groups,), dtype) if with_bias else None
    geometry = dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups,
                    dilation=dilation)
    y = check_op(op, x, weight, bias, **geometry)
    check_op(op + "_backward", randn(rng, y.shape, dtype), x, weight, **geometry,
             bias_grad=with_bias)
    for flags in [(True, False, False), (False, True, False)]:
        check_op(op + "_backward", randn(rng, y.shape, dtype), x, weight, **geometry,
                 **dict(zip(("input_grad", "weight_grad", "bias_grad"), flags)))


@pytest.mark.parametrize("op,x_shape,w_shape,stride,padding,output_padding,groups,dilation",
                         [c for c in CONV_TRANSPOSE_CASES if np.prod(c[1]) and np.prod(c[1]) < 400],
                         ids=_id)
def test_conv_transpose_numerical_grads_and_torch(rng, op, x_shape, w_shape, stride, padding,
                                                  output_padding, groups, dilation):
    forward, backward = getattr(fastbp, op), getattr(fastbp, op + "_backward")
    geometry = dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups,
                    dilation=dilation)
    inputs = (randn(rng, x_shape), randn(rng, w_shape), randn(rng, (w_shape[1] * groups,)))
    grad_output = randn(rng, forward(*inputs, **geometry).shape)
    check_numerical_grads(lambda x, w, b: forward(x, w, b, **geometry),
                          lambda gy, x, w, b: backward(gy, x, w, **geometry), inputs, grad_output)
    torch = _torch()
    tensors = [torch.tensor(v, requires_grad=True) for v in inputs]
    yt = getattr(torch.nn.functional, op)(*tensors, **geometry)
    yt.backward(torch.tensor(grad_output))
    np.testing.assert_allclose(forward(*inputs, **geometry), yt.detach().numpy(), rtol=1e-9, atol=1e-9)
    for got, want in zip(backward(grad_output, *inputs[:2], **geometry), tensors):
        np.testing.assert_allclose(got, want.grad.numpy(), rtol=1e-9, atol=1e-9)


def test_conv_transpose_unbatched_and_errors(rng):
    x, w, b = randn(rng, (4, 5, 6)), randn(rng, (4, 3, 3, 3)), randn(rng, (3,))
    assert_close(fastbp.conv_transpose2d(x, w, b, stride=2), reference.conv_transpose2d(x[None], w, b, stride=2)[0])
    with pytest.raises(ValueError, match=r"(?s)input.*5.*weight"):
        fastbp.conv_transpose2d(randn(rng, (2, 5, 6, 6)), w)
    with pytest.raises(ValueError, match="output_padding"):
        fastbp.conv_transpose2d(x, w, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="bias"):
        fastbp.conv_transpose2d(x, w, randn(rng, (4,)))
    with pytest.raises(ValueError, match="groups"):
        fastbp.conv_transpose2d(x, w, groups=3)
    with pytest.raises(ValueError, match="padding"):
        fastbp.conv_transpose1d(x[:, 0], w[:, :, 0], padding="same")
    with pytest.raises(ValueError, match="output size"):
        fastbp.conv_transpose1d(x[:, 0, :1], w[:, :, 0], padding=3)
    with pytest.raises(TypeError, match="weight"):
        fastbp.conv_transpose1d(x[:, 0], w[:, :, 0].astype(np.float32))
    with pytest.raises(ValueError, match="grad_output"):
        fastbp.conv_transpose1d_backward(randn(rng, (3, 7)), x[:, 0], w[:, :, 0])


@DTYPE
def test_flush_denormal(rng, restore_threads, dtype):
    """Off (the default), subnormal inputs and results are exact; on, fastbp's ops read subnormal
    inputs as zero and flush results that would be subnormal to zero, on every thread of the
    op, and off again restores exact results on every thread."""
    tiny = np.finfo(dtype).tiny
    x = randn(rng, (2, 8, 9, 10), dtype) * dtype(tiny * 0.1)  # every value subnormal
    w, b = randn(rng, (16, 8, 3, 3), dtype), randn(rng, (16,), dtype)
    small = np.full((4, 8), np.sqrt(tiny) * 0.1, dtype)  # normal, their products subnormal
    assert not fastbp.get_flush_denormal()
    exact = check_op("conv2d", x, w, b, padding=1)
    assert np.any(fastbp.matmul(small, small.T) != 0)
    try:
        assert fastbp.set_flush_denormal(True) == (platform.machine() in ("x86_64", "AMD64"))
        if not fastbp.get_flush_denormal():
            return
        for threads in (1, 2):
            fastbp.set_num_threads(threads)
            assert np.array_equal(fastbp.conv2d(x, w, b, padding=1),
                                  fastbp.conv2d(np.zeros_like(x), w, b, padding=1))
            assert not np.any(fastbp.linear(x.reshape(2, -1), randn(rng, (5, 720), dtype)))
            assert not np.any(fastbp.matmul(small, small.T))
    finally:
        fastbp.set_flush_denormal(False)
    for threads in (1, 2):
        fastbp.set_num_threads(threads)
        assert np.array_equal(fastbp.conv2d(x, w, b, padding=1), exact)
