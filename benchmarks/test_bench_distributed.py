"""Data-parallel training throughput on one machine: 2 MPI ranks x 1 thread (DistributedDataParallel,
half of each global batch per rank) against 1 process x 2 threads (the whole batch), for the PPG
model of examples/ppg_heart_rate.py (batch 64 of 4 x 256) and a larger CNN (VGG-style, 0.67 M
parameters, batch 64 of 3 x 32 x 32).

    python benchmarks/test_bench_distributed.py [--pairs 9] [--steps 3] [--null] [ppg cnn]

launches one `mpiexec -n 2` job in which the two set-ups alternate in rested blocks (AB, BA, ...;
in the 1-process blocks rank 1 sleeps), as fastbp.bench.paired does within one process. Printed
per model: samples/s of each set-up (global batch / fastest step of a block, median over the
pairs), the median and range of the per-pair throughput ratio, the share of a data-parallel
step spent in gradient communication (inside MPI calls, waiting for the other rank included),
and the time of one deterministic gradient reduction against MPI_Allreduce of the same size.
--null runs the 1-process set-up against itself: its ratios show the machine's noise.

Under pytest (with --benchmark-disable) the job runs one short pair per model and checks that both
set-ups trained the same weights; timed, it runs 3 pairs and prints the figures.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import pytest

import fastbp
import fastbp.nn.functional as F
from fastbp import nn, optim

GLOBAL_BATCH = 64


def ppg_model():
    """The 1-d CNN of examples/ppg_heart_rate.py (kept here so the benchmark stays fixed)."""
    class GlobalAvgPool(nn.Module):
        def forward(self, x):
            return x.mean(axis=2)

    def block(c_in, c_out):
        return [nn.Conv1d(c_in, c_out, 9, padding=4), nn.ReLU(), nn.MaxPool1d(2)]

    return nn.Sequential(*block(4, 32), *block(32, 64), *block(64, 64), *block(64, 64),
                         nn.Conv1d(64, 64, 9, padding=4), nn.ReLU(), GlobalAvgPool(), nn.Linear(64, 1))


def vgg_cnn():
    def conv(c_in, c_out):
        return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU()]

    return nn.Sequential(*conv(3, 32), *conv(32, 32), nn.MaxPool2d(2), *conv(32, 64), *conv(64, 64),
                         nn.MaxPool2d(2), *conv(64, 128), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(128 * 4 * 4, 256), nn.ReLU(), nn.Linear(256, 10))


def make_case(name):
    """(model, x, y, loss) for the global batch, the same on every rank."""
    rng = np.random.default_rng(0)
    fastbp.manual_seed(0)
    if name == "ppg":
        x = rng.standard_normal((GLOBAL_BATCH, 4, 256), dtype=np.float32)
        return ppg_model(), x, rng.standard_normal((GLOBAL_BATCH, 1), dtype=np.float32), F.mse_loss
    x = rng.standard_normal((GLOBAL_BATCH, 3, 32, 32), dtype=np.float32)
    return vgg_cnn(), x, rng.integers(0, 10, GLOBAL_BATCH), F.cross_entropy


# --- inside the MPI job -------------------------------------------------------------------------
def idle_until_rank0_done(comm):
    """Wait for rank 0 without spinning a core (MPI's blocking calls busy-poll)."""
    request = comm.Ibarrier()
    while not request.Test():
        time.sleep(0.002)


def worker(names, pairs, steps, null, rest=0.15):
    import fastbp.distributed as dist
    from fastbp.distributed.reduction import RankOrderSum, padded_size
    from mpi4py import MPI

    dist.init(num_threads=1)
    comm, rank, size = dist.get_comm(), dist.rank(), dist.world_size()
    results = {}
    for name in names:
        model, x, y, loss_fn = make_case(name)
        solo, _, _, _ = make_case(name)  # the same initial weights
        ddp = dist.DistributedDataParallel(model)
        opt_ddp = optim.SGD(ddp.parameters(), lr=1e-3, momentum=0.9)
        opt_solo = optim.SGD(solo.parameters(), lr=1e-3, momentum=0.9)
        half = GLOBAL_BATCH // size
        xs, ys = fastbp.Tensor(x), fastbp.Tensor(y)
        xr, yr = fastbp.Tensor(x[rank * half:(rank + 1) * half]), fastbp.Tensor(y[rank * half:(rank + 1) * half])

        def step(net, opt, xb, yb):
            loss = loss_fn(net(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()

        def block_ddp():
            """Both ranks, 1 thread each: (fastest step, comm share of the timed steps)."""
            comm.Barrier()
            time.sleep(rest)
            step(ddp, opt_ddp, xr, yr)
            times, comm0 = [], ddp.communication_seconds
            for _ in range(steps):
                t0 = time.perf_counter()
                step(ddp, opt_ddp, xr, yr)
                times.append(time.perf_counter() - t0)
            share = (ddp.communication_seconds - comm0) / sum(times)
            return min(times), dist.all_reduce(share, "mean")

        def block_solo():
            """Rank 0 alone on 2 threads, the whole batch; rank 1 sleeps."""
            best = None
            comm.Barrier()
            if rank == 0:
                with fastbp.threads(size):
                    time.sleep(rest)
                    step(solo, opt_solo, xs, ys)
                    times = []
                    for _ in range(steps):
                        t0 = time.perf_counter()
                        step(solo, opt_solo, xs, ys)
                        times.append(time.perf_counter() - t0)
                    best = min(times)
            idle_until_rank0_done(comm)
            return dist.broadcast_object(best), 0.0

        block_a = block_solo if null else block_ddp
        rows = []
        for i in range(pairs):
            t = {}
            for which in (("a", "b") if i % 2 == 0 else ("b", "a")):
                t[which] = block_a() if which == "a" else block_solo()
            rows.append((t["a"][0], t["b"][0], t["a"][1]))
        if not null:
            state, ref = model.state_dict(), solo.state_dict()
            worst = max(float(np.abs(state[k] - ref[k]).max() / (np.abs(ref[k]).max() or 1)) for k in ref)
            same_everywhere = len(set(dist.all_gather_object(
                b"".join(v.tobytes() for v in state.values())))) == 1
        else:
            worst, same_everywhere = 0.0, True

        # one gradient reduction of this model's size: ours (rank order) against MPI_Allreduce
        n = sum(p.data.size for p in model.parameters())
        buf = np.ones(padded_size(n, size), np.float32)
        out = np.empty_like(buf)
        ours, theirs = [], []
        for _ in range(15):
            comm.Barrier()
            t0 = time.perf_counter()
            RankOrderSum(comm, buf, average=True).run()
            ours.append(time.perf_counter() - t0)
            comm.Barrier()
            t0 = time.perf_counter()
            comm.Allreduce(buf, out, op=MPI.SUM)
            theirs.append(time.perf_counter() - t0)
        results[name] = dict(
            parameters=n, threads=fastbp.get_num_threads(),
            a_step=[r[0] for r in rows], b_step=[r[1] for r in rows], comm_share=[r[2] for r in rows],
            reduce_ms=1e3 * statistics.median(ours), allreduce_ms=1e3 * statistics.median(theirs),
            max_rel_diff=worst, ranks_equal=same_everywhere)
    if rank == 0:
        print("RESULTS " + json.dumps(results), flush=True)


# --- the launcher -------------------------------------------------------------------------------
def run_job(names, pairs, steps, null=False, timeout=1800):
    """Launch the 2-rank job; returns the results dict of rank 0."""
    import fastbp.distributed as dist
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    command = [dist.find_mpiexec(), "-n", "2", sys.executable, os.path.abspath(__file__), "--worker",
               "--pairs", str(pairs), "--steps", str(steps), *(["--null"] if null else []), *names]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULTS "))
    return json.loads(line[len("RESULTS "):])


def summary(name, r, null=False):
    ratios = [b / a for a, b in zip(r["a_step"], r["b_step"])]  # throughput A / throughput B
    label = "1x2 (null)" if null else "2x1"
    a_rate = GLOBAL_BATCH / statistics.median(r["a_step"])
    b_rate = GLOBAL_BATCH / statistics.median(r["b_step"])
    text = (f"{name:4s} ({r['parameters'] / 1e6:.2f} M params): {label} {a_rate:7.1f} samples/s, "
            f"1x2 {b_rate:7.1f} samples/s, ratio {statistics.median(ratios):.2f} "
            f"(pairs {min(ratios):.2f}-{max(ratios):.2f})")
    if not null:
        text += (f"; communication {statistics.median(r['comm_share']):.1%} of a 2x1 step; one "
                 f"gradient reduction {r['reduce_ms']:.2f} ms (MPI_Allreduce {r['allreduce_ms']:.2f} ms)")
    return text


def test_distributed_training_throughput(benchmark):
    import fastbp.distributed as dist
    skip = pytest.fail if os.environ.get("FASTBP_REQUIRE_MPI") == "1" else pytest.skip
    if not dist.is_available():
        skip('no MPI: mpi4py is not installed (pip install "fastbp[mpi]")')
    try:
        dist.find_mpiexec()
    except RuntimeError as e:
        skip(str(e))
    benchmark.group = "distributed-training"
    quick = benchmark.disabled
    results = benchmark.pedantic(run_job, args=(["ppg", "cnn"], 1 if quick else 3, 1 if quick else 3),
                                 rounds=1, iterations=1)
    for name, r in results.items():
        assert r["ranks_equal"], f"{name}: the ranks' weights differ"
        assert r["max_rel_diff"] < 1e-3, f"{name}: 2 ranks and 1 process trained apart ({r['max_rel_diff']:.1e})"
        assert all(0 <= s <= 1 for s in r["comm_share"]) and r["threads"] == 1
        if not quick:
            print(summary(name, r))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["ppg", "cnn"])
    parser.add_argument("--pairs", type=int, default=9)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per block")
    parser.add_argument("--null", action="store_true", help="1x2 against 1x2: the noise")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.models, args.pairs, args.steps, args.null)
        return
    print(f"load average before: {open('/proc/loadavg').read().split()[:3]}")
    results = run_job(args.models, args.pairs, args.steps, args.null)
    for name, r in results.items():
        print(summary(name, r, args.null))
        if not args.null:
            print(f"     2 ranks vs 1 process after all steps: max relative weight difference "
                  f"{r['max_rel_diff']:.1e}")
    print(f"load average after: {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
