"""`python -m fastbp bench`: fastbp against its peers on the public suite, side by side.

Timing method (shared vCPUs are noisy, so only ratios measured in one run mean anything): A and B
run in alternating blocks (AB, BA, ...). Each block starts with a short rest, so the other
library's spinning worker threads park, then one untimed call, then a few timed calls whose
minimum counts. A figure is the median over the pairs of the per-pair ratio.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

from . import _core, functional as F, reference as R

# name, x shape, weight shape, stride, padding  (float32, NCHW / NCL)
CONV_SUITE = [
    ("lenet-c1", (64, 1, 28, 28), (32, 1, 5, 5), 1, 2),
    ("lenet-c2", (64, 32, 14, 14), (64, 32, 5, 5), 1, 2),
    ("cifar-3x3", (32, 64, 32, 32), (64, 64, 3, 3), 1, 1),
    ("r18-c2", (8, 64, 56, 56), (64, 64, 3, 3), 1, 1),
    ("r18-down", (8, 64, 56, 56), (128, 64, 3, 3), 2, 1),
    ("r18-c4", (8, 256, 14, 14), (256, 256, 3, 3), 1, 1),
    ("pw-1x1", (8, 256, 14, 14), (1024, 256, 1, 1), 1, 0),
    ("stem-7x7", (8, 3, 224, 224), (64, 3, 7, 7), 2, 3),
    ("ppg-c1", (64, 4, 256), (32, 4, 9), 1, 4),
    ("ppg-c2", (64, 32, 128), (64, 32, 9), 1, 4),
]
# name, batch, in_features, out_features
LINEAR_SUITE = [("mlp", 64, 784, 256), ("fc-4096", 256, 4096, 1024), ("gemv", 1, 1024, 1024)]
# name, M, N, K: C[M,N] = A[M,K] B[K,N], float32 -- squares and the layers' own GEMMs
GEMM_SUITE = [
    ("sq256", 256, 256, 256), ("sq1024", 1024, 1024, 1024), ("sq2048", 2048, 2048, 2048),
    ("conv-r18c2", 64, 3136, 576), ("conv-r18c4", 256, 196, 2304), ("conv-lenet2", 64, 196, 800),
    ("conv-dw-bwd", 256, 2304, 196), ("fc-bwd", 1024, 4096, 256), ("skinny", 32, 4096, 4096),
]


def paired(fa, fb, pairs=9, block=3, rest=0.15):
    """(median time of fa, median time of fb, median of per-pair ratios ta/tb)."""
    ta, tb, ratios = [], [], []
    for i in range(pairs):
        t = [0.0, 0.0]
        for j in ((0, 1) if i % 2 == 0 else (1, 0)):
            fn = fa if j == 0 else fb
            time.sleep(rest)
            t0 = time.perf_counter()
            fn()
            # calls under 20 ms get at least 3 timed runs: one alone is at the mercy of the noise
            reps = block if time.perf_counter() - t0 > 0.02 else max(block, 3)
            best = float("inf")
            for _ in range(reps):
                t0 = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - t0)
            t[j] = best
        ta.append(t[0])
        tb.append(t[1])
        ratios.append(t[0] / t[1])
    return statistics.median(ta), statistics.median(tb), statistics.median(ratios)


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch


def _rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30)) if a.size else 0.0


def _layer_cases(torch):
    """[(name, {'fastbp'|'numpy'|'torch': (fwd, bwd)}, check)] for every layer of the suite."""
    rng = np.random.default_rng(0)
    cases = [_conv_case(rng, torch, *layer) for layer in CONV_SUITE]
    return cases + [_linear_case(rng, torch, *layer) for layer in LINEAR_SUITE]


def _conv_case(rng, torch, name, xs, ws, s, p):
    x = rng.standard_normal(xs, dtype=np.float32)
    w = rng.standard_normal(ws, dtype=np.float32) * 0.1
    b = rng.standard_normal(ws[0], dtype=np.float32)
    one_d = len(xs) == 3
    conv, conv_bwd = (F.conv1d, F.conv1d_backward) if one_d else (F.conv2d, F.conv2d_backward)
    rconv, rconv_bwd = (R.conv1d, R.conv1d_backward) if one_d else (R.conv2d, R.conv2d_backward)
    dy = rng.standard_normal(conv(x, w, b, stride=s, padding=p).shape, dtype=np.float32)
    fns = {
        "fastbp": (lambda: conv(x, w, b, stride=s, padding=p),
                   lambda: conv_bwd(dy, x, w, stride=s, padding=p)),
        "numpy": (lambda: rconv(x, w, b, stride=s, padding=p),
                  lambda: rconv_bwd(dy, x, w, stride=s, padding=p)),
    }
    if torch is not None:
        tconv = torch.nn.functional.conv1d if one_d else torch.nn.functional.conv2d
        fns["torch"] = _torch_fns(torch, tconv, (x, w, b), dy, dict(stride=s, padding=p))
    return "conv:" + name, fns, lambda: _max_err(fns["fastbp"], fns["numpy"])


def _linear_case(rng, torch, name, n, i, o):
    x = rng.standard_normal((n, i), dtype=np.float32)
    w = rng.standard_normal((o, i), dtype=np.float32) * 0.05
    b = rng.standard_normal(o, dtype=np.float32)
    dy = rng.standard_normal((n, o), dtype=np.float32)
    fns = {
        "fastbp": (lambda: F.linear(x, w, b), lambda: F.linear_backward(dy, x, w)),
        "numpy": (lambda: R.linear(x, w, b), lambda: R.linear_backward(dy, x, w)),
    }
    if torch is not None:
        fns["torch"] = _torch_fns(torch, torch.nn.functional.linear, (x, w, b), dy, {})
    return "linear:" + name, fns, lambda: _max_err(fns["fastbp"], fns["numpy"])


def _max_err(ours, ref):
    """Largest relative error of forward and every gradient against the reference."""
    (f, b), (rf, rb) = ours, ref
    return max(_rel_err(a, r) for a, r in zip((f(), *b()), (rf(), *rb())))


def _torch_fns(torch, op, arrays, dy, kwargs):
    tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in arrays)
    tdy = torch.from_numpy(dy)
    ty = op(tx, tw, tb, **kwargs)

    def fwd():
        with torch.no_grad():
            op(tx, tw, tb, **kwargs)

    return fwd, lambda: torch.autograd.grad(ty, (tx, tw, tb), tdy, retain_graph=True)


def _geomean(xs):
    return float(np.exp(np.mean(np.log(xs)))) if xs else float("nan")


def run_layers(quick=False, out=sys.stdout, err=sys.stderr):
    torch = _torch()
    peers = ["numpy"] + (["torch"] if torch is not None else [])
    # the numpy reference is slow: fewer, shorter pairs against it
    settings = {"numpy": dict(pairs=3, block=1, rest=0.15),
                "torch": dict(pairs=3 if quick else 9, block=2 if quick else 3,
                              rest=0.05 if quick else 0.15)}
    cases = _layer_cases(torch)
    header = (f"{'layer':18s} {'pass':4s} {'fastbp ms':>10s} " +
              " ".join(f"{p + ' ms':>10s} {'speedup':>8s}" for p in peers) + f" {'max rel err':>12s}")
    rows, speedups = [], {p: {"fwd": [], "bwd": []} for p in peers}
    for idx, (name, fns, check) in enumerate(cases, 1):
        print(f"[{idx}/{len(cases)}] {name}", file=err, flush=True)
        error = check()
        for k, pas in enumerate(("fwd", "bwd")):
            cells, t_fast = [], None
            for peer in peers:
                tf, tp, r = paired(fns["fastbp"][k], fns[peer][k], **settings[peer])
                t_fast = tf if t_fast is None or peer == "torch" else t_fast
                cells.append(f"{tp * 1e3:10.2f} {1 / r:7.2f}x")
                speedups[peer][pas].append(1 / r)
            rows.append(f"{name:18s} {pas:4s} {t_fast * 1e3:10.2f} " + " ".join(cells) +
                        f" {error:12.1e}")
    print(f"fastbp {_core.__version__}, {_core.cpu_capability()}, {_core.get_num_threads()} threads, "
          f"float32; speedup = peer time / fastbp time, median of paired runs", file=out)
    print(header, file=out)
    print("\n".join(rows), file=out)
    for peer in peers:
        print(f"geomean speedup vs {peer}: forward {_geomean(speedups[peer]['fwd']):.2f}x, "
              f"backward {_geomean(speedups[peer]['bwd']):.2f}x", file=out)
    return speedups


def run_gemm(quick=False, out=sys.stdout, err=sys.stderr):
    torch = _torch()
    rng = np.random.default_rng(2)
    start = _core.cpu_capability()
    kw = dict(pairs=3, block=2, rest=0.05) if quick else dict(pairs=9, block=3, rest=0.15)
    print(f"fastbp {_core.__version__}, {_core.get_num_threads()} threads, float32; GFLOP/s, "
          f"speed ratio = peer time / fastbp time (median of paired runs)", file=out)
    peers = ["numpy"] + (["torch.mm (MKL)"] if torch is not None else [])
    print(f"{'path':7s} {'shape':12s} {'fastbp':>8s} " +
          " ".join(f"{p:>15s} {'ratio':>6s}" for p in peers), file=out)
    try:
        for cap in _core.supported_capabilities()[::-1]:
            if quick and cap != start:
                continue
            _core.set_cpu_capability(cap)
            ratios = {p: [] for p in peers}
            for name, M, N, K in GEMM_SUITE:
                print(f"[{cap}] {name}", file=err, flush=True)
                a = rng.standard_normal((M, K), dtype=np.float32)
                b = rng.standard_normal((K, N), dtype=np.float32)
                assert _rel_err(F.matmul(a, b), a @ b) < 1e-4
                flop = 2.0 * M * N * K
                cells, gf = [], None
                for p in peers:
                    peer = (lambda: a @ b) if p == "numpy" else _mm(torch, a, b)
                    tf, tp, r = paired(lambda: F.matmul(a, b), peer, **kw)
                    gf = flop / tf / 1e9 if gf is None else gf
                    cells.append(f"{flop / tp / 1e9:15.1f} {1 / r:5.2f}x")
                    ratios[p].append((name, 1 / r))
                print(f"{cap:7s} {name:12s} {gf:8.1f} " + " ".join(cells), file=out)
            for p in peers:
                shaped = [r for n, r in ratios[p] if not n.startswith("sq")]
                print(f"{cap:7s} geomean of layer shapes vs {p}: {_geomean(shaped):.2f}x", file=out)
    finally:
        _core.set_cpu_capability(start)


def _mm(torch, a, b):
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    return lambda: torch.mm(ta, tb)


def _set_threads(n, argv):
    """Run with n threads everywhere: numpy's BLAS reads its thread count at import, so the
    process re-executes itself once with the variables set."""
    fastbp_threads = str(n)
    if os.environ.get("FASTBP_BENCH_THREADS") != fastbp_threads:
        env = dict(os.environ, FASTBP_BENCH_THREADS=fastbp_threads, OPENBLAS_NUM_THREADS=fastbp_threads,
                   OMP_NUM_THREADS=fastbp_threads, MKL_NUM_THREADS=fastbp_threads)
        sys.stdout.flush()
        os.execve(sys.executable, [sys.executable, "-m", "fastbp", *argv], env)
    _core.set_num_threads(n)
    torch = _torch()
    if torch is not None:
        torch.set_num_threads(n)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m fastbp")
    sub = parser.add_subparsers(dest="command", required=True)
    bench = sub.add_parser("bench", help="time fastbp against numpy and PyTorch (when installed)")
    bench.add_argument("suite", nargs="?", default="layers", choices=["layers", "gemm"],
                       help="layers: the public conv/linear suite, forward and backward "
                            "(default); gemm: GEMM GFLOP/s per shape and CPU path")
    bench.add_argument("--quick", action="store_true", help="fewer, shorter timing pairs")
    bench.add_argument("--threads", type=int, default=None,
                       help="threads for fastbp and its peers (default: fastbp's default)")
    sub.add_parser("config", help="show how fastbp was built and what it runs on")
    args = parser.parse_args(argv)
    if args.command == "config":
        from . import show_config
        show_config()
        return 0
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be >= 1")
        _set_threads(args.threads, argv)
    elif (torch := _torch()) is not None:
        torch.set_num_threads(_core.get_num_threads())
    if args.suite == "gemm":
        run_gemm(args.quick)
    else:
        run_layers(args.quick)
    return 0
