"""Data-parallel training throughput on one machine: 2 MPI ranks x 1 thread (DistributedDataParallel,
half of each global batch per rank) against 1 process x 2 threads (the whole batch), and
1 process x 1 thread beside them, for the PPG model of examples/ppg_heart_rate.py (batch 64 of
4 x 256) and a larger CNN (VGG-style, 0.67 M parameters, batch 64 of 3 x 32 x 32).

    python benchmarks/test_bench_distributed.py [--pairs 9] [--steps 3] [--null] [ppg cnn]

launches one `mpiexec -n 2` job in which the set-ups take turns in rested blocks, the order
rotating from one round to the next (in the 1-process blocks rank 1 sleeps), as
fastbp.bench.paired alternates within one process. Printed per model and set-up: samples/s
(global batch / fastest step of a block, median over the rounds), the per-round throughput
ratio to 1x2 (median and range), for 2x1 the share of a step spent in gradient communication
(inside MPI calls, waiting for the other rank included), and the time of one deterministic
gradient reduction against MPI_Allreduce of the same size. --null runs 1x2 against itself:
its ratios show the noise of the machine.

Every set-up trains its own copy of the model from the same weights on the same batches; at
the end their weights must agree (1x1 and 1x2 bit for bit). Under pytest with
--benchmark-disable the job runs one short round per model and checks that; timed, 3 rounds
and the figures are printed.
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
        _, x, y, loss_fn = make_case(name)
        half = GLOBAL_BATCH // size
        whole = fastbp.Tensor(x), fastbp.Tensor(y)
        mine = fastbp.Tensor(x[rank * half:(rank + 1) * half]), fastbp.Tensor(y[rank * half:(rank + 1) * half])
        ddp = None

        def timed_steps(net, opt, batch):
            """One untimed step after a rest, then `steps` timed ones: (times, comm seconds)."""
            time.sleep(rest)
            comm0 = ddp.communication_seconds if net is ddp else 0.0
            times = []
            for i in range(steps + 1):
                t0 = time.perf_counter()
                loss = loss_fn(net(batch[0]), batch[1])
                opt.zero_grad()
                loss.backward()
                opt.step()
                times.append(time.perf_counter() - t0)
                if i == 0:
                    comm0 = ddp.communication_seconds if net is ddp else 0.0
            return times[1:], (ddp.communication_seconds if net is ddp else 0.0) - comm0

        def data_parallel(net, opt):
            """Both ranks on 1 thread, half the batch each: (fastest step, comm share)."""
            comm.Barrier()
            times, seconds = timed_steps(net, opt, mine)
            return min(times), dist.all_reduce(seconds / sum(times), "mean")

        def one_process(threads):
            def block(net, opt):
                """Rank 0 alone on `threads` threads, the whole batch; rank 1 sleeps."""
                best = None
                comm.Barrier()
                if rank == 0:
                    with fastbp.threads(threads):
                        best = min(timed_steps(net, opt, whole)[0])
                idle_until_rank0_done(comm)
                return dist.broadcast_object(best), 0.0
            return block

        kinds = {"2x1": data_parallel, "1x2": one_process(2), "1x1": one_process(1)}
        labels = ["1x2 (a)", "1x2 (b)"] if null else ["2x1", "1x2", "1x1"]
        setups = {}
        for label in labels:
            model = make_case(name)[0]  # the same initial weights for every set-up
            if label == "2x1":
                model = ddp = dist.DistributedDataParallel(model)
            setups[label] = (kinds[label.split()[0]], model, optim.SGD(model.parameters(), lr=1e-3, momentum=0.9))
        rows = {label: [] for label in labels}
        for i in range(pairs):
            for label in labels[i % len(labels):] + labels[:i % len(labels)]:  # rotate the order
                block, model, opt = setups[label]
                rows[label].append(block(model, opt))

        # every set-up took the same steps on the same global batches: the weights must agree
        states = {label: (setups[label][1].module if label == "2x1" else setups[label][1]).state_dict()
                  for label in labels}
        ref = states[labels[1]]
        worst = {label: max(float(np.abs(st[k] - ref[k]).max() / (np.abs(ref[k]).max() or 1)) for k in ref)
                 for label, st in states.items()}
        same_on_ranks = len(set(dist.all_gather_object(
            b"".join(v.tobytes() for v in states[labels[0]].values())))) == 1

        # one reduction of this model's gradient size: rank order (ours) against MPI_Allreduce
        n = sum(p.data.size for p in setups[labels[0]][1].parameters())
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
            step={label: [r[0] for r in rows[label]] for label in labels},
            comm_share=[r[1] for r in rows[labels[0]]], max_rel_diff=worst, ranks_equal=same_on_ranks,
            reduce_ms=1e3 * statistics.median(ours), allreduce_ms=1e3 * statistics.median(theirs))
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


def summary(name, r):
    """Samples/s per set-up (global batch / median over the pairs of a block's fastest step),
    and each set-up's throughput against the first's second set-up (1x2): median and range of
    the per-pair ratios."""
    labels = list(r["step"])
    base = r["step"][labels[1]]
    lines = [f"{name} ({r['parameters'] / 1e6:.2f} M parameters, global batch {GLOBAL_BATCH})"]
    for label in labels:
        ratios = [b / t for t, b in zip(r["step"][label], base)]
        line = (f"  {label:9s} {GLOBAL_BATCH / statistics.median(r['step'][label]):7.1f} samples/s"
                f"  x{statistics.median(ratios):.2f} of 1x2 (pairs {min(ratios):.2f}-{max(ratios):.2f})")
        if label == "2x1":
            line += f", {statistics.median(r['comm_share']):.1%} of a step in communication"
        lines.append(line)
    lines.append(f"  one gradient reduction {r['reduce_ms']:.2f} ms in rank order, MPI_Allreduce "
                 f"{r['allreduce_ms']:.2f} ms; weights after training, max relative difference to "
                 f"1x2: " + ", ".join(f"{k} {v:.1e}" for k, v in r["max_rel_diff"].items() if k != labels[1]))
    return "\n".join(lines)


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
        assert r["max_rel_diff"]["2x1"] < 1e-3, f"{name}: 2 ranks and 1 process trained apart"
        assert r["max_rel_diff"]["1x1"] == 0, f"{name}: 1 and 2 threads trained apart"
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
    print(f"load average before: {' '.join(open('/proc/loadavg').read().split()[:3])}; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}")
    results = run_job(args.models, args.pairs, args.steps, args.null)
    for name, r in results.items():
        print(summary(name, r))
    print(f"load average after: {' '.join(open('/proc/loadavg').read().split()[:3])}")


if __name__ == "__main__":
    main()
