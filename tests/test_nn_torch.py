"""fastbp.nn and fastbp.optim against PyTorch: the same networks with the same weights give the
same outputs, losses, parameter gradients and optimizer trajectories; state_dicts move both ways."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

import fastbp  # noqa: E402
import fastbp.nn.functional as F  # noqa: E402
from fastbp import Tensor, nn  # noqa: E402

TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-9, atol=1e-11)}
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}


def make_cnn2d(lib):
    return lib.Sequential(
        lib.Conv2d(3, 6, 3, padding=1), lib.ReLU(), lib.MaxPool2d(2),
        lib.Conv2d(6, 8, (3, 2), stride=(2, 1), padding=(1, 0), groups=2), lib.ReLU(),
        lib.MaxPool2d(3, stride=1, padding=1),
        lib.Conv2d(8, 8, 3, padding="same", dilation=2, bias=False), lib.ReLU(),
        lib.Flatten(), lib.Linear(8 * 3 * 7, 16), lib.ReLU(), lib.Linear(16, 5))


def make_cnn1d(lib):
    return lib.Sequential(
        lib.Conv1d(4, 8, 9, padding=4), lib.ReLU(), lib.MaxPool1d(2),
        lib.Conv1d(8, 8, 5, padding="same", dilation=2), lib.ReLU(),
        lib.MaxPool1d(3, stride=2, padding=1),
        lib.Conv1d(8, 6, 3, stride=2, groups=2), lib.ReLU(), lib.Flatten(),
        lib.Linear(6 * 7, 1))


def make_mlp(lib):
    return lib.Sequential(lib.Linear(12, 20), lib.ReLU(), lib.Linear(20, 20, bias=False),
                          lib.ReLU(), lib.Linear(20, 4))


def twins(make, dtype, seed=0):
    """A fastbp model and a torch model holding the same (fastbp-initialised) weights."""
    nn.manual_seed(seed)
    ours = make(nn).to(dtype)
    theirs = make(torch.nn).to(TORCH_DTYPE[dtype])
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    return ours, theirs


CASES = {
    # name: (model factory, input shape, loss on (ours, theirs) given numpy target)
    "cnn2d-cross_entropy": (make_cnn2d, (4, 3, 12, 16), "ce", 5),
    "cnn1d-mse": (make_cnn1d, (5, 4, 64), "mse", None),
    "mlp-log_softmax": (make_mlp, (7, 12), "nll", 4),
}


def losses(kind, out, ref_out, target):
    if kind == "ce":
        return F.cross_entropy(out, target), TF.cross_entropy(ref_out, torch.from_numpy(target))
    if kind == "mse":
        t = target.astype(out.dtype)
        return F.mse_loss(out, t), TF.mse_loss(ref_out, torch.from_numpy(t))
    # nll via log_softmax: -mean of the picked log-probabilities
    onehot = np.eye(out.shape[1], dtype=out.dtype)[target]
    ours = (F.log_softmax(out, dim=1) * onehot).sum() / -len(target)
    theirs = TF.nll_loss(TF.log_softmax(ref_out, dim=1), torch.from_numpy(target))
    return ours, theirs


def make_batch(shape, kind, classes, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    target = rng.integers(0, classes, shape[0]) if classes else rng.standard_normal((shape[0], 1))
    return x, target


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", list(CASES))
def test_forward_loss_and_grads_match_torch(case, dtype):
    make, shape, kind, classes = CASES[case]
    ours, theirs = twins(make, dtype)
    x, target = make_batch(shape, kind, classes, dtype, seed=1)
    xt = Tensor(x, requires_grad=True)
    ref_x = torch.from_numpy(x.copy()).requires_grad_()
    out, ref_out = ours(xt), theirs(ref_x)
    np.testing.assert_allclose(out.data, ref_out.detach().numpy(), **TOL[dtype])
    loss, ref_loss = losses(kind, out, ref_out, target)
    assert loss.dtype == dtype
    np.testing.assert_allclose(loss.item(), ref_loss.item(), **TOL[dtype])
    loss.backward()
    ref_loss.backward()
    np.testing.assert_allclose(xt.grad, ref_x.grad.numpy(), **TOL[dtype])
    ref_params = dict(theirs.named_parameters())
    assert [k for k, _ in ours.named_parameters()] == list(ref_params)
    for name, p in ours.named_parameters():
        assert p.grad.dtype == dtype
        np.testing.assert_allclose(p.grad, ref_params[name].grad.numpy(), **TOL[dtype], err_msg=name)


def test_max_pool_ties_and_padding_match_torch():
    x = np.zeros((2, 3, 6, 5), np.float32)
    x[0, 0, 1:3, 1:3] = 1.0  # ties inside windows
    ref = torch.from_numpy(x.copy()).requires_grad_()
    xt = Tensor(x, requires_grad=True)
    g = np.random.default_rng(0).standard_normal((2, 3, 3, 3)).astype(np.float32)
    F.max_pool2d(xt, 3, stride=(2, 2), padding=1).backward(g)
    TF.max_pool2d(ref, 3, stride=2, padding=1).backward(torch.from_numpy(g))
    np.testing.assert_array_equal(xt.grad, ref.grad.numpy())


OPTIMIZERS = {
    "sgd": (dict(lr=0.1), None),
    "sgd-momentum": (dict(lr=0.05, momentum=0.9), None),
    "sgd-dampening-wd": (dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=1e-2), None),
    "sgd-nesterov": (dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-3), None),
    "adam": (None, dict(lr=1e-2)),
    "adam-betas-wd": (None, dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-2)),
    "adam-beta1-small": (None, dict(lr=1e-2, betas=(0.3, 0.9))),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_steps_match_torch(name, dtype):
    sgd, adam = OPTIMIZERS[name]
    ours, theirs = twins(make_cnn1d, dtype, seed=3)
    if sgd:
        opt, ref_opt = fastbp.optim.SGD(ours.parameters(), **sgd), torch.optim.SGD(theirs.parameters(), **sgd)
    else:
        opt, ref_opt = fastbp.optim.Adam(ours.parameters(), **adam), torch.optim.Adam(theirs.parameters(), **adam)
    for step in range(5):
        x, target = make_batch((6, 4, 64), "mse", None, dtype, seed=10 + step)
        opt.zero_grad()
        ref_opt.zero_grad()
        loss, ref_loss = losses("mse", ours(Tensor(x)), theirs(torch.from_numpy(x)), target)
        loss.backward()
        ref_loss.backward()
        opt.step()
        ref_opt.step()
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else TOL[dtype]
    ref_params = dict(theirs.named_parameters())
    for key, p in ours.named_parameters():
        assert p.dtype == dtype
        np.testing.assert_allclose(p.data, ref_params[key].detach().numpy(), **tol, err_msg=key)


def test_state_dict_from_torch():
    torch.manual_seed(0)
    theirs = make_cnn2d(torch.nn)
    ours = make_cnn2d(nn)
    assert ours.load_state_dict(theirs.state_dict()) == ([], [])
    x = np.random.default_rng(0).standard_normal((2, 3, 12, 16)).astype(np.float32)
    with torch.no_grad():
        want = theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours(Tensor(x)).data, want, **TOL[np.float32])
    # float64 checkpoint into a float32 model is cast
    ours.load_state_dict({k: v.double() for k, v in theirs.state_dict().items()})
    assert all(p.dtype == np.float32 for p in ours.parameters())
    np.testing.assert_allclose(ours(Tensor(x)).data, want, **TOL[np.float32])


def test_state_dict_to_torch():
    ours = make_mlp(nn)
    theirs = make_mlp(torch.nn)
    sd = ours.state_dict()
    assert list(sd) == list(theirs.state_dict())
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    x = np.random.default_rng(0).standard_normal((3, 12)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(theirs(torch.from_numpy(x)).numpy(), ours(Tensor(x)).data,
                                   **TOL[np.float32])


def test_load_state_dict_errors():
    ours = make_cnn1d(nn)
    sd = make_cnn1d(torch.nn).state_dict()
    missing = {k: v for k, v in sd.items() if k != "3.bias"}
    with pytest.raises(RuntimeError, match=r"missing keys: '3\.bias'"):
        ours.load_state_dict(missing)
    with pytest.raises(RuntimeError, match=r"unexpected keys: 'extra'"):
        ours.load_state_dict(dict(sd, extra=torch.zeros(1)))
    bad = dict(sd)
    bad["0.weight"] = torch.zeros(8, 4, 7)
    with pytest.raises(RuntimeError, match=r"'0\.weight'.*\(8, 4, 7\).*\(8, 4, 9\)"):
        ours.load_state_dict(bad)
    res = ours.load_state_dict(missing, strict=False)
    assert res.missing_keys == ["3.bias"] and res.unexpected_keys == []


def test_no_grad_inference_matches_torch():
    ours, theirs = twins(make_cnn2d, np.float32)
    x = np.random.default_rng(2).standard_normal((3, 3, 12, 16)).astype(np.float32)
    with fastbp.no_grad():
        out = ours(Tensor(x))
    assert not out.requires_grad
    with torch.no_grad():
        np.testing.assert_allclose(out.data, theirs(torch.from_numpy(x)).numpy(), **TOL[np.float32])


def test_relu_nan_matches_torch():
    x = np.array([np.nan, -1.0, 2.0, 0.0, -0.0, np.inf, -np.inf], np.float32)
    ours = Tensor(x, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    out, ref = F.relu(ours), torch.relu(theirs)
    np.testing.assert_array_equal(out.data, ref.detach().numpy())
    g = np.arange(1.0, 8.0, dtype=np.float32)
    out.backward(g)
    ref.backward(torch.from_numpy(g))
    np.testing.assert_array_equal(ours.grad, theirs.grad.numpy())
    np.testing.assert_array_equal(nn.ReLU()(Tensor(x)).data, torch.nn.ReLU()(torch.from_numpy(x)).numpy())


@pytest.mark.parametrize("exponent", [0, 0.0, 1, 2, 0.5, np.float64(2)])
def test_pow_matches_torch(exponent):
    x = np.array([0.0 if float(exponent).is_integer() else 0.25, 1.5, 4.0], np.float32)  # x = 0 too
    ours, theirs = Tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, ref = ours ** exponent, theirs ** exponent
    assert out.dtype == np.float32 and ref.dtype == torch.float32
    np.testing.assert_allclose(out.data, ref.detach().numpy(), **TOL[np.float32])
    out.sum().backward()
    ref.sum().backward()
    np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), **TOL[np.float32])


@pytest.mark.parametrize("shape, dims", [((5,), (1,)), ((2, 3), (-3,)), ((2, 3), (0, 2)),
                                         ((2, 3), (1, 0)), ((), (1,))])
def test_flatten_errors_match_torch(shape, dims):
    with pytest.raises(IndexError if dims != (1, 0) else RuntimeError):
        torch.flatten(torch.ones(shape), *dims)
    with pytest.raises(IndexError if dims != (1, 0) else ValueError):
        F.flatten(Tensor(np.ones(shape)), *dims)


def test_flatten_module_on_unbatched_input_matches_torch():
    with pytest.raises(IndexError):
        torch.nn.Flatten()(torch.ones(5))
    with pytest.raises(IndexError):
        nn.Flatten()(Tensor(np.ones(5)))
    assert nn.Flatten(0)(Tensor(np.ones(5))).shape == tuple(torch.nn.Flatten(0)(torch.ones(5)).shape)


_DTYPES = {"int64": (np.int64, torch.int64), "int32": (np.int32, torch.int32),
           "float32": (np.float32, torch.float32), "float64": (np.float64, torch.float64),
           "bool": (np.bool_, torch.bool)}


@pytest.mark.parametrize("left", ["int64", "int32", "float32", "float64", "bool"])
@pytest.mark.parametrize("right", ["int64", "float32", "float64", "bool", "0d-float64", "0d-int64",
                                   "0d-float32", 2, 0.5, True, np.float64(0.5)])
@pytest.mark.parametrize("op", ["add", "mul", "truediv"])
def test_result_dtype_matches_torch(left, right, op):
    a_np = np.array([1, 2], _DTYPES[left][0])
    if isinstance(right, str):
        kind = right.split("-")[-1]
        b_np = np.array(1 if right.startswith("0d") else [1, 2], _DTYPES[kind][0])
        b_ours, b_torch = b_np, torch.from_numpy(b_np)
    else:
        b_ours = b_torch = right
    fn = {"add": lambda a, b: a + b, "mul": lambda a, b: a * b, "truediv": lambda a, b: a / b}[op]
    want = fn(torch.from_numpy(a_np), b_torch).dtype
    got = fn(Tensor(a_np), b_ours).dtype
    assert str(want) == "torch." + str(got)
    if not isinstance(right, str) or right.startswith("0d"):  # the other way round
        assert str(fn(b_torch, torch.from_numpy(a_np)).dtype) == "torch." + str(fn(b_ours, Tensor(a_np)).dtype)


def test_shared_submodule_state_dict_matches_torch():
    lin, ref_lin = nn.Linear(2, 3), torch.nn.Linear(2, 3)
    ours, theirs = nn.Sequential(lin, lin), torch.nn.Sequential(ref_lin, ref_lin)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert ours.load_state_dict(theirs.state_dict()) == ([], [])
    np.testing.assert_array_equal(lin.weight.data, ref_lin.weight.detach().numpy())
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})


def test_load_named_parameters_of_torch_model():
    torch.manual_seed(1)
    theirs = make_mlp(torch.nn)
    ours = make_mlp(nn)
    assert ours.load_state_dict(dict(theirs.named_parameters())) == ([], [])
    for name, p in ours.named_parameters():
        np.testing.assert_array_equal(p.data, dict(theirs.named_parameters())[name].detach().numpy())
