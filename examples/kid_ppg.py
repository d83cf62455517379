"""KID-PPG (Kechris et al., 2024) on fastbp, on the authors' real PPG-DaLiA recording (S6, stairs).

The model, its pretrained weights and the recording are read from the authors' pip wheel
`kid-ppg` 0.0.4 (GPL-3.0; downloaded once into a cache, never installed, no TensorFlow). The
pipeline: z-score each window, fit KID-PPG's adaptive linear filter on the recording with fastbp
(conv2d forward and backward, SGD) to remove the motion artifacts the accelerometer explains,
pair consecutive windows, and estimate the heart rate; the classical spectral-peak estimate on
the raw and on the filtered PPG is printed beside it, each against the ECG reference.

    python examples/kid_ppg.py [--wheel PATH | --cache DIR] [--seed 0] [--seeds 1] [--steps 1000]
                                  [--threads N]
"""
import argparse
import sys
import time

import fastbp
from kidppg import adaptive_filter, keras_weights, material, network, pipeline


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", help="path of kid_ppg-0.0.4-py3-none-any.whl (else cached)")
    parser.add_argument("--cache", help=f"download folder (default {material.default_cache_dir()})")
    parser.add_argument("--seed", type=int, default=0, help="filter initialisation")
    parser.add_argument("--seeds", type=int, default=1, help="run seeds seed, seed+1, ...")
    parser.add_argument("--steps", type=int, default=adaptive_filter.STEPS, help="filter SGD steps")
    parser.add_argument("--threads", type=int, help="fastbp threads (default: all cores)")
    args = parser.parse_args(argv)

    if args.threads is not None:
        fastbp.set_num_threads(args.threads)
    t0 = time.perf_counter()
    try:
        wheel = material.find_wheel(args.wheel, args.cache)
        x, y = material.load_demo(wheel)
        state = keras_weights.load_state_dict(wheel)
    except (material.MaterialError, FileNotFoundError) as exc:
        sys.exit(f"kid_ppg: {exc}")
    print(f"{len(x)} windows of PPG-DaLiA S6 stairs, heart rate {y.min():.0f}-{y.max():.0f} bpm; "
          f"{sum(v.size for v in state.values()):,} weights; read in {time.perf_counter() - t0:.2f} s")

    x_norm, mean, std = pipeline.zscore(x)
    target = y[1:]  # each pair is labelled with its second window
    raw_mae = pipeline.mae(pipeline.spectral_peak_bpm(x[1:, 0]), target)
    missing = network.missing_layers()
    for seed in range(args.seed, args.seed + args.seeds):
        t1 = time.perf_counter()
        filtered, _, losses = adaptive_filter.fit(x_norm, steps=args.steps, seed=seed)
        ppg = pipeline.denormalise(filtered, mean[:, 0], std[:, 0])
        seconds = time.perf_counter() - t1
        peak_mae = pipeline.mae(pipeline.spectral_peak_bpm(ppg[1:]), target)
        print(f"seed {seed}: adaptive filter {args.steps} steps in {seconds:.1f} s "
              f"(spectral loss {losses[0]:.4g} -> {losses[-1]:.4g})")
        print(f"  MAE vs ECG: spectral peak raw PPG {raw_mae:.2f} bpm, filtered PPG {peak_mae:.2f} bpm")
        if missing:
            print(f"  KID-PPG network: not on fastbp yet (fastbp.nn lacks {', '.join(missing)})")


if __name__ == "__main__":
    main()
