"""fastbp.distributed: the sampler and argument checks in this process; data-parallel training,
the rank-order reduction, collectives, checkpoints and the example in MPI jobs on this machine
(`mpiexec -n 2` and `-n 3`, shared memory), which skip when mpi4py or mpiexec is missing."""
import importlib.util
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import fastbp.distributed as dist
from fastbp import nn

HERE = pathlib.Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples"
MPI_CHECKS = HERE / "mpi_checks.py"

try:
    import torch
except ImportError:  # torch is the peer for the sampler's rules
    torch = None


def mpiexec() -> str:
    """The launcher; skips without MPI, unless FASTBP_REQUIRE_MPI=1 (CI) makes that a failure."""
    skip = pytest.fail if os.environ.get("FASTBP_REQUIRE_MPI") == "1" else pytest.skip
    if importlib.util.find_spec("mpi4py") is None:
        skip('no MPI: mpi4py is not installed (pip install "fastbp[mpi]")')
    try:
        return dist.find_mpiexec()
    except RuntimeError as e:
        skip(f"no MPI launcher: {e}")


def run_mpi(ranks: int, script, *args, cwd, extra_env=None, timeout=180) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    # harmless for MPICH; lets Open MPI's mpiexec run as root and put 3 ranks on 2 cores
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", **(extra_env or {}))
    result = subprocess.run([mpiexec(), "-n", str(ranks), sys.executable, str(script), *args],
                            capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    assert result.returncode == 0, result.stdout[-4000:] + "\n" + result.stderr[-4000:]
    return result.stdout


# --- MPI jobs -------------------------------------------------------------------------------------
def check_names():
    """The checks of tests/mpi_checks.py (each function under an @check line)."""
    lines = MPI_CHECKS.read_text().splitlines()
    return [line.split("def ", 1)[1].split("(")[0] for prev, line in zip(lines, lines[1:])
            if prev == "@check"]


@pytest.mark.parametrize("ranks", [2, 3])
def test_mpi_checks(tmp_path, ranks):
    """Every check of tests/mpi_checks.py in one job: DDP on N ranks with 1/N of the batch each
    ends where one process on the whole batch ends (the PPG example's model and a small CNN,
    float64 and float32, SGD and Adam, several buckets); gradients are the rank-order mean bit for bit, run after run; no_sync,
    find_unused_parameters, broadcasts of parameters and buffers, all_reduce and the object
    collectives, the sampler, checkpoints on rank 0, threads split between ranks."""
    out = run_mpi(ranks, MPI_CHECKS, "--tmp", str(tmp_path), cwd=tmp_path)
    names = check_names()
    assert len(names) >= 9
    for name in names:
        assert f"ok {name} ({ranks} ranks)" in out, out


def test_ppg_distributed_example(tmp_path):
    """The example trains data-parallel on 2 ranks, then spreads leave-one-subject-out folds."""
    out = run_mpi(2, EXAMPLES / "ppg_distributed.py", "--quick", "--checkpoint",
                  str(tmp_path / "ppg.npz"), cwd=EXAMPLES)
    assert "2 ranks x 1 thread" in out and "epoch  1" in out and "test MAE" in out, out
    assert (tmp_path / "ppg.npz").exists()
    out = run_mpi(2, EXAMPLES / "ppg_distributed.py", "--quick", "--mode", "folds", cwd=EXAMPLES)
    assert "fold" in out and "mean MAE over" in out, out


def test_launcher_of_another_mpi_is_named(tmp_path):
    """A process that a launcher counted as one of 2 but that is alone in its MPI world
    (mpiexec of another MPI) stops with an error saying so, instead of training alone."""
    mpiexec()  # skips without MPI
    env = dict(os.environ, OMPI_COMM_WORLD_SIZE="2")
    result = subprocess.run([sys.executable, "-c", "import fastbp.distributed as d; d.init()"],
                            capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert result.returncode != 0 and "another MPI" in result.stderr, result.stderr


# --- without MPI ----------------------------------------------------------------------------------
def test_missing_mpi4py_is_an_import_error_saying_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    monkeypatch.setattr(dist.comm._group, "comm", None)
    for call in (dist.init, dist.rank, lambda: dist.all_reduce(1.0)):
        with pytest.raises(ImportError, match=r'pip install "fastbp\[mpi\]"'):
            call()


def test_missing_mpiexec_is_a_runtime_error(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="no MPI launcher"):
        dist.find_mpiexec()


def test_ddp_argument_errors():
    with pytest.raises(TypeError, match="fastbp.nn.Module"):
        dist.DistributedDataParallel(lambda x: x)
    for cap in (0, -1.0, "25", True):
        with pytest.raises(ValueError, match="bucket_cap_mb"):
            dist.DistributedDataParallel(nn.Linear(2, 2), bucket_cap_mb=cap)
    with pytest.raises(ValueError, match="no parameter that requires grad"):
        dist.DistributedDataParallel(nn.Linear(2, 2).requires_grad_(False))


@pytest.mark.skipif(torch is None, reason="torch is the peer for the sampler's rules")
@pytest.mark.parametrize("drop_last", [False, True])
def test_sampler_matches_torch_without_shuffle(drop_last):
    for n in (0, 1, 2, 5, 7, 12, 13):
        for replicas in (1, 2, 3, 5):
            for rank in range(replicas):
                theirs = torch.utils.data.DistributedSampler(range(n), replicas, rank,
                                                             shuffle=False, drop_last=drop_last)
                ours = dist.DistributedSampler(n, replicas, rank, shuffle=False, drop_last=drop_last)
                assert list(ours) == list(theirs) and len(ours) == len(theirs), (n, replicas, rank)


@pytest.mark.parametrize("n,replicas,drop_last", [(13, 3, False), (13, 3, True), (12, 4, False),
                                                  (2, 5, False), (2, 5, True), (0, 2, False)])
def test_sampler_shuffles_per_epoch_and_covers_every_sample(n, replicas, drop_last):
    def shards(epoch, seed=0):
        out = []
        for rank in range(replicas):
            sampler = dist.DistributedSampler(list(range(n)), replicas, rank, seed=seed,
                                              drop_last=drop_last)
            sampler.set_epoch(epoch)
            out.append(sampler.indices())
        return out

    first = shards(0)
    assert all(len(s) == len(first[0]) for s in first)
    seen = np.concatenate(first)
    if drop_last:  # the tail is dropped: each sample at most once, n // replicas per rank
        assert len(set(seen.tolist())) == len(seen) == (n // replicas) * replicas
    else:  # padded from the start: each sample at least once, ceil(n / replicas) per rank
        assert set(seen.tolist()) == set(range(n)) and len(seen) == -(-n // replicas) * replicas
    assert all(np.array_equal(a, b) for a, b in zip(first, shards(0)))  # seeded
    if n > 3:
        assert not all(np.array_equal(a, b) for a, b in zip(first, shards(1)))  # set_epoch
        assert not all(np.array_equal(a, b) for a, b in zip(first, shards(0, seed=1)))


def test_sampler_argument_errors():
    with pytest.raises(ValueError, match="rank must be below num_replicas=2, got 2"):
        dist.DistributedSampler(10, num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="num_replicas must be at least 1"):
        dist.DistributedSampler(10, num_replicas=0, rank=0)
    with pytest.raises(TypeError, match="dataset must be a size"):
        dist.DistributedSampler(object(), 2, 0)
    with pytest.raises(TypeError, match="rank must be an int"):
        dist.DistributedSampler(10, 2, 0.5)
    with pytest.raises(ValueError, match="epoch must be at least 0"):
        dist.DistributedSampler(10, 2, 1).set_epoch(-1)
