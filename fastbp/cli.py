"""The `fastbp` command (also `python -m fastbp`): `fastbp bench` and `fastbp config`."""
from __future__ import annotations

import argparse
import json
import os
import sys


def _rerun_with_threads(n: int, argv: list[str]) -> None:
    """numpy's BLAS reads its thread count at import, so the process re-executes itself once
    with the thread variables set. The child drops the current folder from sys.path, so that a
    fastbp source checkout there does not hide the installed package."""
    env = dict(os.environ, FASTBP_BENCH_THREADS=str(n), OPENBLAS_NUM_THREADS=str(n),
               OMP_NUM_THREADS=str(n), MKL_NUM_THREADS=str(n))
    code = "import sys; del sys.path[0]; from fastbp.cli import main; sys.exit(main(sys.argv[1:]))"
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-c", code, *argv], env)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fastbp", description="fastbp's command line")
    sub = parser.add_subparsers(dest="command", required=True)
    bench = sub.add_parser("bench", help="time fastbp against numpy, PyTorch and ONNX Runtime "
                                         "(those installed), side by side")
    bench.add_argument("suite", nargs="?", default="layers", choices=["layers", "gemm"],
                       help="layers: the public conv/linear suite, forward and backward "
                            "(default); gemm: GEMM GFLOP/s per shape and CPU path")
    bench.add_argument("--quick", action="store_true", help="fewer, shorter timing pairs")
    bench.add_argument("--only", metavar="NAMES",
                       help="comma-separated layers or shapes to run, e.g. conv:ppg-c1,linear:mlp")
    bench.add_argument("--threads", type=int, default=None,
                       help="threads for fastbp and its peers (default: fastbp's default)")
    bench.add_argument("--peers", metavar="NAMES",
                       help="comma-separated peers to time against (default: all installed of "
                            "numpy, torch, onnxruntime); the numpy reference still checks results")
    bench.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    bench.add_argument("--plot", metavar="FILE",
                       help="also draw a bar chart of the time ratios (PNG; needs matplotlib)")
    config = sub.add_parser("config", help="show how fastbp was built and what it runs on")
    config.add_argument("--json", action="store_true", help="print it as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser()
    args = parser.parse_args(argv)
    from . import _core, show_config
    from .bench import gemm, layers, report

    if args.command == "config":
        if args.json:
            print(json.dumps(show_config(mode="dicts"), indent=1))
        else:
            show_config()
        return 0
    if args.plot and not report.have_matplotlib():
        parser.error("--plot needs matplotlib, which is not installed: "
                     "pip install matplotlib (or fastbp's extra: pip install 'fastbp[bench]')")
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads must be >= 1")
        if os.environ.get("FASTBP_BENCH_THREADS") != str(args.threads):
            _rerun_with_threads(args.threads, argv)
        _core.set_num_threads(args.threads)
    threads = _core.get_num_threads()
    try:
        import torch
        torch.set_num_threads(threads)
    except ImportError:
        pass
    only = None if args.only is None else [n.strip() for n in args.only.split(",") if n.strip()]
    suite = gemm if args.suite == "gemm" else layers
    unknown = sorted(set(only or ()) - set(suite.names()))
    if unknown:
        parser.error(f"--only: unknown {args.suite} {', '.join(unknown)}; "
                     f"choose from {', '.join(suite.names())}")
    peers = None if args.peers is None else [n.strip() for n in args.peers.split(",") if n.strip()]
    results = suite.run(args.quick, only=only, peers=peers)
    results = report.describe(results, argv)
    report.print_table(results)
    if args.json:
        report.write_json(results, args.json)
        print(f"wrote {args.json}")
    if args.plot:
        report.plot(results, args.plot)
        print(f"wrote {args.plot}")
    return 0
