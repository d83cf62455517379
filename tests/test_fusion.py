"""Fused epilogues: conv/linear with activation='relu', and nn.Sequential's conv+ReLU fusion,
give the same bits as the op followed by relu."""
import numpy as np
import pytest

import fastbp
from fastbp import nn

CASES = [
    ("conv2d", (4, 6, 11, 13), (8, 6, 3, 3), dict(padding=1)),
    ("conv2d", (3, 5, 9, 9), (5, 1, 3, 3), dict(groups=5, stride=2)),   # depthwise path
    ("conv2d", (2, 64, 7, 7), (32, 64, 3, 3), dict(padding=1)),         # row-run numbering
    ("conv1d", (2, 4, 40), (6, 4, 5), dict(padding=2, dilation=2)),
    # the GEMM writes into y, bias and relu applied as its tasks finish
    ("conv2d", (2, 3, 24, 25), (19, 3, 3, 3), dict(padding=1)),
    ("conv2d", (2, 5, 23, 25), (17, 5, 1, 1), {}),
    ("conv1d", (3, 4, 160), (21, 4, 9), dict(padding=4)),
    ("conv2d", (2, 8, 20, 20), (8, 1, 3, 3), dict(groups=8, padding=1)),  # depthwise, into y
    # depthwise into y with the taps unrolled (5x5, two outputs per channel), and row by row
    ("conv2d", (2, 6, 21, 37), (12, 1, 5, 5), dict(groups=6, padding=2)),
    ("conv2d", (2, 4, 9, 33), (4, 1, 3, 5), dict(groups=4, padding=(1, 2))),
    ("conv2d", (2, 16, 14, 14), (40, 16, 1, 1), {}),  # compact pixels copied out in one run
    ("conv2d", (2, 32, 6, 30), (36, 32, 3, 3), dict(padding=1)),  # Winograd
]


@pytest.mark.parametrize("op,xs,ws,kw", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_relu_epilogue_is_relu_after(op, xs, ws, kw, dtype):
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    x.flat[3] = np.nan  # NaN goes through relu, as in torch
    conv = getattr(fastbp, op)
    y = conv(x, w, b, **kw)
    fused = conv(x, w, b, activation="relu", **kw)
    assert np.array_equal(np.where(y < 0, 0, y), fused, equal_nan=True)


@pytest.mark.parametrize("op,xs,ws,kw", [c for c in CASES if c[3].get("groups", 1) == 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_bias_is_added_to_the_finished_sum(op, xs, ws, kw, dtype):
    """The bias goes in at the write-out (the epilogue kernel, or Winograd's output transform),
    after the whole sum: the same bits as the convolution without it plus the bias."""
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    conv = getattr(fastbp, op)
    y = conv(x, w, **kw) + b.reshape((-1,) + (1,) * (len(xs) - 2))
    assert np.array_equal(conv(x, w, b, **kw), y)
    assert np.array_equal(conv(x, w, b, activation="relu", **kw), np.maximum(y, 0))


@pytest.mark.parametrize("batch", [1, 5])
def test_linear_relu_epilogue_is_relu_after(batch):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((batch, 30)).astype(np.float32)
    w = rng.standard_normal((700, 30)).astype(np.float32)
    b = rng.standard_normal(700).astype(np.float32)
    y = fastbp.linear(x, w, b)
    assert np.array_equal(np.where(y < 0, 0, y), fastbp.linear(x, w, b, activation="relu"))


def test_bad_activation_is_a_value_error():
    with pytest.raises(ValueError, match="activation"):
        fastbp.conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 1, 1)), activation="tanh")
    with pytest.raises(ValueError, match="activation"):
        fastbp.linear(np.ones((1, 3)), np.ones((2, 3)), activation=1)


def test_sequential_fusion_matches_the_layers_one_by_one():
    fastbp.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3),
                          nn.ReLU(), nn.Flatten(), nn.Linear(8 * 7 * 7, 16), nn.ReLU(),
                          nn.Linear(16, 4))
    x = fastbp.Tensor(np.random.default_rng(2).standard_normal((5, 3, 9, 9)).astype(np.float32))
    fused = model(x)
    fused.sum().backward()
    grads = [p.grad.copy() for p in model.parameters()]
    model.zero_grad()
    out = x
    for layer in model:  # unfused: each module on its own
        out = layer(out)
    out.sum().backward()
    assert np.array_equal(fused.numpy(), out.numpy())
    assert all(np.array_equal(g, p.grad) for g, p in zip(grads, model.parameters()))
