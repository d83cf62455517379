"""Checks of fastbp.distributed that run inside an MPI job, one rank per process:

    mpiexec -n 2 python tests/mpi_checks.py [NAME ...] [--tmp DIR]

tests/test_distributed.py launches them. Every check runs on every rank; a failing assertion
aborts the whole job (fastbp.distributed.init installs an excepthook that calls MPI_Abort),
so a failure never leaves the other ranks waiting. Rank 0 prints "ok NAME" per check.
"""
import argparse
import os
import pathlib
import sys

import numpy as np

import fastbp
import fastbp.distributed as dist
import fastbp.nn.functional as F
from fastbp import nn, optim

CHECKS = {}
EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def check(fn):
    CHECKS[fn.__name__] = fn
    return fn


def small_cnn(dtype=np.float32):
    """A small 1-d CNN with odd sizes (input 4 x 37); its 7 parameters fill several buckets."""
    return nn.Sequential(nn.Conv1d(4, 5, 3), nn.ReLU(), nn.MaxPool1d(2),
                         nn.Conv1d(5, 7, 5, padding=2), nn.ReLU(), nn.Flatten(),
                         nn.Linear(7 * 17, 9), nn.Tanh(), nn.Linear(9, 3)).to(dtype)


def all_equal_across_ranks(arrays) -> bool:
    """Whether every rank holds the same bits in `arrays` (a list of ndarrays)."""
    digest = b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)
    return len(set(dist.all_gather_object(digest))) == 1


def sum_in_rank_order(local):
    """The sum over ranks of `local` (a list of arrays), each element added in rank order."""
    gathered = dist.all_gather_object(local)
    out = []
    for i in range(len(local)):
        acc = gathered[0][i].copy()
        for other in gathered[1:]:
            acc += other[i]
        out.append(acc)
    return out


def mean_in_rank_order(local):
    return [total / dist.world_size() for total in sum_in_rank_order(local)]


@check
def ddp_matches_single_process():
    """N ranks, each on 1/N of the global batch, end where one process on the whole batch ends."""
    size, rank = dist.world_size(), dist.rank()
    cases = [(np.float64, lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), 1e-10),
             (np.float64, lambda ps: optim.Adam(ps, lr=1e-2), 1e-9),
             (np.float32, lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), 2e-5)]
    for dtype, make_opt, rtol in cases:
        fastbp.manual_seed(100 + rank)  # each rank starts elsewhere: DDP must copy rank 0's weights
        model = small_cnn(dtype)
        fastbp.manual_seed(100)
        reference = small_cnn(dtype)
        ddp = dist.DistributedDataParallel(model, bucket_cap_mb=2e-3)  # 2 KiB: several buckets
        assert len(ddp.bucket_sizes) >= 3, ddp.bucket_sizes
        opt, ref_opt = make_opt(ddp.parameters()), make_opt(reference.parameters())
        rng = np.random.default_rng(7)  # the same global batches on every rank
        per_rank = 3
        for _ in range(5):
            x = rng.standard_normal((per_rank * size, 4, 37)).astype(dtype)
            y = rng.standard_normal((per_rank * size, 3)).astype(dtype)
            mine = slice(rank * per_rank, (rank + 1) * per_rank)
            for net, optimizer, xb, yb in ((ddp, opt, x[mine], y[mine]), (reference, ref_opt, x, y)):
                loss = F.mse_loss(net(fastbp.Tensor(xb)), fastbp.Tensor(yb))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        ours, theirs = model.state_dict(), reference.state_dict()
        for key in theirs:
            scale = np.abs(theirs[key]).max()
            np.testing.assert_allclose(ours[key], theirs[key], rtol=rtol, atol=rtol * scale,
                                       err_msg=f"{key} {np.dtype(dtype).name}")
        assert all_equal_across_ranks(list(ours.values())), "ranks' parameters differ"


@check
def ppg_example_matches_single_process():
    """The PPG model and pipeline of examples/ppg_heart_rate.py (Adam, simulated windows): N ranks
    with 1/N of each global batch of 4N windows end where one process ends. float64 to 1e-9;
    float32 to 1% of one Adam step (lr), since Adam's early steps are about lr * sign(gradient)
    and rounding flips that sign where a gradient is ~0."""
    sys.path.insert(0, str(EXAMPLES))
    from ppg_heart_rate import load_windows, make_model, standardise
    size, rank = dist.world_size(), dist.rank()
    x, y, _ = load_windows(n_subjects=2, minutes=0.5, seed=0)
    x, y = standardise(x), ((y - 100) / 30).astype(np.float32)[:, None]
    lr, per_rank = 2e-3, 4
    for dtype, rtol, atol in ((np.float64, 1e-9, 0.0), (np.float32, 1e-4, 1e-2 * lr)):
        fastbp.manual_seed(rank)
        ddp = dist.DistributedDataParallel(make_model().to(dtype))
        reference = make_model().to(dtype)
        reference.load_state_dict(dist.broadcast_object(ddp.module.state_dict()))
        opt, ref_opt = optim.Adam(ddp.parameters(), lr=lr), optim.Adam(reference.parameters(), lr=lr)
        for step in range(4):
            batch = np.arange(step * per_rank * size, (step + 1) * per_rank * size) % len(x)
            mine = batch[rank * per_rank:(rank + 1) * per_rank]
            for net, optimizer, idx in ((ddp, opt, mine), (reference, ref_opt, batch)):
                loss = F.mse_loss(net(fastbp.Tensor(x[idx].astype(dtype))), fastbp.Tensor(y[idx].astype(dtype)))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        ours, theirs = ddp.module.state_dict(), reference.state_dict()
        for key in theirs:
            np.testing.assert_allclose(ours[key], theirs[key], rtol=rtol,
                                       atol=max(atol, rtol * np.abs(theirs[key]).max()),
                                       err_msg=f"{key} {np.dtype(dtype).name}")
        assert all_equal_across_ranks(list(ours.values())), "ranks' parameters differ"


@check
def gradients_are_the_rank_order_mean():
    """The reduced gradients are, bit for bit, ((g0 + g1) + g2 ...) / N of the local ones, and
    the same bits on a second run."""
    rank = dist.rank()
    results = []
    for _ in range(2):
        fastbp.manual_seed(5)
        model = small_cnn(np.float32)
        local = small_cnn(np.float32)
        local.load_state_dict(model.state_dict())
        ddp = dist.DistributedDataParallel(model, bucket_cap_mb=1e-3)
        rng = np.random.default_rng(rank)  # different data on each rank
        x = fastbp.Tensor(rng.standard_normal((4, 4, 37)).astype(np.float32))
        y = fastbp.Tensor(rng.standard_normal((4, 3)).astype(np.float32))
        F.mse_loss(ddp(x), y).backward()
        F.mse_loss(local(x), y).backward()
        expected = mean_in_rank_order([p.grad for p in local.parameters()])
        for (name, p), want in zip(model.named_parameters(), expected):
            assert p.grad.tobytes() == want.tobytes(), f"{name}: not the rank-order mean"
        results.append(b"".join(p.grad.tobytes() for p in model.parameters()))
    assert results[0] == results[1], "a second run gave other bits"


@check
def no_sync_accumulates_locally():
    """Two backward passes inside no_sync() and one after it reduce the local sums once."""
    rank = dist.rank()
    fastbp.manual_seed(3)
    model, local = small_cnn(np.float64), small_cnn(np.float64)
    local.load_state_dict(model.state_dict())
    ddp = dist.DistributedDataParallel(model)
    rng = np.random.default_rng(10 + rank)
    batches = [(fastbp.Tensor(rng.standard_normal((2, 4, 37))), fastbp.Tensor(rng.standard_normal((2, 3))))
               for _ in range(3)]
    with ddp.no_sync():
        for x, y in batches[:2]:
            F.mse_loss(ddp(x), y).backward()
            assert all_equal_across_ranks([p.grad for p in model.parameters()]) == (dist.world_size() == 1)
    F.mse_loss(ddp(batches[2][0]), batches[2][1]).backward()
    for x, y in batches:
        F.mse_loss(local(x), y).backward()
    expected = mean_in_rank_order([p.grad for p in local.parameters()])
    for p, want in zip(model.parameters(), expected):
        assert p.grad.tobytes() == want.tobytes()


class TwoBranches(nn.Module):
    """Rank r's data take branch r % 2: each branch's parameters are unused on some ranks."""

    def __init__(self):
        super().__init__()
        self.trunk = nn.Linear(5, 4)
        self.branches = nn.ModuleList([nn.Linear(4, 2), nn.Linear(4, 2)])
        self.never = nn.Linear(4, 2)

    def forward(self, x, branch):
        return self.branches[branch](self.trunk(x).relu())


@check
def find_unused_parameters():
    rank, size = dist.rank(), dist.world_size()
    fastbp.manual_seed(4)
    model, local = TwoBranches().double(), TwoBranches().double()
    local.load_state_dict(model.state_dict())
    ddp = dist.DistributedDataParallel(model, find_unused_parameters=True)
    rng = np.random.default_rng(rank)
    for step in range(2):
        x, y = fastbp.Tensor(rng.standard_normal((3, 5))), fastbp.Tensor(rng.standard_normal((3, 2)))
        ddp.zero_grad()
        local.zero_grad()
        F.mse_loss(ddp(x, rank % 2), y).backward()
        F.mse_loss(local(x, rank % 2), y).backward()
        grads = [np.zeros_like(p.data) if p.grad is None else p.grad for p in local.parameters()]
        expected = mean_in_rank_order(grads)
        for (name, p), want in zip(model.named_parameters(), expected):
            if name.startswith("never") or (size == 1 and name.startswith("branches.1")):
                assert p.grad is None, f"{name}: used on no rank, yet has a gradient"
            else:
                assert p.grad is not None and p.grad.tobytes() == want.tobytes(), name


@check
def unused_parameters_are_named():
    """Without find_unused_parameters, a parameter that got no gradient stops the next forward
    with an error naming it (every rank leaves the same one out here, so none waits)."""
    ddp = dist.DistributedDataParallel(TwoBranches())
    x, y = fastbp.Tensor(np.ones((2, 5), np.float32)), fastbp.Tensor(np.ones((2, 2), np.float32))
    F.mse_loss(ddp(x, 0), y).backward()
    try:
        ddp(x, 0)
    except RuntimeError as e:
        assert "branches.1.weight" in str(e) and "never.weight" in str(e), e
        assert "find_unused_parameters=True" in str(e), e
    else:
        raise AssertionError("a parameter without gradient went unnoticed")


class Probe(nn.Module):
    """Records its buffer as the forward finds it, then changes it differently on each rank."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 1)
        self.register_buffer("count", fastbp.Tensor(np.zeros(2)))

    def forward(self, x):
        self.seen = self.count.data.copy()
        self.count.data += 1 + dist.rank()
        return self.linear(x)


@check
def parameters_and_buffers_come_from_rank_0():
    rank = dist.rank()
    fastbp.manual_seed(rank)  # different weights and buffers on every rank before wrapping
    probe = Probe()
    probe.count.data[:] = rank
    dist.broadcast_parameters(probe)
    assert all_equal_across_ranks([t.data for t in probe.parameters()] + [probe.count.data])
    ddp = dist.DistributedDataParallel(probe)
    for _ in range(3):
        ddp(fastbp.Tensor(np.ones((2, 3), np.float32))).sum().backward()
        assert all_equal_across_ranks([probe.seen]), "buffers were not broadcast at forward"
    with fastbp.no_grad():  # evaluation communicates nothing
        ddp(fastbp.Tensor(np.ones((2, 3), np.float32)))
    mismatched = nn.Linear(3 + rank, 1)
    try:
        dist.broadcast_parameters(mismatched)
    except RuntimeError as e:
        assert dist.world_size() > 1 and "differ between ranks" in str(e), e
    else:
        assert dist.world_size() == 1


@check
def collectives_and_metrics():
    rank, size = dist.rank(), dist.world_size()
    values = [0.1 * (r + 1) for r in range(size)]
    total = dist.all_reduce(values[rank])
    want = values[0]
    for v in values[1:]:
        want += v
    assert isinstance(total, float) and total == want
    assert dist.all_reduce(values[rank], "mean") == want / size
    assert dist.all_reduce(rank, "max") == size - 1 and dist.all_reduce(rank, "min") == 0
    counts = dist.all_reduce(np.array([[rank, 1]], np.int64))
    assert counts.dtype == np.int64 and counts.tolist() == [[size * (size - 1) // 2, size]]
    x = np.random.default_rng(rank).standard_normal(11).astype(np.float32)
    assert dist.all_reduce(x).tobytes() == sum_in_rank_order([x])[0].tobytes()
    assert dist.all_reduce(x, "mean").tobytes() == mean_in_rank_order([x])[0].tobytes()
    assert dist.gather_object(rank * 10, root=size - 1) == ([r * 10 for r in range(size)]
                                                           if rank == size - 1 else None)
    assert dist.broadcast_object({"from": rank}, root=0) == {"from": 0}
    for bad, error in ((lambda: dist.all_reduce(1.0, "prod"), ValueError),
                       (lambda: dist.gather_object(1, root=size), ValueError),
                       (lambda: dist.all_reduce(np.array(["a"])), TypeError)):
        try:
            bad()
        except error:
            pass
        else:
            raise AssertionError(f"expected {error.__name__}")


@check
def sampler_shards_the_epoch():
    size = dist.world_size()
    for n, drop_last in ((23, False), (23, True), (24, False), (1, False)):
        sampler = dist.DistributedSampler(n, shuffle=True, seed=3, drop_last=drop_last)
        sampler.set_epoch(2)
        shards = dist.all_gather_object(sampler.indices().tolist())
        assert all(len(s) == len(sampler) for s in shards)
        seen = sorted(i for s in shards for i in s)
        if drop_last:
            assert len(set(seen)) == len(seen) == (n // size) * size
        else:
            assert set(seen) == set(range(n)) and len(seen) == -(-n // size) * size


@check
def checkpoint_on_rank_0(tmp):
    rank = dist.rank()
    fastbp.manual_seed(rank)
    model = small_cnn()
    path = os.path.join(tmp, "ddp.npz")
    dist.save_checkpoint(model.state_dict(), path)
    state = dist.load_checkpoint(path)
    rank0 = dist.broadcast_object(model.state_dict())
    assert list(state) == list(rank0) and all(np.array_equal(state[k], rank0[k]) for k in state)
    try:
        dist.save_checkpoint({"bad": object()}, path)
    except (TypeError, RuntimeError) as e:
        assert isinstance(e, TypeError if rank == 0 else RuntimeError), e
    else:
        raise AssertionError("saving an object did not fail")


@check
def threads_split_between_ranks():
    """Without OMP_NUM_THREADS, ranks sharing CPUs split them (the test launches without it)."""
    if "OMP_NUM_THREADS" in os.environ:
        return
    cpus = len(os.sched_getaffinity(0))
    want = max(1, cpus // dist.local_world_size()) if dist.local_world_size() > 1 else fastbp.get_num_threads()
    assert fastbp.get_num_threads() == want, (fastbp.get_num_threads(), want)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("names", nargs="*", default=list(CHECKS))
    parser.add_argument("--tmp", default=None)
    args = parser.parse_args()
    dist.init()
    for name in args.names:
        fn = CHECKS[name]
        fn(args.tmp) if fn.__code__.co_argcount else fn()
        dist.barrier()
        if dist.rank() == 0:
            print(f"ok {name} ({dist.world_size()} ranks)", flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
