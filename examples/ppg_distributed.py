"""Heart rate from wrist PPG + accelerometer (the model and data of ppg_heart_rate.py) on several
processes with MPI, on one machine or many (`pip install "fastbp[mpi]"`):

    mpiexec -n 2 python examples/ppg_distributed.py [--mode train|folds] [--epochs 12] [--quick]

--mode train (the default): data-parallel training. Every rank holds the model; each global batch
of --batch-size windows is split evenly between the ranks (DistributedSampler), and
DistributedDataParallel averages the gradients during backward(), so N ranks take the steps one
process would take on the same batches (up to rounding). Rank 0 reports and writes --checkpoint.

--mode folds: leave-one-subject-out cross-validation, the protocol of PPG-DaLiA's 15 subjects:
fold k tests on subject k after training on all others. Folds are dealt to the ranks (fold k on
rank k mod N), every rank trains its folds on its own, and rank 0 gathers the per-fold MAE.

Each rank runs fastbp on its share of the CPUs (fastbp.distributed.init), or on OMP_NUM_THREADS.
"""
import argparse
import time

import numpy as np

import fastbp
import fastbp.distributed as dist
import fastbp.nn.functional as F
from fastbp import optim
from ppg_heart_rate import (HR_MEAN, HR_SCALE, augment, load_windows, make_model, predict,
                            spectral_peak_bpm, standardise)


def train_epoch(model, opt, x, target, batches, rng):
    """One pass over `batches` (index arrays into x); returns (sum of losses x batch size, count)."""
    total, count = 0.0, 0
    for idx in batches:
        loss = F.mse_loss(model(fastbp.Tensor(augment(x[idx], rng))), target[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item() * len(idx)
        count += len(idx)
    return total, count


def decay_lr(opt, epoch, epochs):
    if epoch == int(0.7 * epochs) + 1:
        for group in opt.param_groups:
            group["lr"] *= 0.2  # one step decay for the last epochs, as ppg_heart_rate.py


def shared_windows(args):
    """The windows, made (or read) on rank 0 and sent to the others: no shared file system needed."""
    data = load_windows(args.subjects, args.minutes, args.seed) if dist.rank() == 0 else None
    return dist.broadcast_object(data)


def data_parallel(args):
    size, rank = dist.world_size(), dist.rank()
    if args.batch_size % size:
        raise SystemExit(f"--batch-size {args.batch_size} must be a multiple of the {size} ranks")
    x, y, subject = shared_windows(args)
    test = subject >= args.subjects - args.test_subjects
    x_train, y_train = standardise(x[~test]), y[~test]
    x_test, y_test = standardise(x[test]), y[test]
    target = ((y_train - HR_MEAN) / HR_SCALE).astype(np.float32)[:, None]

    fastbp.manual_seed(args.seed)
    model = dist.DistributedDataParallel(make_model())
    opt = optim.Adam(model.parameters(), lr=args.lr)
    sampler = dist.DistributedSampler(len(x_train), shuffle=True, seed=args.seed)
    per_rank = args.batch_size // size
    rng = np.random.default_rng([args.seed, rank])  # each rank augments its windows differently
    my_test = np.array_split(np.arange(len(x_test)), size)[rank]

    def test_mae():
        errors = np.abs(predict(model.module, x_test[my_test]) - y_test[my_test])
        total, count = dist.all_reduce(np.array([errors.sum(), len(errors)]))
        return total / count

    if rank == 0:
        threads = fastbp.get_num_threads()
        print(f"{size} ranks x {threads} thread{'s' if threads > 1 else ''}: {len(x_train)} training "
              f"windows, global batch {args.batch_size} ({per_rank} per rank), {len(x_test)} test "
              f"windows of {args.test_subjects} other subjects", flush=True)
    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        t1 = time.perf_counter()
        decay_lr(opt, epoch, args.epochs)
        sampler.set_epoch(epoch)
        idx = sampler.indices()
        batches = [idx[i:i + per_rank] for i in range(0, len(idx), per_rank)]
        loss_sum, count = dist.all_reduce(np.array(train_epoch(model, opt, x_train, target, batches, rng)))
        mae = test_mae()
        if rank == 0:
            print(f"epoch {epoch:2d}  train loss {loss_sum / count:.4f}  test MAE {mae:5.2f} bpm  "
                  f"{time.perf_counter() - t1:.1f} s", flush=True)
    seconds = time.perf_counter() - start
    communication = dist.all_reduce(model.communication_seconds, "max")
    final_mae = test_mae()
    baseline = np.abs(spectral_peak_bpm(x[test]) - y_test).mean()
    if args.checkpoint:
        dist.save_checkpoint(model.module.state_dict(), args.checkpoint)
    if rank == 0:
        print(f"trained in {seconds:.1f} s, {communication / seconds:.0%} of it in gradient "
              f"communication (the slowest rank)")
        print(f"test MAE: CNN {final_mae:.2f} bpm, "
              f"spectral-peak baseline {baseline:.2f} bpm")
        if args.checkpoint:
            print(f"weights written to {args.checkpoint} (fastbp.load, then model.load_state_dict)")


def folds(args):
    size, rank = dist.world_size(), dist.rank()
    x, y, subject = shared_windows(args)
    results = []
    for fold in range(rank, args.subjects, size):
        t1 = time.perf_counter()
        test = subject == fold
        x_train, y_train = standardise(x[~test]), y[~test]
        target = ((y_train - HR_MEAN) / HR_SCALE).astype(np.float32)[:, None]
        fastbp.manual_seed(args.seed)
        model = make_model()
        opt = optim.Adam(model.parameters(), lr=args.lr)
        rng = np.random.default_rng([args.seed, fold])
        for epoch in range(1, args.epochs + 1):
            decay_lr(opt, epoch, args.epochs)
            order = rng.permutation(len(x_train))
            batches = [order[i:i + args.batch_size] for i in range(0, len(order), args.batch_size)]
            train_epoch(model, opt, x_train, target, batches, rng)
        mae = np.abs(predict(model, standardise(x[test])) - y[test]).mean()
        baseline = np.abs(spectral_peak_bpm(x[test]) - y[test]).mean()
        results.append((fold, rank, mae, baseline, time.perf_counter() - t1))
    gathered = dist.gather_object(results)
    if gathered is not None:  # rank 0
        rows = sorted(r for part in gathered for r in part)
        for fold, on_rank, mae, baseline, seconds in rows:
            print(f"fold {fold:2d} (subject {fold:2d} held out, rank {on_rank})  CNN MAE {mae:5.2f} "
                  f"bpm  spectral peak {baseline:5.2f} bpm  {seconds:.1f} s")
        maes = np.array([r[2] for r in rows])
        print(f"mean MAE over {len(rows)} folds: CNN {maes.mean():.2f} ± {maes.std():.2f} bpm, "
              f"spectral-peak baseline {np.mean([r[3] for r in rows]):.2f} bpm "
              f"({size} rank{'s' if size > 1 else ''})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["train", "folds"], default="train")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--subjects", type=int, default=None,
                        help="simulated subjects (default 60 for train, 15 for folds)")
    parser.add_argument("--test-subjects", type=int, default=15, help="held out in --mode train")
    parser.add_argument("--minutes", type=float, default=3.0, help="recording length per subject")
    parser.add_argument("--batch-size", type=int, default=64, help="global batch (all ranks)")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", default=None, help="write the trained weights here (rank 0)")
    parser.add_argument("--quick", action="store_true", help="tiny data set, one epoch (smoke test)")
    args = parser.parse_args()
    if args.subjects is None:
        args.subjects = 60 if args.mode == "train" else 15
    if args.quick:
        args.subjects, args.test_subjects, args.minutes, args.epochs = 4, 1, 1.0, 1
    dist.init()
    data_parallel(args) if args.mode == "train" else folds(args)


if __name__ == "__main__":
    main()
