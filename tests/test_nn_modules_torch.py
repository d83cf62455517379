"""Modules, composed networks, optimizers, schedulers and checkpoints against PyTorch: the same
modules hold the same state_dict keys (both ways), and a ResNet block, a TCN and an attention
block written once against `torch.nn` and once against `fastbp.nn` stay together for several
optimizer steps."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fastbp  # noqa: E402
import fastbp.nn.functional as F  # noqa: E402
from fastbp import Tensor, nn  # noqa: E402

TORCH = {np.float32: torch.float32, np.float64: torch.float64}
TOL = {np.float32: dict(rtol=1e-4, atol=1e-5), np.float64: dict(rtol=1e-9, atol=1e-10)}

MODULES = {  # name: (factory over a library, input shape)
    "batchnorm1d": (lambda lib: lib.BatchNorm1d(5, momentum=0.2), (4, 5, 7)),
    "batchnorm1d-2d": (lambda lib: lib.BatchNorm1d(5, affine=False), (6, 5)),
    "batchnorm1d-cumulative": (lambda lib: lib.BatchNorm1d(5, momentum=None), (4, 5, 7)),
    "batchnorm2d": (lambda lib: lib.BatchNorm2d(3), (2, 3, 5, 4)),
    "layernorm": (lambda lib: lib.LayerNorm((4, 5)), (3, 4, 5)),
    "layernorm-nobias": (lambda lib: lib.LayerNorm(5, bias=False), (3, 4, 5)),
    "avgpool1d": (lambda lib: lib.AvgPool1d(3, 2, 1, count_include_pad=False), (2, 3, 9)),
    "avgpool2d": (lambda lib: lib.AvgPool2d(2, ceil_mode=True), (2, 3, 5, 5)),
    "adaptive1d": (lambda lib: lib.AdaptiveAvgPool1d(3), (2, 3, 7)),
    "adaptive2d": (lambda lib: lib.AdaptiveAvgPool2d((1, None)), (2, 3, 5, 4)),
    "convtranspose1d": (lambda lib: lib.ConvTranspose1d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2), (2, 4, 7)),
    "convtranspose2d": (lambda lib: lib.ConvTranspose2d(3, 5, (3, 2), stride=(2, 1), dilation=(1, 2)), (1, 3, 4, 5)),
    "activations": (lambda lib: lib.Sequential(lib.Linear(5, 6), lib.GELU(), lib.Linear(6, 6), lib.Softplus(2.0),
                                               lib.Linear(6, 6), lib.ELU(0.5), lib.LeakyReLU(0.2), lib.Tanh(),
                                               lib.Sigmoid(), lib.Identity(3), lib.Linear(6, 2)), (4, 5)),
    "mha": (lambda lib: lib.MultiheadAttention(8, 2, batch_first=True), (3, 5, 8)),
    "mha-kdim": (lambda lib: lib.MultiheadAttention(6, 3, kdim=4, vdim=5), None),
    "mha-nobias": (lambda lib: lib.MultiheadAttention(6, 2, bias=False), (5, 2, 6)),
}


def run(name, model, lib, x, mode):
    model.train(mode == "train")
    if name.startswith("mha"):
        if name == "mha-kdim":
            q, k, v = (lib_tensor(lib, a) for a in x)
            return model(q, k, v)[0]
        t = lib_tensor(lib, x)
        return model(t, t, t)[0]
    return model(lib_tensor(lib, x))


def lib_tensor(lib, a):
    return Tensor(a, requires_grad=True) if lib is nn else torch.tensor(a, requires_grad=True)


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", list(MODULES))
def test_module_matches_torch_both_ways(name, dtype, mode):
    make, shape = MODULES[name]
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    theirs = make(torch.nn).to(TORCH[dtype])
    ours = make(nn).to(dtype)
    ref_sd = theirs.state_dict()
    assert list(ours.state_dict()) == list(ref_sd)
    if any("running" in k for k in ref_sd):  # non-trivial statistics to load
        for k, v in ref_sd.items():
            if "running_mean" in k:
                v.copy_(torch.linspace(-1, 1, len(v)))
            if "running_var" in k:
                v.copy_(torch.linspace(0.5, 2, len(v)))
    assert ours.load_state_dict(ref_sd) == ([], [])  # torch -> fastbp
    x = ([rng.standard_normal(s).astype(dtype) for s in ((5, 2, 6), (4, 2, 4), (4, 2, 5))]
         if name == "mha-kdim" else rng.standard_normal(shape).astype(dtype))
    for step in range(2):  # twice: running statistics move in training
        out, ref = run(name, ours, nn, x, mode), run(name, theirs, torch.nn, x, mode)
        np.testing.assert_allclose(out.data, ref.detach().numpy(), **TOL[dtype])
        g = rng.standard_normal(out.shape).astype(dtype)
        out.backward(g)
        ref.backward(torch.from_numpy(g))
    ref_params = dict(theirs.named_parameters())
    assert [n for n, _ in ours.named_parameters()] == list(ref_params)
    for n, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, ref_params[n].grad.numpy(), **TOL[dtype], err_msg=n)
    for k, v in theirs.state_dict().items():  # buffers too
        np.testing.assert_allclose(ours.state_dict()[k], v.numpy(), **TOL[dtype], err_msg=k)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})  # back


def test_module_registration_api():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(3, 3), nn.Linear(3, 3)])
            self.heads = nn.ModuleDict({"a": nn.Linear(3, 1), "b": nn.Linear(3, 2)})
            self.norm = nn.BatchNorm1d(3)
            self.register_buffer("scale", Tensor(np.float32(2.0)))
            self.register_buffer("cache", Tensor(np.zeros(3)), persistent=False)

        def forward(self, x):
            for layer in self.layers:
                x = F.relu(layer(x))
            return self.heads["a"](self.norm(x)) * self.scale

    class TorchBlock(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = torch.nn.ModuleList([torch.nn.Linear(3, 3), torch.nn.Linear(3, 3)])
            self.heads = torch.nn.ModuleDict({"a": torch.nn.Linear(3, 1), "b": torch.nn.Linear(3, 2)})
            self.norm = torch.nn.BatchNorm1d(3)
            self.register_buffer("scale", torch.tensor(2.0))
            self.register_buffer("cache", torch.zeros(3), persistent=False)

    ours, theirs = Block(), TorchBlock()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    seen = []
    assert ours.apply(lambda m: seen.append(type(m).__name__)) is ours
    assert seen[-1] == "Block" and seen.count("Linear") == 4
    ours.requires_grad_(False)
    assert not any(p.requires_grad for p in ours.parameters())
    ours.requires_grad_()
    ours(Tensor(np.ones((4, 3), np.float32))).sum().backward()
    assert ours.layers[0].weight.grad is not None and ours.heads["b"].weight.grad is None
    assert len(ours.layers) == 2 and "a" in ours.heads and list(ours.heads) == ["a", "b"]
    ours.double()
    assert ours.scale.dtype == np.float64 and ours.norm.num_batches_tracked.dtype == np.int64


def test_clip_grad_norm_matches_torch():
    for norm_type in (2.0, 1.0, float("inf")):
        rng = np.random.default_rng(1)
        grads = [rng.standard_normal(s) for s in ((3, 4), (5,))]
        ours = [Tensor(np.zeros_like(g), requires_grad=True) for g in grads]
        theirs = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
        for o, t, g in zip(ours, theirs, grads):
            o.grad, t.grad = g.copy(), torch.from_numpy(g.copy())
        total = nn.utils.clip_grad_norm_(ours, 0.5, norm_type)
        ref = torch.nn.utils.clip_grad_norm_(theirs, 0.5, norm_type)
        np.testing.assert_allclose(total.item(), ref.item(), rtol=1e-12)
        for o, t in zip(ours, theirs):
            np.testing.assert_allclose(o.grad, t.grad.numpy(), rtol=1e-12)


# --- composed networks: written against torch.nn, run on fastbp.nn by changing the import -----
def resnet(lib):
    class BasicBlock(lib.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = lib.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = lib.BatchNorm2d(cout)
            self.conv2 = lib.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = lib.BatchNorm2d(cout)
            self.down = lib.Sequential(lib.Conv2d(cin, cout, 1, stride, bias=False), lib.BatchNorm2d(cout)) \
                if stride != 1 or cin != cout else lib.Identity()

        def forward(self, x):
            out = self.bn2(self.conv2(self.bn1(self.conv1(x)).relu()))
            return (out + self.down(x)).relu()

    # convolutions before BatchNorm have no bias (its gradient is zero up to rounding, which
    # Adam and RMSprop would blow up to full steps in float32)
    return lib.Sequential(lib.Conv2d(1, 6, 3, padding=1, bias=False), lib.BatchNorm2d(6), lib.ReLU(),
                          BasicBlock(6, 6, 1), BasicBlock(6, 10, 2),
                          lib.AdaptiveAvgPool2d(1), lib.Flatten(), lib.Linear(10, 4))


def tcn(lib, pad):
    class CausalBlock(lib.Module):
        def __init__(self, cin, cout, dilation):
            super().__init__()
            self.shift = 2 * dilation
            self.conv = lib.Conv1d(cin, cout, 3, dilation=dilation, bias=False)
            self.bn = lib.BatchNorm1d(cout)
            self.drop = lib.Dropout(0.0)

        def forward(self, x):
            return self.drop(self.bn(self.conv(pad(x, (self.shift, 0)))).relu())

    return lib.Sequential(CausalBlock(4, 8, 1), CausalBlock(8, 8, 2), lib.AvgPool1d(2),
                          CausalBlock(8, 8, 4), lib.AdaptiveAvgPool1d(1), lib.Flatten(),
                          lib.Linear(8, 2))


def attention_block(lib):
    class Block(lib.Module):
        def __init__(self):
            super().__init__()
            self.embed = lib.Conv1d(4, 8, 5, padding=2)
            self.attn = lib.MultiheadAttention(8, 2, batch_first=True)
            self.norm = lib.LayerNorm(8)
            self.ff = lib.Sequential(lib.Linear(8, 16), lib.GELU(), lib.Linear(16, 8))
            self.head = lib.Linear(8, 2)

        def forward(self, x):
            h = self.embed(x).transpose(1, 2)
            a, _ = self.attn(h, h, h, need_weights=False)
            h = self.norm(h + a)
            h = h + self.ff(h)
            return self.head(h.mean(1))

    return Block()


NETWORKS = {
    "resnet": (resnet, (3, 1, 9, 9), lambda lib, out, y: lib.cross_entropy(out, y)),
    "tcn": (lambda lib: tcn(lib, F.pad if lib is nn else torch.nn.functional.pad), (3, 4, 23),
            lambda lib, out, y: lib.mse_loss(out, y)),
    "attention": (attention_block, (3, 4, 11),
                  lambda lib, out, y: lib.gaussian_nll_loss(out[:, :1], y[:, :1], lib.softplus(out[:, 1:]) + 1e-3)),
}
OPTIMIZERS = {
    "sgd": lambda optim, p: optim.SGD(p, lr=0.05, momentum=0.9),
    "adamw": lambda optim, p: optim.AdamW(p, lr=3e-3, weight_decay=0.05),
    "rmsprop": lambda optim, p: optim.RMSprop(p, lr=1e-3, momentum=0.5, centered=True),
}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("net", list(NETWORKS))
def test_network_training_matches_torch(net, opt, dtype):
    make, shape, loss_fn = NETWORKS[net]
    torch.manual_seed(0)
    theirs = make(torch.nn).to(TORCH[dtype])
    ours = make(nn).to(dtype)
    assert ours.load_state_dict(theirs.state_dict()) == ([], [])
    opt_ours, opt_theirs = OPTIMIZERS[opt](fastbp.optim, ours.parameters()), OPTIMIZERS[opt](torch.optim, theirs.parameters())
    sched = fastbp.optim.lr_scheduler.StepLR(opt_ours, 2, 0.5)
    ref_sched = torch.optim.lr_scheduler.StepLR(opt_theirs, 2, 0.5)
    rng = np.random.default_rng(1)
    for step in range(4):
        x = rng.standard_normal(shape).astype(dtype)
        y = rng.integers(0, 4, shape[0]) if net == "resnet" else rng.standard_normal((shape[0], 2)).astype(dtype)
        loss = loss_fn(F, ours(Tensor(x)), Tensor(y))
        ref = loss_fn(torch.nn.functional, theirs(torch.from_numpy(x)), torch.from_numpy(y))
        np.testing.assert_allclose(loss.item(), ref.item(), **TOL[dtype])
        opt_ours.zero_grad()
        opt_theirs.zero_grad()
        loss.backward()
        ref.backward()
        opt_ours.step()
        opt_theirs.step()
        sched.step()
        ref_sched.step()
    tol = TOL[dtype] if dtype == np.float64 else dict(rtol=1e-3, atol=1e-4)
    for k, v in theirs.state_dict().items():
        got, want = ours.state_dict()[k], v.numpy()
        if k == "attn.in_proj_bias" and dtype == np.float32:
            # the key bias shifts every score of a query equally: softmax cancels it, its
            # gradient is rounding noise, which Adam and RMSprop scale up to full steps
            got, want = np.delete(got, np.s_[8:16]), np.delete(want, np.s_[8:16])
        np.testing.assert_allclose(got, want, **tol, err_msg=k)
    ours.eval()
    theirs.eval()
    x = rng.standard_normal(shape).astype(dtype)
    with fastbp.no_grad(), torch.no_grad():
        np.testing.assert_allclose(ours(Tensor(x)).data, theirs(torch.from_numpy(x)).numpy(), **tol)


def test_optimizer_and_scheduler_state_dicts():
    torch.manual_seed(0)
    theirs = torch.nn.Linear(3, 2).double()
    ours = nn.Linear(3, 2).double()
    ours.load_state_dict(theirs.state_dict())
    opt, ref = fastbp.optim.Adam(ours.parameters(), lr=0.1), torch.optim.Adam(theirs.parameters(), lr=0.1)
    sched = fastbp.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=3, eta_min=0.01)
    ref_sched = torch.optim.lr_scheduler.CosineAnnealingLR(ref, T_max=3, eta_min=0.01)
    x = np.random.default_rng(0).standard_normal((4, 3))
    saved = None
    for step in range(8):
        if step == 4:
            saved = (opt.state_dict(), sched.state_dict(), ours.state_dict())
        for model, o, t in ((ours, opt, Tensor), (theirs, ref, torch.from_numpy)):
            o.zero_grad()
            (model(t(x)) ** 2).sum().backward()
            o.step()
        sched.step()
        ref_sched.step()
        assert sched.get_last_lr() == pytest.approx(ref_sched.get_last_lr(), rel=1e-12)
    # resume from step 4 in a fresh model and optimizer: the same trajectory
    again = nn.Linear(3, 2).double()
    again.load_state_dict(saved[2])
    opt2 = fastbp.optim.Adam(again.parameters(), lr=0.1)
    opt2.load_state_dict(saved[0])
    sched2 = fastbp.optim.lr_scheduler.CosineAnnealingLR(opt2, T_max=3, eta_min=0.01)
    sched2.load_state_dict(saved[1])
    for step in range(4, 8):
        opt2.zero_grad()
        (again(Tensor(x)) ** 2).sum().backward()
        opt2.step()
        sched2.step()
    for (k, a), b in zip(again.state_dict().items(), ours.state_dict().values()):
        np.testing.assert_allclose(a, b, rtol=1e-12, err_msg=k)


def test_save_and_load(tmp_path):
    m = nn.Sequential(nn.Conv1d(2, 3, 3), nn.BatchNorm1d(3))
    m(Tensor(np.ones((2, 2, 5), np.float32)))
    path = tmp_path / "model.npz"
    fastbp.save(m.state_dict(), path)
    sd = fastbp.load(path)
    assert list(sd) == list(m.state_dict())
    for k, v in m.state_dict().items():
        assert sd[k].dtype == v.dtype and np.array_equal(sd[k], v)
    assert sd["1.num_batches_tracked"].dtype == np.int64
    weird = {"file": np.arange(3), "a/b.c": np.float64(1.5)}  # names np.savez would trip over
    fastbp.save(weird, tmp_path / "w.npz")
    assert list(fastbp.load(tmp_path / "w.npz")) == ["file", "a/b.c"]
    with pytest.raises(TypeError, match="object"):
        fastbp.save({"x": np.array([None])}, tmp_path / "bad.npz")
    with pytest.raises(TypeError, match="mapping"):
        fastbp.save([np.ones(2)], tmp_path / "bad.npz")
    (tmp_path / "junk.npz").write_bytes(b"not an archive")
    with pytest.raises(ValueError, match="not a fastbp checkpoint"):
        fastbp.load(tmp_path / "junk.npz")
    np.save(tmp_path / "single.npy", np.ones(2))
    with pytest.raises(ValueError, match="single array"):
        fastbp.load(tmp_path / "single.npy")
    theirs = torch.nn.Sequential(torch.nn.Conv1d(2, 3, 3), torch.nn.BatchNorm1d(3))
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in fastbp.load(path).items()})
