"""Every Tensor op and nn.functional op against PyTorch (values and the gradient of every input:
float64 to 1e-9, float32 to 1e-5 relative) and against float64 central differences, with one
helper in the tinygrad style: helper_test_op(shapes, torch_fn, our_fn)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

import fastbp  # noqa: E402
import fastbp.nn.functional as F  # noqa: E402
from fastbp import Tensor  # noqa: E402

TORCH = {np.float32: torch.float32, np.float64: torch.float64}


def _close(got, want, dtype, what):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, torch {want.shape}"
    rtol = 1e-9 if dtype == np.float64 else 1e-5
    scale = np.abs(want[np.isfinite(want)]).max(initial=1.0)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=what)


def _numerical(fn, arrays, weights, eps=1e-6):
    grads = []
    for a in arrays:
        g = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            old = a[i]
            a[i] = old + eps
            up = np.sum(fn(*[Tensor(x) for x in arrays]).data * weights)
            a[i] = old - eps
            down = np.sum(fn(*[Tensor(x) for x in arrays]).data * weights)
            a[i] = old
            g[i] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


def helper_test_op(shapes, torch_fn, our_fn, atol=None, rtol=None, *, low=None, grad=True,
                   fd=True, dtypes=(np.float64, np.float32), seed=0, make=None):
    """our_fn(*Tensors) against torch_fn(*torch tensors) on random inputs of `shapes` (values
    >= low when given): values, every input's gradient of a random projection, and for float64
    (small inputs) the central differences of our own forward."""
    for dtype in dtypes:
        rng = np.random.default_rng(seed)
        arrays = make(rng, dtype) if make else [rng.standard_normal(s).astype(dtype) for s in shapes]
        if low is not None:
            arrays = [np.abs(a) + low for a in arrays]
        ours = [Tensor(a.copy(), requires_grad=grad) for a in arrays]
        theirs = [torch.tensor(a.copy(), requires_grad=grad) for a in arrays]
        out, ref = our_fn(*ours), torch_fn(*theirs)
        outs, refs = (out, ref) if isinstance(out, tuple) else ((out,), (ref,))
        for o, r in zip(outs, refs):
            assert o.dtype == dtype, f"result dtype {o.dtype}, expected {dtype}"
            _close(o.data, r.detach().numpy(), dtype, "value")
        if not grad:
            continue
        weights = rng.standard_normal(outs[0].shape).astype(dtype)
        (outs[0] * weights).sum().backward()
        (refs[0] * torch.from_numpy(weights)).sum().backward()
        for i, (t, r) in enumerate(zip(ours, theirs)):
            if r.grad is None:
                assert t.grad is None or not np.any(t.grad), f"input {i}: torch has no gradient"
                continue
            assert t.grad.dtype == dtype
            _close(t.grad, r.grad.numpy(), dtype, f"gradient of input {i}")
        if fd and dtype == np.float64 and sum(a.size for a in arrays) <= 400:
            first = lambda *ts: (lambda r: r[0] if isinstance(r, tuple) else r)(our_fn(*ts))  # noqa: E731
            for i, (t, want) in enumerate(zip(ours, _numerical(first, [a.copy() for a in arrays], weights))):
                np.testing.assert_allclose(t.grad, want, rtol=1e-6, atol=1e-6 * (1 + np.abs(want).max(initial=0)),
                                           err_msg=f"finite differences, input {i}")


# --- Tensor ops -------------------------------------------------------------------------------
INDEXES = [(slice(1, None, 2),), (Ellipsis, None, 1), (np.array([2, 0, 2]),),
           (slice(None), np.array([[1, 0], [2, 2]])), (np.array([True, False, True]),),
           (0, slice(None, None, -1)), (np.array([0, 2]), np.array([1, 3]))]


@pytest.mark.parametrize("index", INDEXES, ids=range(len(INDEXES)))
def test_indexing(index):
    tindex = tuple(torch.from_numpy(i) if isinstance(i, np.ndarray) else i for i in index)
    if any(isinstance(i, slice) and i.step and i.step < 0 for i in index):  # torch has no negative steps
        helper_test_op([(3, 5)], lambda x: x[0].flip(0), lambda x: x[index])
        return
    helper_test_op([(3, 5)], lambda x: x[tindex], lambda x: x[index])


def test_boolean_mask_of_tensor_and_scalar_index():
    mask = np.random.default_rng(1).standard_normal((3, 5)) > 0
    helper_test_op([(3, 5)], lambda x: x[torch.from_numpy(mask)], lambda x: x[Tensor(mask)])
    helper_test_op([(3, 5)], lambda x: x[1, 2], lambda x: x[1, 2])


@pytest.mark.parametrize("name,torch_fn,our_fn,shapes", [
    ("cat0", lambda a, b: torch.cat([a, b]), lambda a, b: fastbp.cat([a, b]), [(2, 3), (1, 3)]),
    ("cat-1", lambda a, b: torch.cat([a, b], -1), lambda a, b: fastbp.cat([a, b], -1), [(2, 3), (2, 1)]),
    ("stack", lambda a, b: torch.stack([a, b], 1), lambda a, b: fastbp.stack([a, b], 1), [(2, 3), (2, 3)]),
    ("view", lambda a: a.view(3, -1) * 2, lambda a: a.view(3, -1) * 2, [(2, 3, 5)]),
    ("permute", lambda a: a.permute(2, 0, 1), lambda a: a.permute(2, 0, 1), [(2, 3, 5)]),
    ("transpose", lambda a: a.transpose(0, -1), lambda a: a.transpose(0, -1), [(2, 3, 5)]),
    ("squeeze", lambda a: a.squeeze(), lambda a: a.squeeze(), [(1, 3, 1, 5)]),
    ("squeeze1", lambda a: a.squeeze(2), lambda a: a.squeeze(2), [(1, 3, 1, 5)]),
    ("unsqueeze", lambda a: a.unsqueeze(-1), lambda a: a.unsqueeze(-1), [(3, 5)]),
    ("flatten", lambda a: a.flatten(1), lambda a: a.flatten(1), [(2, 3, 5)]),
    ("expand", lambda a: a.expand(4, 3, -1), lambda a: a.expand(4, 3, -1), [(3, 1)]),
    ("exp", torch.exp, lambda a: a.exp(), [(3, 5)]),
    ("abs", torch.abs, lambda a: a.abs(), [(3, 5)]),
    ("clamp", lambda a: a.clamp(-0.5, 0.7), lambda a: a.clamp(-0.5, 0.7), [(3, 5)]),
    ("clamp-min", lambda a: a.clamp(min=0.1), lambda a: a.clamp(min=0.1), [(3, 5)]),
    ("pow", lambda a: a ** 3, lambda a: a ** 3, [(3, 5)]),
    ("sum-dims", lambda a: a.sum((0, 2), keepdim=True), lambda a: a.sum((0, 2), keepdim=True), [(2, 3, 5)]),
    ("mean-dim", lambda a: a.mean(-1), lambda a: a.mean(-1), [(2, 3, 5)]),
    ("var", lambda a: a.var(1), lambda a: a.var(1), [(2, 3, 5)]),
    ("std-biased", lambda a: a.std(-1, unbiased=False), lambda a: a.std(-1, unbiased=False), [(2, 3, 5)]),
    ("max-all", lambda a: a.max(), lambda a: a.max(), [(3, 5)]),
    ("min-all", lambda a: a.min(), lambda a: a.min(), [(3, 5)]),
    ("where", lambda a, b: torch.where(a > 0, a, b), lambda a, b: fastbp.where(a > 0, a, b), [(3, 5), (5,)]),
    ("masked_fill", lambda a: a.masked_fill(a > 0.5, -1.0), lambda a: a.masked_fill(a > 0.5, -1.0), [(3, 5)]),
    ("matmul-batched", lambda a, b: a @ b, lambda a, b: a @ b, [(2, 1, 3, 5), (4, 5, 7)]),
    ("matmul-2d-b", lambda a, b: a @ b, lambda a, b: a @ b, [(2, 3, 5), (5, 7)]),
    ("matmul-2d-a", lambda a, b: a @ b, lambda a, b: a @ b, [(3, 5), (2, 5, 7)]),
    ("matmul-vec", lambda a, b: a @ b, lambda a, b: a @ b, [(5,), (2, 5, 3)]),
    ("matmul-mat-vec", lambda a, b: a @ b, lambda a, b: a @ b, [(2, 3, 5), (5,)]),
])
def test_tensor_op(name, torch_fn, our_fn, shapes):
    helper_test_op(shapes, torch_fn, our_fn)


@pytest.mark.parametrize("name,torch_fn,our_fn", [
    ("log", torch.log, lambda a: a.log()), ("sqrt", torch.sqrt, lambda a: a.sqrt()),
    ("pow-frac", lambda a: a ** 1.5, lambda a: a ** 1.5),
    ("pow-tensor", lambda a: a ** (a * 0.5), lambda a: a.pow(a * 0.5)),
])
def test_positive_op(name, torch_fn, our_fn):
    helper_test_op([(3, 5)], torch_fn, our_fn, low=0.3)


@pytest.mark.parametrize("dim,keepdim", [(0, False), (1, True), (-1, False)])
@pytest.mark.parametrize("which", ["max", "min"])
def test_max_min_dim_values_and_indices(dim, keepdim, which):
    helper_test_op([(4, 5)], lambda a: getattr(a, which)(dim, keepdim)[0],
                   lambda a: getattr(a, which)(dim, keepdim).values)
    x = np.random.default_rng(0).integers(0, 3, (4, 5)).astype(np.float64)  # ties: first wins
    ours, theirs = getattr(Tensor(x), which)(dim, keepdim), getattr(torch.from_numpy(x), which)(dim, keepdim)
    np.testing.assert_array_equal(ours.indices.data, theirs.indices.numpy())
    np.testing.assert_array_equal(Tensor(x).argmax(dim, keepdim).data, torch.from_numpy(x).argmax(dim, keepdim).numpy())
    assert Tensor(x).argmax().item() == torch.from_numpy(x).argmax().item()


def test_batched_matmul_runs_on_fastbp_gemm(monkeypatch):
    calls = []
    real = fastbp.functional.batched_matmul
    monkeypatch.setattr(fastbp.functional, "batched_matmul", lambda a, b: calls.append(a.shape) or real(a, b))
    a = Tensor(np.ones((64, 3, 4)), requires_grad=True)
    (a @ Tensor(np.ones((64, 4, 2)), requires_grad=True)).sum().backward()
    assert len(calls) == 3  # forward and both gradients: one call each for all 64 products


# --- nn.functional ----------------------------------------------------------------------------
@pytest.mark.parametrize("pad", [(2, 0), (1, 2, 0, 1), (-1, 2), (0, 0, 1, 1, 1, 0)])
def test_pad(pad):
    helper_test_op([(2, 3, 5)], lambda x: TF.pad(x, pad, value=0.5), lambda x: F.pad(x, pad, value=0.5))


AVG_POOL = [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
            dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
            dict(kernel_size=3, stride=2, ceil_mode=True),
            dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)]


@pytest.mark.parametrize("args", AVG_POOL, ids=range(len(AVG_POOL)))
def test_avg_pool(args):
    helper_test_op([(2, 3, 8)], lambda x: TF.avg_pool1d(x, **args), lambda x: F.avg_pool1d(x, **args))
    args2 = dict(args, kernel_size=(args["kernel_size"], 2))
    helper_test_op([(2, 2, 7, 6)], lambda x: TF.avg_pool2d(x, **args2), lambda x: F.avg_pool2d(x, **args2))
    helper_test_op([(3, 7, 6)], lambda x: TF.avg_pool2d(x, **args), lambda x: F.avg_pool2d(x, **args))


def test_avg_pool2d_divisor_override_and_batch_edges():
    helper_test_op([(1, 2, 5, 5)], lambda x: TF.avg_pool2d(x, 2, divisor_override=3),
                   lambda x: F.avg_pool2d(x, 2, divisor_override=3))
    helper_test_op([(0, 2, 5, 5)], lambda x: TF.avg_pool2d(x, 2), lambda x: F.avg_pool2d(x, 2))


@pytest.mark.parametrize("size", [1, 3, 4, (2, None), (5, 3)])
def test_adaptive_avg_pool(size):
    helper_test_op([(2, 3, 7, 8)], lambda x: TF.adaptive_avg_pool2d(x, size), lambda x: F.adaptive_avg_pool2d(x, size))
    if not isinstance(size, tuple):
        helper_test_op([(2, 3, 11)], lambda x: TF.adaptive_avg_pool1d(x, size), lambda x: F.adaptive_avg_pool1d(x, size))


ACTIVATIONS = [
    ("sigmoid", torch.sigmoid, F.sigmoid), ("tanh", torch.tanh, F.tanh),
    ("gelu", TF.gelu, F.gelu),
    ("gelu-tanh", lambda x: TF.gelu(x, approximate="tanh"), lambda x: F.gelu(x, approximate="tanh")),
    ("leaky_relu", lambda x: TF.leaky_relu(x, 0.2), lambda x: F.leaky_relu(x, 0.2)),
    ("elu", lambda x: TF.elu(x, 0.7), lambda x: F.elu(x, 0.7)),
    ("softplus", TF.softplus, F.softplus),
    ("softplus-beta", lambda x: TF.softplus(x, beta=3, threshold=2), lambda x: F.softplus(x, beta=3, threshold=2)),
    ("softmax", lambda x: TF.softmax(x, 1), lambda x: F.softmax(x, 1)),
    ("softmax-1", lambda x: TF.softmax(x, -1), lambda x: F.softmax(x, -1)),
    ("log_softmax", lambda x: TF.log_softmax(x, 0), lambda x: F.log_softmax(x, 0)),
]


@pytest.mark.parametrize("name,torch_fn,our_fn", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation(name, torch_fn, our_fn):
    helper_test_op([(3, 4, 5)], torch_fn, our_fn)
    x = np.array([[-800.0, -30.0, -1e-3, 0.0, 1e-3, 30.0, 800.0]] * 2)  # extremes: no overflow
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        _close(our_fn(Tensor(x)).data, torch_fn(torch.from_numpy(x)).numpy(), np.float64, name)


@pytest.mark.parametrize("shape", [(1, 4, 5), (0, 4, 5), (3, 4), (2, 4, 3, 5)])
@pytest.mark.parametrize("options", ["affine", "plain"])
def test_batch_norm_training_and_eval(shape, options):
    C = shape[1]
    affine = options == "affine"

    def make(rng, dtype):
        out = [rng.standard_normal(shape).astype(dtype)]
        return out + ([rng.standard_normal(C).astype(dtype), rng.standard_normal(C).astype(dtype)] if affine else [])
    if np.prod(shape) // C > 1:
        for dtype in (np.float64, np.float32):
            stats = {}
            for lib in ("ours", "torch"):
                stats[lib] = [np.linspace(-1, 1, C).astype(dtype), np.linspace(0.5, 2, C).astype(dtype)]
            helper_test_op(
                None, lambda x, *wb: TF.batch_norm(x, *[torch.from_numpy(s) for s in stats["torch"]], *wb,
                                                   training=True, momentum=0.3, eps=1e-3),
                lambda x, *wb: F.batch_norm(x, *stats["ours"], *wb, training=True, momentum=0.3, eps=1e-3),
                make=make, dtypes=(dtype,), fd=False)
            for a, b in zip(stats["ours"], stats["torch"]):
                _close(a, b, dtype, "running statistics")
        helper_test_op(None, lambda x, *wb: TF.batch_norm(x, None, None, *wb, training=True),
                       lambda x, *wb: F.batch_norm(x, None, None, *wb, training=True), make=make)
    rm, rv = np.linspace(-1, 1, C), np.linspace(0.5, 2, C)
    helper_test_op(None, lambda x, *wb: TF.batch_norm(x, torch.from_numpy(rm).to(x.dtype),
                                                      torch.from_numpy(rv).to(x.dtype), *wb),
                   lambda x, *wb: F.batch_norm(x, rm.astype(x.dtype), rv.astype(x.dtype), *wb), make=make)


def test_batch_norm_needs_two_values_per_channel():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(Tensor(np.ones((1, 3))), None, None, training=True)


def test_batch_norm_unaligned_and_strided_input_and_gradient():
    """The per-channel kernels read dense aligned arrays: other layouts are copied first, with
    the same results."""
    from strategies import _unaligned
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 5, 4, 6)).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)

    def run(xa, ga, training):
        t = Tensor(xa, requires_grad=True)
        rm, rv = np.zeros(5, np.float32), np.ones(5, np.float32)
        y = F.batch_norm(t, rm, rv, training=training)
        y.backward(Tensor(ga))
        return y.data, t.grad
    for training in (True, False):
        want = run(x, g, training)
        for xa, ga in ((_unaligned(x), _unaligned(g)), (x[:, :, :, ::-1].copy()[:, :, :, ::-1], g.T.copy().T)):
            for got, ref in zip(run(xa, ga, training), want):
                np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_threads_and_offsets(dtype):
    """Channels far from zero (mean 1e4, std 1) still normalise to torch's float64 result, and an
    input large enough for the per-channel kernels to run threaded gives the same bits on 1 and 2
    threads."""
    rng = np.random.default_rng(3)
    x = (1e4 + rng.standard_normal((9, 40, 13, 17))).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    w, b = rng.standard_normal(40).astype(dtype), rng.standard_normal(40).astype(dtype)

    def step():
        xt, wt = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
        bt = Tensor(b, requires_grad=True)
        y = F.batch_norm(xt, None, None, wt, bt, training=True)
        (y * Tensor(g)).sum().backward()
        return y.data, xt.grad, wt.grad, bt.grad

    with fastbp.threads(1):
        serial = step()
    with fastbp.threads(2):
        for got, want in zip(step(), serial):
            assert np.array_equal(got, want)
    x64 = torch.from_numpy(x.astype(np.float64)).requires_grad_()
    w64, b64 = (torch.from_numpy(a.astype(np.float64)).requires_grad_() for a in (w, b))
    y64 = TF.batch_norm(x64, None, None, w64, b64, training=True)
    y64.backward(torch.from_numpy(g.astype(np.float64)))
    for got, want, what in zip(serial, (y64, x64.grad, w64.grad, b64.grad), ("y", "dx", "dw", "db")):
        _close(got, want.detach().numpy(), dtype, what)


@pytest.mark.parametrize("normalized", [(5,), (4, 5)])
def test_layer_norm(normalized):
    def make(rng, dtype):
        return [rng.standard_normal((2, 3, 4, 5)).astype(dtype),
                rng.standard_normal(normalized).astype(dtype), rng.standard_normal(normalized).astype(dtype)]
    helper_test_op(None, lambda x, w, b: TF.layer_norm(x, normalized, w, b, eps=1e-4),
                   lambda x, w, b: F.layer_norm(x, normalized, w, b, eps=1e-4), make=make)
    helper_test_op([(3, 5)], lambda x: TF.layer_norm(x, (5,)), lambda x: F.layer_norm(x, (5,)))


def test_dropout_training_eval_and_seed():
    x = Tensor(np.ones((200, 50)), requires_grad=True)
    fastbp.manual_seed(3)
    y = F.dropout(x, 0.3)
    kept = y.data != 0
    assert abs(kept.mean() - 0.7) < 0.02 and np.allclose(y.data[kept], 1 / 0.7)
    y.backward(np.full(y.shape, 2.0))
    np.testing.assert_allclose(x.grad, np.where(kept, 2 / 0.7, 0))
    fastbp.manual_seed(3)
    np.testing.assert_array_equal(F.dropout(x, 0.3).data, y.data)  # reseeded: the same mask
    assert F.dropout(x, 0.3, training=False) is x
    np.testing.assert_array_equal(F.dropout(x, 1.0).data, 0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout(x, 1.5)
    m = fastbp.nn.Dropout(0.5).eval()
    assert m(x) is x


@pytest.mark.parametrize("case", ["plain", "bool-mask", "float-mask", "causal", "scale"])
def test_scaled_dot_product_attention(case):
    rng = np.random.default_rng(5)
    mask = {"bool-mask": rng.random((3, 4)) > 0.3, "float-mask": rng.standard_normal((3, 4))}.get(case)
    if mask is not None and mask.dtype == bool:
        mask[:, 0] = True  # every query attends somewhere
    kw = dict(is_causal=True) if case == "causal" else dict(scale=0.3) if case == "scale" else {}
    tmask = None if mask is None else torch.from_numpy(mask)
    cast = (lambda q: tmask.to(q.dtype)) if case == "float-mask" else (lambda q: tmask)
    helper_test_op([(2, 2, 3, 5), (2, 2, 4, 5), (2, 2, 4, 3)] if case != "causal" else [(2, 3, 5), (2, 3, 5), (2, 3, 3)],
                   lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, attn_mask=cast(q), **kw),
                   lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask, **kw))


LOSSES = [
    ("mse", [(3, 5), (3, 5)], TF.mse_loss, F.mse_loss),
    ("l1", [(3, 5), (3, 5)], TF.l1_loss, F.l1_loss),
    ("smooth_l1", [(3, 5), (3, 5)], lambda a, b, **k: TF.smooth_l1_loss(a, b, beta=0.7, **k),
     lambda a, b, **k: F.smooth_l1_loss(a, b, beta=0.7, **k)),
    ("bce_logits", [(3, 5), (3, 5)], TF.binary_cross_entropy_with_logits, F.binary_cross_entropy_with_logits),
    ("gaussian_nll", [(3, 5), (3, 5), (3, 5)], TF.gaussian_nll_loss, F.gaussian_nll_loss),
    ("gaussian_nll-full-homo", [(3, 5), (3, 5), (3, 1)], lambda a, b, v, **k: TF.gaussian_nll_loss(a, b, v, full=True, **k),
     lambda a, b, v, **k: F.gaussian_nll_loss(a, b, v, full=True, **k)),
    ("gaussian_nll-var-dim", [(3, 5), (3, 5), (3,)], TF.gaussian_nll_loss, F.gaussian_nll_loss),
]


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name,shapes,torch_fn,our_fn", LOSSES, ids=[c[0] for c in LOSSES])
def test_loss(name, shapes, torch_fn, our_fn, reduction):
    def make(rng, dtype):
        arrays = [rng.standard_normal(s).astype(dtype) for s in shapes]
        if name.startswith("bce"):
            arrays[1] = rng.random(shapes[1]).astype(dtype)
        if name.startswith("gaussian"):
            arrays[2] = (np.abs(arrays[2]) + 0.2).astype(dtype)
        return arrays
    helper_test_op(None, lambda *a: torch_fn(*a, reduction=reduction), lambda *a: our_fn(*a, reduction=reduction), make=make)


def test_bce_weights_and_gaussian_eps():
    w, pw = np.linspace(0.5, 1.5, 5), np.linspace(1, 3, 5)
    helper_test_op([(3, 5), (3, 5)], lambda x, t: TF.binary_cross_entropy_with_logits(x, t, torch.from_numpy(w), pos_weight=torch.from_numpy(pw)),
                   lambda x, t: F.binary_cross_entropy_with_logits(x, t, w, pos_weight=pw))
    helper_test_op(None, lambda x, t, v: TF.gaussian_nll_loss(x, t, v, eps=0.5),
                   lambda x, t, v: F.gaussian_nll_loss(x, t, v, eps=0.5),
                   make=lambda rng, d: [rng.standard_normal((4, 3)).astype(d), rng.standard_normal((4, 3)).astype(d),
                                        rng.random((4, 3)).astype(d)], fd=False)  # var below eps: clamped
    with pytest.raises(ValueError, match="negative"):
        F.gaussian_nll_loss(Tensor(np.ones(3)), Tensor(np.ones(3)), Tensor(-np.ones(3)))
    with pytest.raises(ValueError, match="incorrect size"):
        F.gaussian_nll_loss(Tensor(np.ones((3, 2))), Tensor(np.ones((3, 2))), Tensor(np.ones(2)))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("variant", ["plain", "weight", "ignore", "spatial"])
def test_nll_and_cross_entropy(reduction, variant):
    rng = np.random.default_rng(1)
    shape, tshape = ((4, 5, 3), (4, 3)) if variant == "spatial" else ((6, 5), (6,))
    target = rng.integers(0, 5, tshape)
    kw = {}
    if variant == "weight":
        kw["weight"] = np.linspace(0.2, 2, 5)
    if variant == "ignore":
        target.flat[1] = 2
        kw["ignore_index"] = 2
    tkw = lambda x: {k: torch.from_numpy(v).to(x.dtype) if isinstance(v, np.ndarray) else v  # noqa: E731
                     for k, v in kw.items()}
    helper_test_op([shape], lambda x: TF.nll_loss(TF.log_softmax(x, 1), torch.from_numpy(target), reduction=reduction, **tkw(x)),
                   lambda x: F.nll_loss(F.log_softmax(x, 1), target, reduction=reduction, **kw))
    if not kw:
        helper_test_op([shape], lambda x: TF.cross_entropy(x, torch.from_numpy(target), reduction=reduction),
                       lambda x: F.cross_entropy(x, target, reduction=reduction))


@pytest.mark.parametrize("op", ["conv_transpose1d", "conv_transpose2d"])
def test_conv_transpose_tensors(op):
    nd = int(op[-2])
    xs, ws = ((2, 4, 5), (4, 3, 3)) if nd == 1 else ((2, 4, 3, 4), (4, 3, 3, 2))
    kw = dict(stride=2, padding=1, output_padding=1, groups=1, dilation=1)
    helper_test_op([xs, ws, (3,)], lambda x, w, b: getattr(TF, op)(x, w, b, **kw),
                   lambda x, w, b: getattr(F, op)(x, w, b, **kw))


# --- autograd ---------------------------------------------------------------------------------
def test_retain_graph_and_second_backward():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad, [4.0, 8.0])
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()
    z = (x + 3).sum()  # nothing saved: a second backward is allowed
    z.backward()
    z.backward()


def test_hooks():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    seen, after = [], []
    h = x.register_hook(lambda g: seen.append(g.data.copy()) or g * 10)
    x.register_post_accumulate_grad_hook(lambda t: after.append(t.grad.copy()))
    mid = x * 2
    mid.register_hook(lambda g: g + 1)
    mid.sum().backward()
    np.testing.assert_allclose(seen[0], [4.0, 4.0])  # (1 + 1) * 2
    np.testing.assert_allclose(x.grad, [40.0, 40.0])
    np.testing.assert_allclose(after[0], [40.0, 40.0])
    h.remove()
    (x * 1).sum().backward()
    np.testing.assert_allclose(x.grad, [41.0, 41.0])
    with pytest.raises(RuntimeError, match="non-leaf"):
        mid.register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(RuntimeError, match="require"):
        Tensor(np.ones(2)).register_hook(lambda g: g)
