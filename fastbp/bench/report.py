"""Benchmark results as a table, a JSON file and a bar chart.

Results are a dict: suite, threads, capability, peers {name: version}, unit, geomean
{peer: {pass: ratio}}, best {pass: {geomean, worst, worst_layer}} (layers: against the faster
library peer of each layer), and rows [{name, pass, fastbp_ms, scratch_mib (layers: fastbp's
peak scratch memory), peers: {peer: {ms, ratio}}}], where a ratio is fastbp's time over the
peer's (below 1: fastbp is faster). `describe` adds the machine,
the date and the command.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import sys
from typing import Any


def describe(results: dict[str, Any], argv: list[str]) -> dict[str, Any]:
    from .. import _core
    from ..runtime import _cpu_model

    results = dict(results)
    results["fastbp"] = _core.__version__
    results["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results["command"] = " ".join(shlex.quote(a) for a in ["fastbp", *argv])
    results["machine"] = {"cpu": _cpu_model(), "logical_cpus": os.cpu_count(),
                          "system": f"{platform.system()} {platform.machine()}"}
    return results


def print_table(results: dict[str, Any], out=sys.stdout) -> None:
    peers = list(results["peers"])
    print(f"fastbp {results['fastbp']} on {results['machine']['cpu']}, {results['capability']}, "
          f"{results['threads']} threads, float32; {results['date']}", file=out)
    print(f"ratio = {results['unit']}; median of paired runs", file=out)
    scratch = results["suite"] == "layers"
    print(f"{'name':18s} {'pass':8s} {'fastbp ms':>10s} " + (f"{'MiB':>6s} " if scratch else "") +
          " ".join(f"{p[:11] + ' ms':>14s} {'ratio':>6s}" for p in peers) +
          (f" {'max rel err':>12s}" if results["suite"] == "layers" else ""), file=out)
    for row in results["rows"]:
        cells = []
        for p in peers:
            cell = row["peers"].get(p)
            cells.append(f"{cell['ms']:14.3f} {cell['ratio']:6.2f}" if cell else f"{'-':>14s} {'-':>6s}")
        err = f" {row['max_rel_err']:12.1e}" if "max_rel_err" in row else ""
        mib = f"{row['scratch_mib']:6.1f} " if scratch else ""
        print(f"{row['name']:18s} {row['pass']:8s} {row['fastbp_ms']:10.3f} " + mib + " ".join(cells) + err,
              file=out)
    for peer, by_pass in results["geomean"].items():
        figures = ", ".join(f"{pas} {r:.2f}" for pas, r in by_pass.items() if r == r)
        if figures:
            print(f"geomean time ratio vs {peer}: {figures}", file=out)
    for pas, b in results.get("best", {}).items():
        print(f"{pas} against the faster of torch and onnxruntime per layer: geomean "
              f"{b['geomean']:.2f}, worst {b['worst']:.2f} ({b['worst_layer']})", file=out)


def write_json(results: dict[str, Any], path: str) -> None:
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")


def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def plot(results: dict[str, Any], path: str) -> None:
    """One panel per pass; per row a bar per peer of fastbp's time ratio, log scale. The numpy
    reference is left out when a library peer ran: it is a correctness oracle, not a rival."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    rows_all = results["rows"]
    passes = list(dict.fromkeys(r["pass"] for r in rows_all))
    peers = [p for p in results["peers"] if any(p in r["peers"] for r in rows_all)]
    if len(peers) > 1 and "numpy" in peers and results["suite"] == "layers":
        peers.remove("numpy")
    names = list(dict.fromkeys(r["name"] for r in rows_all))
    colors = {p: f"C{i}" for i, p in enumerate(peers)}
    fig, axes = plt.subplots(1, len(passes), figsize=(5.5 * len(passes), 0.45 * len(names) + 2.0),
                             sharey=True, squeeze=False)
    height = 0.8 / max(len(peers), 1)
    for ax, pas in zip(axes[0], passes):
        rows = {r["name"]: r for r in rows_all if r["pass"] == pas}
        for k, peer in enumerate(peers):
            ys, xs = [], []
            for i, name in enumerate(names):
                cell = rows.get(name, {}).get("peers", {}).get(peer)
                if cell:
                    ys.append(i + (k - (len(peers) - 1) / 2) * height)
                    xs.append(cell["ratio"])
            # bars grow from 1 to the ratio: leftwards where fastbp is faster
            ax.barh(ys, [x - 1 for x in xs], height=height, left=1, color=colors[peer],
                    label=f"vs {peer}")
            for y, x in zip(ys, xs):
                ax.text(x, y, f" {x:.2f} " if x >= 1 else f"{x:.2f} ", va="center",
                        ha="left" if x >= 1 else "right", fontsize=6.5)
        ax.axvline(1.0, color="black", linewidth=0.8)
        ax.set_xscale("log")
        lo = min([c["ratio"] for r in rows.values() for p, c in r["peers"].items() if p in peers] + [1])
        hi = max([c["ratio"] for r in rows.values() for p, c in r["peers"].items() if p in peers] + [1])
        ax.set_xlim(lo / 1.6, hi * 1.6)
        ticks = [2.0 ** e for e in range(-12, 13) if lo / 1.6 <= 2.0 ** e <= hi * 1.6]
        ax.xaxis.set_major_locator(ticker.FixedLocator(ticks))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_title(pas)
        ax.set_xlabel("fastbp time / peer time (left of 1: fastbp faster)")
        ax.grid(axis="x", which="both", alpha=0.3)
    axes[0][0].set_yticks(range(len(names)), names)
    axes[0][0].invert_yaxis()
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[p]) for p in peers]
    fig.legend(handles, [f"vs {p} {results['peers'][p]}" for p in peers], loc="upper right",
               ncol=len(peers), fontsize="small")
    fig.suptitle(f"fastbp {results['fastbp']}, {results['machine']['cpu']}, {results['threads']} "
                 f"threads, {results['capability']}, float32 ({results['date']})",
                 x=0.01, ha="left", fontsize="medium")
    fig.text(0.01, 0.005, results["command"], fontsize="x-small", family="monospace")
    fig.tight_layout(rect=(0, 0.02, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)
