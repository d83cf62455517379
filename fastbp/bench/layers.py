"""fastbp against its peers on every layer of the public suite, forward and backward."""
from __future__ import annotations

import sys
from typing import Any

import numpy as np

from .. import _core
from .. import functional as F
from . import peers as P
from .suite import CONV_SUITE, LINEAR_SUITE, ConvLayer, LinearLayer
from .timing import paired

PASSES = ("forward", "backward")


def _rel_err(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30)) if a.size else 0.0


def _max_err(ours, ref) -> float:
    """Largest relative error of the forward and of every gradient against the reference."""
    (f, b), (rf, rb) = ours, ref
    return max(_rel_err(a, r) for a, r in zip((f(), *b()), (rf(), *rb())))


def _conv_case(rng, layer: ConvLayer):
    x = rng.standard_normal(layer.x, dtype=np.float32)
    w = rng.standard_normal(layer.weight, dtype=np.float32) * 0.1
    b = rng.standard_normal(layer.weight[0], dtype=np.float32)
    kwargs = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                  groups=layer.groups)
    conv = F.conv1d if len(layer.x) == 3 else F.conv2d
    dy = rng.standard_normal(conv(x, w, b, **kwargs).shape, dtype=np.float32)
    return lambda peer, threads: P.conv_fns(peer, x, w, b, dy, kwargs, threads)


def _linear_case(rng, layer: LinearLayer):
    x = rng.standard_normal((layer.batch, layer.in_features), dtype=np.float32)
    w = rng.standard_normal((layer.out_features, layer.in_features), dtype=np.float32) * 0.05
    b = rng.standard_normal(layer.out_features, dtype=np.float32)
    dy = rng.standard_normal((layer.batch, layer.out_features), dtype=np.float32)
    return lambda peer, threads: P.linear_fns(peer, x, w, b, dy, threads)


def cases() -> list[tuple[str, Any]]:
    """[(name, build)] over the public suite. build() makes the layer's inputs (seeded per
    layer) and returns make(peer, threads) -> (forward, backward | None)."""
    layers: list[tuple[str, Any, Any]] = [("conv:" + c.name, _conv_case, c) for c in CONV_SUITE]
    layers += [("linear:" + c.name, _linear_case, c) for c in LINEAR_SUITE]
    return [(name, lambda case=case, layer=layer, seed=seed: case(np.random.default_rng(seed), layer))
            for seed, (name, case, layer) in enumerate(layers)]


def _geomean(xs) -> float:
    return float(np.exp(np.mean(np.log(xs)))) if len(xs) else float("nan")


def names() -> list[str]:
    return [name for name, _ in cases()]


def run(quick: bool = False, only: list[str] | None = None, peers: list[str] | None = None,
        err=sys.stderr) -> dict[str, Any]:
    """Time every layer (or those named in `only`); return the results (their layout is in
    fastbp.bench.report)."""
    threads = _core.get_num_threads()
    versions = P.available()
    if peers is not None:
        missing = sorted(set(peers) - set(versions))
        if missing:
            raise SystemExit(f"fastbp bench: peers not installed or unknown: {', '.join(missing)}")
        versions = {p: v for p, v in versions.items() if p in peers}
    peers = list(versions)
    # --quick runs fewer pairs, never shorter rests: a peer's spinning threads (ONNX Runtime's,
    # OpenBLAS's) would steal the core from the next block. The numpy reference is slow: fewer,
    # shorter pairs against it.
    settings = {peer: (3, 2) if quick else (9, 3) for peer in peers}  # (pairs, block)
    settings["numpy"] = (3, 1)
    rows = []
    all_cases = [(name, build) for name, build in cases() if only is None or name in only]
    for idx, (name, build) in enumerate(all_cases, 1):
        print(f"[{idx}/{len(all_cases)}] {name}", file=err, flush=True)
        make = build()
        fns = {peer: make(peer, threads) for peer in dict.fromkeys(["fastbp", "numpy", *peers])}
        error = _max_err(fns["fastbp"], fns["numpy"])
        for k, pas in enumerate(PASSES):
            _core.reset_scratch_peak()
            fns["fastbp"][k]()
            scratch = _core.scratch_peak() / 2**20  # MiB of fastbp's own scratch in one call
            row: dict[str, Any] = {"name": name, "pass": pas, "max_rel_err": error, "peers": {},
                                   "scratch_mib": scratch}
            for peer in peers:
                if fns[peer][k] is None:
                    continue  # e.g. ONNX Runtime has no backward
                peer_err = _rel_err(fns[peer][0](), fns["numpy"][0]()) if k == 0 else None
                tf, tp, ratio = paired(fns["fastbp"][k], fns[peer][k], *settings[peer])
                row["peers"][peer] = {"ms": tp * 1e3, "ratio": ratio, "fastbp_ms": tf * 1e3}
                if peer_err is not None and peer_err > 1e-3:
                    row["peers"][peer]["warning"] = f"output differs from the reference by {peer_err:.1e}"
            if row["peers"]:
                row["fastbp_ms"] = min(p["fastbp_ms"] for p in row["peers"].values())
            else:  # no peer has this pass (only ONNX Runtime asked for, which has no backward)
                row["fastbp_ms"] = paired(fns["fastbp"][k], fns["fastbp"][k], 3, 2)[0] * 1e3
            rows.append(row)
    geomean = {peer: {pas: _geomean([r["peers"][peer]["ratio"] for r in rows
                                     if r["pass"] == pas and peer in r["peers"]])
                      for pas in PASSES} for peer in peers}
    return {"suite": "layers", "threads": threads, "capability": _core.cpu_capability(),
            "peers": versions, "rows": rows, "geomean": geomean, "best": best_peer(rows),
            "unit": "time ratio fastbp / peer (below 1: fastbp is faster)"}


def best_peer(rows) -> dict[str, Any]:
    """Per pass, fastbp against the fastest library peer of each layer (the numpy reference and
    the Cython course layer are not rivals): geomean and worst ratio."""
    summary: dict[str, Any] = {}
    for pas in PASSES:
        ratios = []
        for r in rows:
            rivals = [c["ratio"] for p, c in r["peers"].items()
                      if r["pass"] == pas and p in ("torch", "onnxruntime")]
            if rivals:
                ratios.append((max(rivals), r["name"]))  # the largest ratio: the fastest peer
        if ratios:
            worst = max(ratios)
            summary[pas] = {"geomean": _geomean([x for x, _ in ratios]), "worst": worst[0],
                            "worst_layer": worst[1]}
    return summary
