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
