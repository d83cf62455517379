"""The heart-rate figure of examples/kid_ppg.py: the ECG reference, KID-PPG's mean with its
+-std band, and the spectral-peak baseline. matplotlib is optional: only --plot needs it."""
from __future__ import annotations

import numpy as np

from .pipeline import FS

WINDOW_SHIFT_S = 2.0


def require_matplotlib() -> None:
    """ImportError with the install command when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError("--plot needs matplotlib: pip install matplotlib") from None


def pair_times(count: int, window: int = 256) -> np.ndarray:
    """Centre of the second window of each pair, in seconds from the recording's start."""
    return (np.arange(count) + 1) * WINDOW_SHIFT_S + window / FS / 2


def heart_rate_figure(path, reference, mean, std, peaks: dict, title: str,
                      finetuned=None, finetune_start=None) -> None:
    """Write a PNG (or any format matplotlib knows from the suffix) of the traces, per pair."""
    require_matplotlib()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = pair_times(len(reference))
    fig, ax = plt.subplots(figsize=(9, 4.8), dpi=110)
    for (label, bpm), colour in zip(peaks.items(), ("0.75", "tab:orange")):
        ax.plot(t, bpm, ".", ms=3, color=colour, label=label)
    ax.fill_between(t, mean - std, mean + std, color="tab:blue", alpha=0.25, lw=0,
                    label="KID-PPG ±std")
    ax.plot(t, mean, color="tab:blue", lw=1.4, label="KID-PPG mean")
    if finetuned is not None and finetune_start is not None:
        ax.plot(t[finetune_start:], finetuned, color="tab:green", lw=1.2,
                label="KID-PPG fine-tuned on the first half")
        ax.axvline(t[finetune_start], color="0.5", lw=0.8, ls=":")
    ax.plot(t, reference, color="k", lw=1.4, label="ECG reference")
    high = max(reference.max(), (mean + std).max()) + 10
    ax.set(xlabel="time (s)", ylabel="heart rate (bpm)", title=title, xlim=(t[0], t[-1]),
           ylim=(25, high))  # the spectral peak searches 30-210 bpm
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize=8, ncol=3, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
