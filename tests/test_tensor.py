"""fastbp.Tensor autograd and fastbp.nn: gradients against float64 central differences,
accumulation and no_grad semantics, dtype rules, Module bookkeeping. No torch needed."""
import numpy as np
import pytest

import fastbp
import fastbp.nn.functional as F
from fastbp import Tensor, nn, no_grad


def numerical_grads(fn, arrays, weights, eps=1e-6):
    """Central differences of sum(fn(*arrays) * weights) w.r.t. every float array."""
    def loss():
        out = fn(*[Tensor(a) for a in arrays])
        return float(np.sum(out.data * weights))

    grads = []
    for a in arrays:
        if not np.issubdtype(a.dtype, np.floating):
            grads.append(None)
            continue
        g = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            old = a[i]
            a[i] = old + eps
            up = loss()
            a[i] = old - eps
            down = loss()
            a[i] = old
            g[i] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


def check_grads(fn, *arrays, rtol=1e-5, atol=1e-7, seed=0):
    """fn's autograd gradients of a random projection of its output match finite differences."""
    arrays = [np.array(a) for a in arrays]
    tensors = [Tensor(a, requires_grad=np.issubdtype(a.dtype, np.floating)) for a in arrays]
    out = fn(*tensors)
    weights = np.random.default_rng(seed).standard_normal(out.shape)
    (out * weights).sum().backward()
    expected = numerical_grads(fn, arrays, weights)
    for t, want in zip(tensors, expected):
        if want is not None:
            assert t.grad.shape == t.shape and t.grad.dtype == t.dtype
            np.testing.assert_allclose(t.grad, want, rtol=rtol, atol=atol)


def rand(*shape, seed=None):
    rng = np.random.default_rng(seed if seed is not None else sum(shape) + len(shape))
    return rng.standard_normal(shape)


# --- Tensor arithmetic ------------------------------------------------------------------------
BROADCAST_PAIRS = [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 3), (4, 1)), ((5,), ()),
                   ((1, 3), (2, 1))]


@pytest.mark.parametrize("shapes", BROADCAST_PAIRS)
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_binary_op_grads(op, shapes):
    fns = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b,
           "mul": lambda a, b: a * b, "div": lambda a, b: a / b}
    a, b = rand(*shapes[0], seed=1), rand(*shapes[1], seed=2)
    if op == "div":
        b = np.abs(b) + 0.5
    check_grads(fns[op], a, b)
    check_grads(lambda a, b: fns[op](b, a), a, b)


@pytest.mark.parametrize("fn", [
    lambda a: 2.5 + a, lambda a: a + 2.5, lambda a: 3 - a, lambda a: a - 3, lambda a: 0.5 * a,
    lambda a: a * 2, lambda a: 2.0 / a, lambda a: a / 4.0, lambda a: -a, lambda a: a ** 3,
    lambda a: a ** 2.5, lambda a: a.exp(), lambda a: a.log(), lambda a: np.ones(3) * a,
    lambda a: np.full((2, 1, 3), 2.0) - a,
], ids=range(15))
def test_unary_and_scalar_grads(fn):
    check_grads(fn, np.abs(rand(4, 3)) + 0.5)


@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((4,), (4, 5)),
                                    ((3, 4), (4,)), ((4,), (4,)), ((2, 1, 3, 4), (5, 4, 2))])
def test_matmul_grads(shapes):
    check_grads(lambda a, b: a @ b, rand(*shapes[0], seed=3), rand(*shapes[1], seed=4))
    check_grads(lambda a: a @ np.ones(shapes[1]), rand(*shapes[0]))  # __matmul__ with ndarray


@pytest.mark.parametrize("axis,keepdims", [(None, False), (0, False), (1, True), (-1, False),
                                           ((0, 2), False), ((0, -1), True)])
def test_sum_mean_grads(axis, keepdims):
    x = rand(2, 3, 4)
    check_grads(lambda a: a.sum(axis=axis, keepdims=keepdims), x)
    check_grads(lambda a: a.mean(axis=axis, keepdims=keepdims), x)
    assert np.allclose(Tensor(x).mean(axis=axis, keepdims=keepdims).data,
                       x.mean(axis=axis, keepdims=keepdims))


def test_reshape_transpose_grads():
    x = rand(2, 3, 4)
    check_grads(lambda a: a.reshape(4, 6) * np.arange(24.0).reshape(4, 6), x)
    check_grads(lambda a: a.reshape((6, -1)), x)
    check_grads(lambda a: a.T, rand(3, 5))
    check_grads(lambda a: a.permute(1, 2, 0), x)
    check_grads(lambda a: a.transpose(0, -1), x)
    assert Tensor(rand(3, 5)).T.shape == (5, 3)


def test_dtype_rules():
    assert Tensor([1.0, 2.0]).dtype == np.float32
    assert Tensor(3.5).dtype == np.float32
    assert Tensor([1, 2]).dtype == np.int64
    assert Tensor(np.zeros(2, np.float64)).dtype == np.float64
    t = Tensor(np.ones(3, np.float32), requires_grad=True)
    for y in (t + 2.5, 2.5 - t, t * 2, t / 3.0, 1.0 / t, t * np.float64(2.0), t ** 2):
        assert y.dtype == np.float32
    y = t * np.ones(3, np.float64)  # ndarrays promote as numpy does; the grad keeps t's dtype
    assert y.dtype == np.float64
    y.sum().backward()
    assert t.grad.dtype == np.float32
    with pytest.raises(RuntimeError, match="floating"):
        Tensor(np.arange(3), requires_grad=True)


def test_properties_and_repr():
    t = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert t.shape == (2, 3) and t.ndim == 2 and t.dtype == np.float64 and len(t) == 2
    assert t.numpy() is t.data
    assert Tensor([[4.0]]).item() == 4.0
    with pytest.raises(ValueError):
        t.item()
    d = t.detach()
    assert not d.requires_grad and d.data is t.data
    assert "requires_grad=True" in repr(t)
    assert "grad_fn" in repr(t * 2)


# --- autograd semantics -----------------------------------------------------------------------
def test_grad_accumulates_across_backward_calls():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, [2, 4, 6])
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad, [5, 7, 9])
    x.grad = None
    x.sum().backward()
    np.testing.assert_allclose(x.grad, [1, 1, 1])


def test_shared_subexpression_and_nonleaf_grad():
    x = Tensor([2.0], requires_grad=True)
    h = x * x  # used twice: dy/dx = d(h + h*x)/dx = 2x + 3x^2
    y = h + h * x
    y.backward()
    np.testing.assert_allclose(x.grad, [2 * 2 + 3 * 4])
    assert h.grad is None and not h.is_leaf and x.is_leaf


def test_grad_does_not_alias_user_array():
    x = Tensor([1.0, 2.0], requires_grad=True)
    g = np.array([1.0, 1.0])
    (x * 1).backward(g)
    x.grad += 1
    np.testing.assert_array_equal(g, [1, 1])


def test_backward_on_non_scalar_needs_grad():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="single-element"):
        y.backward()
    y.backward(np.full((2, 3), 0.5))
    np.testing.assert_allclose(x.grad, np.ones((2, 3)))
    with pytest.raises(RuntimeError, match="shape"):
        y.backward(np.ones(3))


def test_backward_without_grad_requirement_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (Tensor([1.0]) * 2).backward()


def test_no_grad_context_and_decorator():
    x = Tensor([1.0], requires_grad=True)
    with no_grad():
        y = x * 2
        with no_grad():
            pass
        z = x * 3  # still inside the outer block
    assert not y.requires_grad and not z.requires_grad
    assert (x * 2).requires_grad

    @no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad and (x * 2).requires_grad
    with pytest.raises(ZeroDivisionError):
        with no_grad():
            1 / 0
    assert (x * 2).requires_grad  # restored after an exception


def test_only_needed_grads_are_requested(monkeypatch):
    calls = []
    real = fastbp.functional.conv2d_backward

    def spy(*args, **kwargs):
        calls.append({k: kwargs[k] for k in ("input_grad", "weight_grad", "bias_grad")})
        return real(*args, **kwargs)

    monkeypatch.setattr(fastbp.functional, "conv2d_backward", spy)
    x = Tensor(rand(2, 3, 5, 5))
    w = Tensor(rand(4, 3, 3, 3), requires_grad=True)
    F.conv2d(x, w).sum().backward()
    F.conv2d(x, w, Tensor(rand(4))).sum().backward()
    assert calls == [dict(input_grad=False, weight_grad=True, bias_grad=False)] * 2


# --- nn.functional gradients (float64 finite differences) -------------------------------------
@pytest.mark.parametrize("opts", [dict(), dict(stride=2, padding=1), dict(padding="same", dilation=2),
                                  dict(groups=2, padding=2, stride=3), dict(padding="valid")])
@pytest.mark.parametrize("bias", [True, False])
def test_conv1d_grads(opts, bias):
    args = [rand(2, 4, 11), rand(6, 4 // opts.get("groups", 1), 3)] + ([rand(6)] if bias else [])
    check_grads(lambda x, w, *b: F.conv1d(x, w, *b, **opts), *args)


@pytest.mark.parametrize("opts", [dict(), dict(stride=(2, 1), padding=1), dict(padding="same", dilation=2),
                                  dict(groups=3, padding=(1, 2), stride=2)])
@pytest.mark.parametrize("bias", [True, False])
def test_conv2d_grads(opts, bias):
    args = [rand(2, 3, 6, 5), rand(6, 3 // opts.get("groups", 1), 3, 2)] + ([rand(6)] if bias else [])
    check_grads(lambda x, w, *b: F.conv2d(x, w, *b, **opts), *args)


@pytest.mark.parametrize("xshape", [(5, 4), (2, 3, 4)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_grads(xshape, bias):
    args = [rand(*xshape), rand(3, 4)] + ([rand(3)] if bias else [])
    check_grads(lambda x, w, *b: F.linear(x, w, *b), *args)


def test_relu_flatten_grads():
    check_grads(F.relu, rand(3, 7) + 0.01)  # values away from the kink
    check_grads(lambda x: F.flatten(x), rand(2, 3, 4))
    check_grads(lambda x: F.flatten(x, 0, 1), rand(2, 3, 4))
    assert F.flatten(Tensor(rand(2, 3, 4, 5)), 1, 2).shape == (2, 12, 5)
    assert F.flatten(Tensor(np.zeros((0, 16, 64))), 1).shape == (0, 1024)  # as torch, batch 0
    assert F.flatten(Tensor(np.zeros((3, 0, 2))), 1).shape == (3, 0)


@pytest.mark.parametrize("args", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                  dict(kernel_size=3, stride=1), dict(kernel_size=2, dilation=2)])
def test_max_pool1d_grads(args):
    check_grads(lambda x: F.max_pool1d(x, **args), rand(2, 3, 9))


@pytest.mark.parametrize("args", [dict(kernel_size=2), dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0)),
                                  dict(kernel_size=3, stride=1, padding=1), dict(kernel_size=2, stride=1)])
def test_max_pool2d_grads(args):
    check_grads(lambda x: F.max_pool2d(x, **args), rand(2, 2, 7, 6))


def test_max_pool_ties_go_to_first_element():
    x = Tensor(np.zeros((1, 1, 4, 4)), requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    want = np.zeros((4, 4))
    want[::2, ::2] = 1
    np.testing.assert_array_equal(x.grad[0, 0], want)
    with pytest.raises(ValueError, match="half"):
        F.max_pool2d(x, 2, padding=2)


def test_max_pool_values():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(F.max_pool2d(Tensor(x), 2).data[0, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(F.max_pool1d(Tensor(x[0]), 3, 1, 1).data[0, 0], [1, 2, 3, 3])


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_log_softmax_grads(dim):
    check_grads(lambda x: F.log_softmax(x, dim), rand(3, 5))
    out = F.log_softmax(Tensor(rand(3, 5) * 50), dim).data
    np.testing.assert_allclose(np.exp(out).sum(axis=dim), 1.0)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_grads(reduction):
    target = np.array([0, 3, 1, 3])
    check_grads(lambda x: F.cross_entropy(x, target, reduction=reduction), rand(4, 5))
    check_grads(lambda x: F.cross_entropy(x, np.array([[0, 2], [1, 1]]), reduction=reduction),
                rand(2, 3, 2))  # (N, C, d1) input


def test_cross_entropy_value_and_errors():
    x = rand(4, 5)
    target = np.array([0, 3, 1, 3])
    logp = x - np.log(np.exp(x).sum(1, keepdims=True))
    want = -logp[np.arange(4), target].mean()
    np.testing.assert_allclose(F.cross_entropy(Tensor(x), Tensor(target)).item(), want)
    with pytest.raises(IndexError, match="5"):
        F.cross_entropy(Tensor(x), np.array([0, 5, 1, 1]))
    with pytest.raises(TypeError, match="integer"):
        F.cross_entropy(Tensor(x), np.zeros(4))
    with pytest.raises(ValueError, match="shape"):
        F.cross_entropy(Tensor(x), np.zeros(3, int))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_grads(reduction):
    check_grads(lambda x, t: F.mse_loss(x, t, reduction=reduction), rand(3, 4, seed=1), rand(3, 4, seed=2))
    with pytest.raises(ValueError, match="shape"):
        F.mse_loss(Tensor(rand(3, 1)), Tensor(rand(3)))


# --- Module bookkeeping -----------------------------------------------------------------------
class TwoLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv1d(2, 3, 3), nn.ReLU())
        self.head = nn.Linear(3, 2, bias=False)
        self.scale = 2.0

    def forward(self, x):
        return self.head(self.features(x).mean(axis=2)) * self.scale


def test_module_registration_and_names():
    m = TwoLayer()
    names = [n for n, _ in m.named_parameters()]
    assert names == ["features.0.weight", "features.0.bias", "head.weight"]
    assert list(m.state_dict()) == names
    assert len(list(m.parameters())) == 3 and m.head.bias is None
    assert all(isinstance(p, nn.Parameter) and p.dtype == np.float32 for p in m.parameters())
    sd = m.state_dict()
    sd["head.weight"][...] = 7  # a copy
    assert not np.any(m.head.weight.data == 7)
    assert "(features): Sequential" in repr(m) and "Linear(in_features=3" in repr(m)
    assert m.train() is m and m.features[1].training
    m.eval()
    assert not m.training and not m.features[0].training


def test_module_forward_backward_zero_grad_and_dtype():
    m = TwoLayer()
    x = Tensor(rand(4, 2, 6).astype(np.float32))
    m(x).sum().backward()
    assert all(p.grad is not None and p.grad.dtype == np.float32 for p in m.parameters())
    m.zero_grad()
    assert all(p.grad is None for p in m.parameters())
    assert m.double() is m and m.head.weight.dtype == np.float64
    assert m(Tensor(rand(4, 2, 6))).dtype == np.float64
    m.to(np.float32)
    assert m.features[0].bias.dtype == np.float32


def test_init_matches_torch_bounds_and_seed():
    nn.manual_seed(0)
    a = nn.Conv2d(8, 4, 3)
    nn.manual_seed(0)
    b = nn.Conv2d(8, 4, 3)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    lin = nn.Linear(400, 300)
    bound = 1 / np.sqrt(400)
    assert np.abs(lin.weight.data).max() <= bound and np.abs(lin.bias.data).max() <= bound
    assert abs(lin.weight.data.std() - bound / np.sqrt(3)) < 0.02 * bound
    g = nn.Conv1d(4, 6, 5, groups=2, rng=np.random.default_rng(1))
    assert g.weight.shape == (6, 2, 5) and np.abs(g.weight.data).max() <= 1 / np.sqrt(10)
    with pytest.raises(ValueError, match="divisible"):
        nn.Conv2d(3, 4, 3, groups=2)


def test_load_state_dict_errors_and_atomicity():
    m = TwoLayer()
    before = m.state_dict()
    sd = m.state_dict()
    sd["features.0.weight"] = sd["features.0.weight"].astype(np.float64) + 1
    del sd["head.weight"]
    sd["extra.bias"] = np.zeros(2)
    with pytest.raises(RuntimeError) as err:
        m.load_state_dict(sd)
    assert "head.weight" in str(err.value) and "extra.bias" in str(err.value)
    np.testing.assert_array_equal(m.features[0].weight.data, before["features.0.weight"])
    res = m.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["head.weight"] and res.unexpected_keys == ["extra.bias"]
    assert m.features[0].weight.dtype == np.float32
    np.testing.assert_allclose(m.features[0].weight.data, before["features.0.weight"] + 1)
    sd["features.0.bias"] = np.zeros(4)
    with pytest.raises(RuntimeError, match=r"features\.0\.bias.*\(4,\).*\(3,\)"):
        m.load_state_dict(sd, strict=False)


def test_relu_propagates_nan_and_its_gradient_is_finite():
    x = Tensor(np.array([np.nan, -1.0, 2.0, 0.0], np.float32), requires_grad=True)
    y = F.relu(x)
    np.testing.assert_array_equal(y.data, [np.nan, 0.0, 2.0, 0.0])
    y.backward(np.ones(4, np.float32))
    np.testing.assert_array_equal(x.grad, [1.0, 0.0, 1.0, 0.0])  # as torch's threshold_backward


def test_pow_zero_exponent_has_zero_gradient():
    x = Tensor(np.array([0.0, 1.5, -2.0]), requires_grad=True)
    y = x ** 0
    np.testing.assert_array_equal(y.data, [1.0, 1.0, 1.0])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 0.0])


def test_flatten_rejects_out_of_range_dims():
    with pytest.raises(IndexError, match="out of range"):
        F.flatten(Tensor(np.ones(5)), 1)
    with pytest.raises(IndexError, match="out of range"):
        F.flatten(Tensor(np.ones((2, 3))), -3)
    with pytest.raises(IndexError, match="out of range"):
        F.flatten(Tensor(np.ones((2, 3))), 0, 2)
    with pytest.raises(IndexError):
        nn.Flatten()(Tensor(np.ones(5)))  # unbatched 1-d input: dim 1 does not exist
    assert F.flatten(Tensor(np.ones((2, 3))), -2, -1).shape == (6,)
    assert F.flatten(Tensor(3.0), 0).shape == (1,) and F.flatten(Tensor(3.0), -1, 0).shape == (1,)


def test_dtype_promotion_like_torch():
    i = Tensor([1, 2])
    f32 = Tensor(np.ones(2, np.float32), requires_grad=True)
    assert (i + 0.5).dtype == np.float32 and (0.5 * i).dtype == np.float32
    assert (i / 2).dtype == np.float32 and (2 / i).dtype == np.float32 and (i / i).dtype == np.float32
    assert (i + 2).dtype == np.int64 and (i ** 2).dtype == np.int64 and (i ** 0.5).dtype == np.float32
    assert (Tensor([True, False]) + 3).dtype == np.int64
    assert (i + f32).dtype == np.float32  # the floating operand's dtype, not numpy's float64
    zero64 = np.array(2.0)  # a 0-d array of the same category does not promote
    for y in (f32 + zero64, zero64 - f32, f32 * zero64, zero64 / f32, f32 * Tensor(zero64),
              f32 ** np.float64(2), f32 ** zero64):
        assert y.dtype == np.float32
    assert (Tensor(np.ones(2, np.int32)) + Tensor(np.array(1.0))).dtype == np.float64  # higher category
    assert (Tensor(np.ones(2, np.int32)) + np.array(3)).dtype == np.int32
    assert (Tensor(np.float32(1.0)) + zero64).dtype == np.float64  # both 0-d: ordinary promotion
    y = f32 ** np.float64(3)
    y.sum().backward()
    assert f32.grad.dtype == np.float32
    np.testing.assert_allclose(f32.grad, [3.0, 3.0])


def test_state_dict_of_shared_submodule_lists_every_path():
    lin = nn.Linear(2, 3)
    m = nn.Sequential(lin, lin)
    sd = m.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert [name for name, _ in m.named_parameters()] == ["0.weight", "0.bias"]
    assert len(list(m.parameters())) == 2
    sd["1.weight"] = sd["1.weight"] + 1
    assert m.load_state_dict(sd) == ([], [])
    np.testing.assert_allclose(lin.weight.data, sd["1.weight"])  # the later key wins, as in torch
    del sd["1.bias"]
    with pytest.raises(RuntimeError, match=r"missing keys: '1\.bias'"):
        m.load_state_dict(sd)


def test_no_grad_is_per_thread():
    import threading
    seen = []
    with fastbp.no_grad():
        t = threading.Thread(target=lambda: seen.append((Tensor(np.ones(2), requires_grad=True) * 2).requires_grad))
        t.start()
        t.join()
    assert seen == [True]
