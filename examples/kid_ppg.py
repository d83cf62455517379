"""KID-PPG (Kechris et al., 2024) on fastbp, on the authors' real PPG-DaLiA recording (S6, stairs).

The model, its pretrained weights and the recording are read from the authors' pip wheel
`kid-ppg` 0.0.4 (GPL-3.0; downloaded once into a cache, never installed, no TensorFlow). The
pipeline, all on fastbp: z-score each window, fit KID-PPG's adaptive linear filter on the
recording (conv2d forward and backward, SGD) to remove the motion artifacts the accelerometer
explains, pair consecutive windows, and estimate the heart rate with the published network
(conv1d, attention, LayerNorm). The classical spectral-peak estimate on the raw and on the
filtered PPG is printed beside it, each against the ECG reference.

    python examples/kid_ppg.py [--wheel PATH | --cache DIR] [--seed 0] [--seeds 1] [--steps 1000]
                               [--threads N] [--plot FILE] [--finetune [--epochs 10]]
    python examples/kid_ppg.py predict --pairs IN.npy --out OUT.npy [--wheel PATH | --cache DIR]

`predict` reads pairs (N, 256, 2) float32 in KID-PPG's layout ([..., 0] window n, [..., 1]
window n + 1) and writes (N, 2) float32: the mean and std of the heart rate per pair (bpm),
from the published weights in eval mode.
"""
import argparse
import sys
import time

import numpy as np

import fastbp
from kidppg import (adaptive_filter, architecture, finetune, keras_weights, material, network,
                    pipeline, plot)


def add_material_options(parser):
    parser.add_argument("--wheel", help="path of kid_ppg-0.0.4-py3-none-any.whl (else cached)")
    parser.add_argument("--cache", help=f"download folder (default {material.default_cache_dir()})")
    parser.add_argument("--threads", type=int, help="fastbp threads (default: all cores)")


def read_material(args, demo: bool = True):
    """(windows, heart rate, state_dict); a missing or altered wheel ends the script clearly."""
    try:
        wheel = material.find_wheel(args.wheel, args.cache)
        x, y = material.load_demo(wheel) if demo else (None, None)
        state = keras_weights.load_state_dict(wheel)
    except (material.MaterialError, FileNotFoundError) as exc:
        sys.exit(f"kid_ppg: {exc}")
    return x, y, state


def timed(f, *args, **kwargs):
    t0 = time.perf_counter()
    result = f(*args, **kwargs)
    return result, time.perf_counter() - t0


def predict_main(argv):
    parser = argparse.ArgumentParser(prog="kid_ppg.py predict",
                                     description="KID-PPG mean and std for pairs of PPG windows")
    parser.add_argument("--pairs", required=True, help="input .npy, (N, 256, 2) float32")
    parser.add_argument("--out", required=True, help="output .npy, (N, 2) float32: mean, std")
    add_material_options(parser)
    args = parser.parse_args(argv)
    if args.threads is not None:
        fastbp.set_num_threads(args.threads)
    try:
        pairs = np.load(args.pairs, allow_pickle=False)
        network.check_pairs(pairs)
    except (OSError, ValueError, TypeError) as exc:
        sys.exit(f"kid_ppg predict: --pairs {args.pairs}: {exc}")
    _, _, state = read_material(args, demo=False)
    mean, std = network.predict(network.build_network(state), pairs.astype(np.float32, copy=False))
    np.save(args.out, np.stack([mean, std], axis=1).astype(np.float32))
    print(f"{len(pairs)} pairs -> {args.out} (mean, std; bpm)")


def run_main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_material_options(parser)
    parser.add_argument("--seed", type=int, default=0, help="filter initialisation")
    parser.add_argument("--seeds", type=int, default=1, help="run seeds seed, seed+1, ...")
    parser.add_argument("--steps", type=int, default=adaptive_filter.STEPS, help="filter SGD steps")
    parser.add_argument("--plot", metavar="FILE", help="heart-rate traces of the first seed (PNG)")
    parser.add_argument("--finetune", action="store_true",
                        help="fine-tune on the first half of the recording, score the second")
    parser.add_argument("--epochs", type=int, default=finetune.EPOCHS, help="fine-tuning epochs")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.steps < 1 or args.epochs < 0:
        parser.error("--seeds and --steps must be >= 1, --epochs >= 0")
    if args.plot:
        try:
            plot.require_matplotlib()
        except ImportError as exc:
            parser.error(str(exc))
    if args.threads is not None:
        fastbp.set_num_threads(args.threads)

    (x, y, state), seconds = timed(read_material, args)
    model = network.build_network(state)
    print(f"{len(x)} windows of PPG-DaLiA S6 stairs, heart rate {y.min():.0f}-{y.max():.0f} bpm; "
          f"{sum(v.size for v in state.values()):,} weights; read in {seconds:.2f} s")
    print(f"fastbp {fastbp.__version__}, {fastbp.get_num_threads()} threads, "
          f"{fastbp.cpu_capability()} kernels")

    x_norm, mean, std = pipeline.zscore(x)
    raw_pairs, target = pipeline.temporal_pairs(x[:, 0].astype(np.float32), y)
    raw_peak = pipeline.spectral_peak_bpm(x[1:, 0])
    raw_net, _ = network.predict(model, raw_pairs)
    print(f"{len(target)} pairs (windows with a predecessor). MAE vs ECG on the raw PPG: "
          f"KID-PPG {pipeline.mae(raw_net, target):.2f} bpm, spectral peak "
          f"{pipeline.mae(raw_peak, target):.2f} bpm")

    results = []
    for seed in range(args.seed, args.seed + args.seeds):
        (filtered, _, losses), t_filter = timed(adaptive_filter.fit, x_norm, steps=args.steps,
                                                seed=seed)
        ppg = pipeline.denormalise(filtered, mean[:, 0], std[:, 0])
        pairs, _ = pipeline.temporal_pairs(ppg.astype(np.float32), y)
        (hr_mean, hr_std), t_net = timed(network.predict, model, pairs)
        peak = pipeline.spectral_peak_bpm(ppg[1:])
        mae = pipeline.mae(hr_mean, target)
        results.append(dict(seed=seed, pairs=pairs, mean=hr_mean, std=hr_std, peak=peak, mae=mae))
        print(f"seed {seed}: adaptive filter {args.steps} steps {t_filter:.1f} s (spectral loss "
              f"{losses[0]:.4g} -> {losses[-1]:.4g}), network {t_net * 1e3:.0f} ms")
        print(f"  MAE vs ECG: KID-PPG {mae:.2f} bpm (mean std {hr_std.mean():.2f}); spectral "
              f"peak on the filtered PPG {pipeline.mae(peak, target):.2f} bpm")
    if len(results) > 1:
        maes = [r["mae"] for r in results]
        print(f"KID-PPG MAE over {len(maes)} seeds: median {np.median(maes):.2f} bpm, "
              f"{min(maes):.2f}-{max(maes):.2f} (" + ", ".join(f"{m:.2f}" for m in maes) + ")")

    first = results[0]
    tuned = None
    if args.finetune:
        (train_pairs, train_y), (test_pairs, test_y) = finetune.split_halves(first["pairs"], target)
        before, _ = network.predict(model, test_pairs)
        tuned_model = network.build_network(state)
        losses, t_tune = timed(finetune.finetune, tuned_model, train_pairs, train_y,
                               epochs=args.epochs, seed=first["seed"])
        tuned, _ = network.predict(tuned_model, test_pairs)
        print(f"fine-tune (seed {first['seed']}'s filter): Adam lr {architecture.ADAM_LR:g}, "
              f"Gaussian NLL, {args.epochs} epochs of {len(train_y)} pairs (first half), batch "
              f"{finetune.BATCH_SIZE}, {t_tune:.1f} s" + (
                  f"; NLL {losses[0]:.3f} -> {losses[-1]:.3f}" if len(losses) else ""))
        print(f"  MAE on the second half ({len(test_y)} pairs): published weights "
              f"{pipeline.mae(before, test_y):.2f} bpm, fine-tuned "
              f"{pipeline.mae(tuned, test_y):.2f} bpm")

    if args.plot:
        plot.heart_rate_figure(
            args.plot, target, first["mean"], first["std"],
            {"spectral peak, raw PPG": raw_peak, "spectral peak, filtered PPG": first["peak"]},
            f"KID-PPG on fastbp, PPG-DaLiA S6 stairs (filter seed {first['seed']}): "
            f"MAE {first['mae']:.2f} bpm", finetuned=tuned,
            finetune_start=None if tuned is None else len(target) - len(tuned))
        print(f"plot: {args.plot}")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["predict"]:
        predict_main(argv[1:])
    else:
        run_main(argv)


if __name__ == "__main__":
    main()
