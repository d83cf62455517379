"""pytest-benchmark groups: fastbp beside the course-style Cython im2col layer
(fastbp._cython_peer: Cython im2col/col2im + numpy matmul) on every conv layer of the public suite.

Run: pytest benchmarks/test_bench_cython_peer.py --benchmark-group-by=group
Each benchmark asserts what it timed against fastbp in float64. Skipped without Cython,
setuptools or a C compiler."""
import functools

import numpy as np
import pytest

import fastbp
from fastbp import _cython_build, _cython_peer

# name, x shape, weight shape, stride, padding (float32): the public suite of DESIGN.md
SUITE = [
    ("lenet-c1", (64, 1, 28, 28), (32, 1, 5, 5), 1, 2),
    ("lenet-c2", (64, 32, 14, 14), (64, 32, 5, 5), 1, 2),
    ("cifar-3x3", (32, 64, 32, 32), (64, 64, 3, 3), 1, 1),
    ("r18-c2", (8, 64, 56, 56), (64, 64, 3, 3), 1, 1),
    ("r18-down", (8, 64, 56, 56), (128, 64, 3, 3), 2, 1),
    ("r18-c4", (8, 256, 14, 14), (256, 256, 3, 3), 1, 1),
    ("pw-1x1", (8, 256, 14, 14), (1024, 256, 1, 1), 1, 0),
    ("stem-7x7", (8, 3, 224, 224), (64, 3, 7, 7), 2, 3),
    ("ppg-c1", (64, 4, 256), (32, 4, 9), 1, 4),
    ("ppg-c2", (64, 32, 128), (64, 32, 9), 1, 4),
]


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory):
    reason = _cython_build.missing_tools()
    if reason:
        pytest.skip(f"the Cython peer cannot be compiled here: {reason}")
    return tmp_path_factory.mktemp("cython-peer")


@functools.lru_cache(maxsize=1)
def layer(name):
    """Arrays of one layer and what fastbp computes for them in float64."""
    _, xs, ws, s, p = next(row for row in SUITE if row[0] == name)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs, dtype=np.float32)
    w = rng.standard_normal(ws, dtype=np.float32) * 0.1
    b = rng.standard_normal(ws[0], dtype=np.float32)
    conv, conv_bwd = ((fastbp.conv1d, fastbp.conv1d_backward) if len(xs) == 3
                      else (fastbp.conv2d, fastbp.conv2d_backward))
    kw = dict(stride=s, padding=p)
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    y64 = conv(x64, w64, b.astype(np.float64), **kw)
    dy = rng.standard_normal(y64.shape, dtype=np.float32)
    grads64 = conv_bwd(dy.astype(np.float64), x64, w64, **kw)
    return x, w, b, dy, kw, conv, conv_bwd, y64, grads64


def close(got, want):
    for g, w in zip(got, want):
        assert g.dtype == np.float32 and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-3, atol=1e-4 * float(np.abs(w).max()))


def fns(impl, name, build_dir):
    x, w, b, dy, kw, conv, conv_bwd, _, _ = layer(name)
    if impl == "fastbp":
        return lambda: conv(x, w, b, **kw), lambda: conv_bwd(dy, x, w, **kw)
    return _cython_peer.conv_fns(x, w, b, dy, build_dir=build_dir, **kw)


@pytest.mark.parametrize("impl", ["fastbp", "cython-im2col"])
@pytest.mark.parametrize("name", [row[0] for row in SUITE])
def test_conv_forward(benchmark, build_dir, name, impl):
    benchmark.group = f"cython-peer-fwd-{name}"
    forward, _ = fns(impl, name, build_dir)
    close([benchmark(forward)], [layer(name)[7]])


@pytest.mark.parametrize("impl", ["fastbp", "cython-im2col"])
@pytest.mark.parametrize("name", [row[0] for row in SUITE])
def test_conv_backward(benchmark, build_dir, name, impl):
    benchmark.group = f"cython-peer-bwd-{name}"
    _, backward = fns(impl, name, build_dir)
    close(benchmark(backward), layer(name)[8])
