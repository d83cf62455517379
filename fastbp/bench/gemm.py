"""fastbp's GEMM against numpy (and MKL through torch.mm when torch is installed), per CPU path."""
from __future__ import annotations

import sys
from typing import Any, Callable

import numpy as np

from .. import _core
from .. import functional as F
from .suite import GEMM_SUITE
from .timing import paired


def _geomean(xs) -> float:
    return float(np.exp(np.mean(np.log(xs)))) if len(xs) else float("nan")


def _numpy_mm(a, b) -> Callable[[], object]:
    return lambda: a @ b


def _torch_mm(torch, a, b) -> Callable[[], object]:
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    return lambda: torch.mm(ta, tb)


def names() -> list[str]:
    return [name for name, *_ in GEMM_SUITE]


def run(quick: bool = False, only: list[str] | None = None, peers: list[str] | None = None,
        err=sys.stderr) -> dict[str, Any]:
    torch: Any
    try:
        import torch
    except ImportError:
        torch = None
    rng = np.random.default_rng(2)
    start = _core.cpu_capability()
    pairs, block = (3, 2) if quick else (9, 3)
    found = {"numpy": np.__version__}
    if torch is not None:
        found["torch.mm"] = torch.__version__
    versions = {p: v for p, v in found.items() if peers is None or p in peers}
    rows = []
    try:
        for cap in _core.supported_capabilities()[::-1]:
            if quick and cap != start:
                continue
            _core.set_cpu_capability(cap)
            for name, M, N, K in GEMM_SUITE:
                if only is not None and name not in only:
                    continue
                print(f"[{cap}] {name}", file=err, flush=True)
                a = rng.standard_normal((M, K), dtype=np.float32)
                b = rng.standard_normal((K, N), dtype=np.float32)
                expect = a @ b
                got = F.matmul(a, b)
                assert np.abs(got - expect).max() <= 1e-4 * np.abs(expect).max()
                flop = 2.0 * M * N * K
                row: dict[str, Any] = {"name": name, "pass": cap, "peers": {}}
                for peer in versions:
                    fn = _numpy_mm(a, b) if peer == "numpy" else _torch_mm(torch, a, b)
                    tf, tp, ratio = paired(lambda: F.matmul(a, b), fn, pairs, block)
                    row.setdefault("fastbp_ms", tf * 1e3)
                    row.setdefault("fastbp_gflops", flop / tf / 1e9)
                    row["peers"][peer] = {"ms": tp * 1e3, "gflops": flop / tp / 1e9, "ratio": ratio}
                rows.append(row)
    finally:
        _core.set_cpu_capability(start)
    caps = sorted({r["pass"] for r in rows})
    geomean = {peer: {cap: _geomean([r["peers"][peer]["ratio"] for r in rows
                                     if r["pass"] == cap and not r["name"].startswith("sq")])
                      for cap in caps} for peer in versions}
    return {"suite": "gemm", "threads": _core.get_num_threads(), "capability": start,
            "peers": versions, "rows": rows, "geomean": geomean,
            "unit": "time ratio fastbp / peer (below 1: fastbp is faster); geomean over the layer shapes"}
