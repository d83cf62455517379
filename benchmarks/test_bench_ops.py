"""pytest-benchmark groups: fastbp beside fastbp.reference (numpy) and torch when installed.

Run: pytest benchmarks --benchmark-group-by=group   (CI runs them with --benchmark-disable:
each benchmark still runs once and asserts the result it timed)."""
import numpy as np
import pytest

import fastbp
from fastbp import reference

try:
    import torch
except ImportError:  # torch is a peer for comparison only
    torch = None

rng = np.random.default_rng(0)

# (name, x shape, weight shape, stride, padding): small members of the public suite
CONV = [("lenet-c2", (64, 32, 14, 14), (64, 32, 5, 5), 1, 2),
        ("cifar-3x3", (8, 64, 32, 32), (64, 64, 3, 3), 1, 1),
        ("ppg-c1", (64, 4, 256), (32, 4, 9), 1, 4)]
LINEAR = [("mlp", 64, 784, 256)]
GEMM = [("sq256", 256, 256, 256), ("conv-r18c2", 64, 3136, 576)]
IMPLS = ["fastbp", "numpy"] + (["torch"] if torch is not None else [])


def close(got, want):
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g, np.float64), np.asarray(w, np.float64),
                                   rtol=2e-4, atol=2e-4 * float(np.abs(w).max() or 1))


def conv_fns(xs):
    if len(xs) == 3:
        return (fastbp.conv1d, fastbp.conv1d_backward, reference.conv1d, reference.conv1d_backward,
                torch and torch.nn.functional.conv1d)
    return (fastbp.conv2d, fastbp.conv2d_backward, reference.conv2d, reference.conv2d_backward,
            torch and torch.nn.functional.conv2d)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("layer", CONV, ids=[c[0] for c in CONV])
def test_conv_forward(benchmark, layer, impl):
    name, xs, ws, s, p = layer
    benchmark.group = f"conv-fwd-{name}"
    x, w, b = (rng.standard_normal(sh, dtype=np.float32) for sh in (xs, ws, ws[:1]))
    fwd, _, rfwd, _, tfwd = conv_fns(xs)
    want = rfwd(x, w, b, stride=s, padding=p)
    if impl == "fastbp":
        got = benchmark(fwd, x, w, b, stride=s, padding=p)
    elif impl == "numpy":
        got = benchmark(rfwd, x, w, b, stride=s, padding=p)
    else:
        tx, tw, tb = map(torch.from_numpy, (x, w, b))
        with torch.no_grad():
            got = benchmark(tfwd, tx, tw, tb, stride=s, padding=p).numpy()
    close([got], [want])


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("layer", CONV, ids=[c[0] for c in CONV])
def test_conv_backward(benchmark, layer, impl):
    name, xs, ws, s, p = layer
    benchmark.group = f"conv-bwd-{name}"
    x, w, b = (rng.standard_normal(sh, dtype=np.float32) for sh in (xs, ws, ws[:1]))
    fwd, bwd, _, rbwd, tfwd = conv_fns(xs)
    dy = rng.standard_normal(fwd(x, w, b, stride=s, padding=p).shape, dtype=np.float32)
    want = rbwd(dy, x, w, stride=s, padding=p)
    if impl == "fastbp":
        got = benchmark(bwd, dy, x, w, stride=s, padding=p)
    elif impl == "numpy":
        got = benchmark(rbwd, dy, x, w, stride=s, padding=p)
    else:
        tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
        ty = tfwd(tx, tw, tb, stride=s, padding=p)
        grads = benchmark(torch.autograd.grad, ty, (tx, tw, tb), torch.from_numpy(dy),
                          retain_graph=True)
        got = [g.numpy() for g in grads]
    close(got, want)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("layer", LINEAR, ids=[c[0] for c in LINEAR])
def test_linear(benchmark, layer, impl):
    name, n, i, o = layer
    benchmark.group = f"linear-fwd-bwd-{name}"
    x, w, b, dy = (rng.standard_normal(sh, dtype=np.float32) for sh in ((n, i), (o, i), (o,), (n, o)))
    want = [reference.linear(x, w, b), *reference.linear_backward(dy, x, w)]
    if impl == "fastbp":
        got = benchmark(lambda: [fastbp.linear(x, w, b), *fastbp.linear_backward(dy, x, w)])
    elif impl == "numpy":
        got = benchmark(lambda: [reference.linear(x, w, b), *reference.linear_backward(dy, x, w)])
    else:
        tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))

        def run():
            y = torch.nn.functional.linear(tx, tw, tb)
            return [y.detach().numpy(), *(g.numpy() for g in torch.autograd.grad(y, (tx, tw, tb), torch.from_numpy(dy)))]
        got = benchmark(run)
    close(got, want)


@pytest.mark.parametrize("impl", ["fastbp", "numpy"] + (["torch"] if torch is not None else []))
@pytest.mark.parametrize("shape", GEMM, ids=[g[0] for g in GEMM])
def test_gemm(benchmark, shape, impl):
    name, M, N, K = shape
    benchmark.group = f"gemm-{name}"
    a = rng.standard_normal((M, K), dtype=np.float32)
    b = rng.standard_normal((K, N), dtype=np.float32)
    want = a.astype(np.float64) @ b.astype(np.float64)
    if impl == "fastbp":
        got = benchmark(fastbp.matmul, a, b)
    elif impl == "numpy":
        got = benchmark(np.matmul, a, b)
    else:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        got = benchmark(torch.mm, ta, tb).numpy()
    close([got], [want])
