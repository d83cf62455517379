"""Timing two callables side by side on a shared, noisy machine.

Only ratios measured in one run mean anything here. A and B run in alternating blocks (AB, BA,
...). Each block starts with a short rest, so the other library's spinning worker threads park,
then one untimed call (threads and the idle vCPU wake up), then a few timed calls whose minimum
counts. A figure is the median over the pairs of the per-pair ratio.
"""
from __future__ import annotations

import statistics
import time
from typing import Callable


def paired(fa: Callable[[], object], fb: Callable[[], object], pairs: int = 9, block: int = 3,
           rest: float = 0.15) -> tuple[float, float, float]:
    """(median time of fa, median time of fb, median of the per-pair ratios ta/tb)."""
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
